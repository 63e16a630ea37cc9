"""Go behaviour that Packer's output and templates depend on, reproduced exactly.

- ``parse_duration`` / ``format_duration``: time.ParseDuration and Duration.String
- ``format_time``: time.Time.Format with Go reference-time layouts
- ``quote``: strconv.Quote, i.e. ``%q`` of a string
- ``format_value`` / ``format_list``: how ``%v`` prints values (``[a b]``, ``map[k:v]``)
- ``sprintf``: fmt.Sprintf for the verbs templates and messages use
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

# --- durations -----------------------------------------------------------------------

_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX_DURATION_NS = (1 << 63) - 1


class DurationError(ValueError):
    """A duration that time.ParseDuration rejects; ``str()`` is Go's message."""


def parse_duration(value: str | float) -> float:
    """Seconds from a Go duration string (``"1m30s"``, ``"300ms"``, ``"1.5h"``, ``"-2s"``)
    or from a number of nanoseconds (what a JSON number means for a Duration field)."""
    if isinstance(value, bool):
        raise DurationError(f"time: invalid duration {quote(str(value))}")
    if isinstance(value, int | float):
        return float(value) / 1e9
    return _parse_duration_ns(value) / 1e9


def _parse_duration_ns(orig: str) -> int:
    s = orig
    invalid = DurationError("time: invalid duration " + quote(orig))
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise invalid
    total = 0.0
    exact = 0
    while s:
        i = 0
        while i < len(s) and s[i].isascii() and s[i].isdigit():
            i += 1
        whole, s = s[:i], s[i:]
        frac = ""
        if s.startswith("."):
            j = 1
            while j < len(s) and s[j].isascii() and s[j].isdigit():
                j += 1
            frac, s = s[1:j], s[j:]
        if whole == "" and frac == "":
            raise invalid  # no digits, e.g. ".s"
        j = 0
        while j < len(s) and s[j] != "." and not (s[j].isascii() and s[j].isdigit()):
            j += 1
        unit, s = s[:j], s[j:]
        if unit == "":
            raise DurationError("time: missing unit in duration " + quote(orig))
        if unit not in _UNITS_NS:
            raise DurationError(f"time: unknown unit {quote(unit)} in duration {quote(orig)}")
        scale = _UNITS_NS[unit]
        exact += int(whole or "0") * scale
        if frac:
            # Go truncates the fractional part to whole nanoseconds.
            exact += int(frac) * scale // 10 ** len(frac)
        total = exact
        if total > _MAX_DURATION_NS:
            raise invalid
    return -exact if neg else exact


def format_duration(seconds: float) -> str:
    """Duration.String(): ``1s``, ``1m30s``, ``5m0s``, ``1h0m0s``, ``1.5s``, ``300ms``."""
    ns = round(seconds * 1e9)
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        if u == 0:
            return "0s"
        if u < 1_000:
            out = f"{u}ns"
        elif u < 1_000_000:
            out = _frac(u, 3) + "µs"
        else:
            out = _frac(u, 6) + "ms"
    else:
        out = _frac(u % 60_000_000_000, 9) + "s"
        minutes = u // 60_000_000_000
        if minutes:
            out = f"{minutes % 60}m" + out
            if minutes >= 60:
                out = f"{minutes // 60}h" + out
    return "-" + out if neg else out


def _frac(v: int, prec: int) -> str:
    """``v / 10**prec`` printed with trailing fractional zeros dropped."""
    whole, frac = divmod(v, 10**prec)
    digits = f"{frac:0{prec}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


# --- time.Format ---------------------------------------------------------------------

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _starts_lower(s: str) -> bool:
    return s[:1] != "" and "a" <= s[0] <= "z"


def _std_chunk(layout: str, i: int) -> tuple[str, int] | None:
    """The layout element starting at ``i`` (Go's nextStdChunk), as (code, length)."""
    rest = layout[i:]
    c = rest[0]
    if c == "J" and rest.startswith("Jan"):
        if rest.startswith("January"):
            return "January", 7
        if not _starts_lower(rest[3:]):
            return "Jan", 3
    elif c == "M":
        if rest.startswith("Mon"):
            if rest.startswith("Monday"):
                return "Monday", 6
            if not _starts_lower(rest[3:]):
                return "Mon", 3
        if rest.startswith("MST"):
            return "MST", 3
    elif c == "0":
        if len(rest) >= 2 and "1" <= rest[1] <= "6":
            return rest[:2], 2
        if rest.startswith("002"):
            return "002", 3
    elif c == "1":
        if rest.startswith("15"):
            return "15", 2
        return "1", 1
    elif c == "2":
        if rest.startswith("2006"):
            return "2006", 4
        return "2", 1
    elif c == "_":
        if rest.startswith("_2"):
            if rest.startswith("_2006"):
                return None  # a literal "_" followed by the year, found at i+1
            return "_2", 2
        if rest.startswith("__2"):
            return "__2", 3
    elif c in "345":
        return c, 1
    elif c == "P" and rest.startswith("PM"):
        return "PM", 2
    elif c == "p" and rest.startswith("pm"):
        return "pm", 2
    elif c in "-Z":
        for code in ("070000", "07:00:00", "0700", "07:00", "07"):
            if rest[1:].startswith(code):
                return c + code, len(code) + 1
    elif c in ".," and len(rest) >= 2 and rest[1] in "09":
        j = 1
        while j < len(rest) and rest[j] == rest[1]:
            j += 1
        if not (j < len(rest) and rest[j].isascii() and rest[j].isdigit()):
            return c + rest[1:j], j
    return None


def format_time(t: datetime, layout: str) -> str:
    """time.Time.Format for a UTC time (Packer renders every time in UTC)."""
    out: list[str] = []
    i = 0
    start = 0
    while i < len(layout):
        chunk = _std_chunk(layout, i)
        if chunk is None:
            i += 1
            continue
        out.append(layout[start:i])
        code, length = chunk
        out.append(_format_element(t, code))
        i += length
        start = i
    out.append(layout[start:])
    return "".join(out)


def _hour12(t: datetime) -> int:
    return t.hour % 12 or 12


def _yday(t: datetime) -> int:
    return t.timetuple().tm_yday


_ELEMENTS: dict[str, Callable[[datetime], str]] = {
    "2006": lambda t: f"{t.year:04d}",
    "06": lambda t: f"{t.year % 100:02d}",
    "January": lambda t: _MONTHS[t.month - 1],
    "Jan": lambda t: _MONTHS[t.month - 1][:3],
    "1": lambda t: str(t.month),
    "01": lambda t: f"{t.month:02d}",
    "Monday": lambda t: _DAYS[t.weekday()],
    "Mon": lambda t: _DAYS[t.weekday()][:3],
    "2": lambda t: str(t.day),
    "_2": lambda t: f"{t.day:2d}",
    "02": lambda t: f"{t.day:02d}",
    "__2": lambda t: f"{_yday(t):3d}",
    "002": lambda t: f"{_yday(t):03d}",
    "15": lambda t: f"{t.hour:02d}",
    "3": lambda t: str(_hour12(t)),
    "03": lambda t: f"{_hour12(t):02d}",
    "4": lambda t: str(t.minute),
    "04": lambda t: f"{t.minute:02d}",
    "5": lambda t: str(t.second),
    "05": lambda t: f"{t.second:02d}",
    "PM": lambda t: "PM" if t.hour >= 12 else "AM",
    "pm": lambda t: "pm" if t.hour >= 12 else "am",
}


def _format_element(t: datetime, code: str) -> str:
    simple = _ELEMENTS.get(code)
    if simple is not None:
        return simple(t)
    offset = t.utcoffset()
    off_s = int(offset.total_seconds()) if offset is not None else 0
    if code == "MST":
        name = t.tzname() or ""
        return "UTC" if name in ("UTC", "") and off_s == 0 else name or _num_tz(off_s, "-0700")
    if code[0] in "-Z":
        if code[0] == "Z" and off_s == 0:
            return "Z"
        return _num_tz(off_s, "-" + code[1:])
    # Fractional seconds: .000 / ,000 keep every digit, .999 drops trailing zeros.
    digits = f"{t.microsecond:06d}000"[: min(len(code) - 1, 9)]
    if code[1] == "9":
        digits = digits.rstrip("0")
        return code[0] + digits if digits else ""
    return code[0] + digits


def _num_tz(off_s: int, code: str) -> str:
    sign = "-" if off_s < 0 else "+"
    off_s = abs(off_s)
    hh, mm, ss = off_s // 3600, off_s // 60 % 60, off_s % 60
    return {
        "-07": f"{sign}{hh:02d}",
        "-0700": f"{sign}{hh:02d}{mm:02d}",
        "-07:00": f"{sign}{hh:02d}:{mm:02d}",
        "-070000": f"{sign}{hh:02d}{mm:02d}{ss:02d}",
        "-07:00:00": f"{sign}{hh:02d}:{mm:02d}:{ss:02d}",
    }[code]


# --- quoting -------------------------------------------------------------------------

_SIMPLE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
}


def is_print(ch: str) -> bool:
    """unicode.IsPrint: letters, marks, numbers, punctuation, symbols and ASCII space."""
    if ch == " ":
        return True
    cat = unicodedata.category(ch)
    return cat[0] in "LMNPS"


def quote(s: str, *, ascii_only: bool = False, quote_char: str = '"') -> str:
    """strconv.Quote (``%q``); ``ascii_only`` is QuoteToASCII (``%+q``)."""
    out = [quote_char]
    for ch in s:
        if ch == quote_char:
            out.append("\\" + ch)
        elif ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif is_print(ch) and not (ascii_only and ord(ch) > 0x7E):
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # a raw byte kept by surrogateescape
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append(quote_char)
    return "".join(out)


def quote_rune(r: int, *, ascii_only: bool = False) -> str:
    """strconv.QuoteRune (``%q`` of an integer)."""
    if r < 0 or r > 0x10FFFF or 0xD800 <= r <= 0xDFFF:
        r = 0xFFFD
    return quote(chr(r), ascii_only=ascii_only, quote_char="'")


# --- %v ------------------------------------------------------------------------------


class Uint8(int):
    """A Go ``uint8``: what indexing a string yields (``{{index "abc" 1}}`` is 98)."""


def go_type(v: Any) -> str:
    """The Go type name fmt and text/template report for a value."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Uint8):
        return "uint8"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, list | tuple):
        return "[]interface {}"
    if callable(v):
        return "func(...interface {}) interface {}"
    return type(v).__name__


def format_float(f: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat for the 'e', 'f' and 'g' formats (prec -1: shortest)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if verb in "eE":
        if prec < 0:
            digits, exp = _shortest(f)
            mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            out = ("-" if math.copysign(1, f) < 0 else "") + mant + _exp_suffix(exp)
        else:
            out = f"{f:.{prec}e}"
            mant, e = out.split("e")
            out = mant + _exp_suffix(int(e))
        return out.replace("e", verb) if verb == "E" else out
    if verb == "f":
        if prec < 0:
            digits, exp = _shortest(f)
            sign = "-" if math.copysign(1, f) < 0 else ""
            point = exp + 1
            if point <= 0:
                return sign + "0." + "0" * -point + digits
            if point >= len(digits):
                return sign + digits + "0" * (point - len(digits))
            return sign + digits[:point] + "." + digits[point:]
        return f"{f:.{prec}f}"
    # 'g'
    if prec < 0:
        digits, exp = _shortest(f)
        eprec = 6
    else:
        if prec == 0:
            prec = 1
        s = f"{abs(f):.{prec - 1}e}"
        mant, e = s.split("e")
        digits = mant.replace(".", "").rstrip("0") or "0"
        exp = int(e)
        eprec = prec
        if eprec > len(digits) and len(digits) >= exp + 1:
            eprec = len(digits)
    sign = "-" if math.copysign(1, f) < 0 else ""
    if exp < -4 or exp >= eprec:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return sign + mant + _exp_suffix(exp)
    point = exp + 1
    if point <= 0:
        return sign + "0." + "0" * -point + digits
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return sign + digits[:point] + "." + digits[point:]


def _shortest(f: float) -> tuple[str, int]:
    """The shortest round-trip decimal digits of ``|f|`` and its decimal exponent
    (Python's repr and Go's 'g' with precision -1 pick the same digits)."""
    if f == 0:
        return "0", 0
    mant, _, e = repr(abs(f)).partition("e")
    whole, _, frac = mant.partition(".")
    digits = whole + frac
    point = len(whole) + (int(e) if e else 0)
    lead = len(digits) - len(digits.lstrip("0"))
    return digits[lead:].rstrip("0") or "0", point - lead - 1


def _exp_suffix(exp: int) -> str:
    return ("e-" if exp < 0 else "e+") + f"{abs(exp):02d}"


def format_value(v: Any) -> str:
    """fmt's ``%v`` of a value."""
    if isinstance(v, str):
        return v
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, complex):
        return f"({format_float(v.real)}{_signed(format_float(v.imag))}i)"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{format_value(k)}:{format_value(x)}" for k, x in items) + "]"
    if isinstance(v, list | tuple):
        return format_list(v)
    fields = getattr(v, "__dataclass_fields__", None)
    if fields is not None and not isinstance(v, type):
        return "{" + " ".join(format_value(getattr(v, name)) for name in fields) + "}"
    return str(v)


def _signed(s: str) -> str:
    return s if s.startswith(("-", "+")) else "+" + s


def _sort_key(k: Any) -> tuple[int, Any]:
    if isinstance(k, int | float):
        return (0, k)
    return (1, str(k))


def format_list(items: Sequence[Any]) -> str:
    """Go's ``%v`` of a slice: ``[a b c]``."""
    return "[" + " ".join(format_value(x) for x in items) + "]"


# --- fmt.Sprintf ---------------------------------------------------------------------


def sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_value(a))
        prev_string = is_string
    return "".join(out)


def sprintln(*args: Any) -> str:
    """fmt.Sprintln: spaces between every operand and a final newline."""
    return " ".join(format_value(a) for a in args) + "\n"


def sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf, including Go's in-band errors (``%!d(string=x)``, ``%!s(MISSING)``,
    ``%!(EXTRA int=3)``)."""
    return _Printf(fmt, args).run()


class _Spec:
    __slots__ = ("minus", "plus", "precision", "sharp", "space", "width", "zero")

    def __init__(self) -> None:
        self.minus = self.plus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.precision: int | None = None


class _Printf:
    def __init__(self, fmt: str, args: Sequence[Any]) -> None:
        self.fmt = fmt
        self.args = list(args)
        self.argnum = 0
        self.out: list[str] = []

    def run(self) -> str:
        fmt, n = self.fmt, len(self.fmt)
        i = 0
        while i < n:
            pct = fmt.find("%", i)
            if pct < 0:
                self.out.append(fmt[i:])
                break
            self.out.append(fmt[i:pct])
            i = self._directive(pct + 1)
        if self.argnum < len(self.args):
            extra = ", ".join(
                "<nil>" if a is None else f"{go_type(a)}={format_value(a)}"
                for a in self.args[self.argnum :]
            )
            self.out.append(f"%!(EXTRA {extra})")
        return "".join(self.out)

    def _int_arg(self) -> int | None:
        if self.argnum >= len(self.args):
            return None
        a = self.args[self.argnum]
        self.argnum += 1
        return int(a) if isinstance(a, int) and not isinstance(a, bool) else None

    def _directive(self, i: int) -> int:
        fmt, n = self.fmt, len(self.fmt)
        spec = _Spec()
        while i < n and fmt[i] in "-+# 0":
            flag = fmt[i]
            if flag == "-":
                spec.minus, spec.zero = True, False
            elif flag == "+":
                spec.plus = True
            elif flag == "#":
                spec.sharp = True
            elif flag == " ":
                spec.space = True
            elif not spec.minus:
                spec.zero = True
            i += 1
        if i < n and fmt[i] == "*":
            w = self._int_arg()
            i += 1
            if w is None:
                self.out.append("%!(BADWIDTH)")
            else:
                if w < 0:
                    spec.minus, spec.zero, w = True, False, -w
                spec.width = w
        else:
            j = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > j:
                spec.width = int(fmt[j:i])
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                p = self._int_arg()
                i += 1
                if p is None or p < 0:
                    self.out.append("%!(BADPREC)")
                else:
                    spec.precision = p
            else:
                j = i
                while i < n and fmt[i].isdigit():
                    i += 1
                spec.precision = int(fmt[j:i] or "0")
        if i >= n:
            self.out.append("%!(NOVERB)")
            return i
        verb = fmt[i]
        i += 1
        if verb == "%":
            self.out.append("%")
            return i
        if self.argnum >= len(self.args):
            self.out.append(f"%!{verb}(MISSING)")
            return i
        arg = self.args[self.argnum]
        self.argnum += 1
        self.out.append(_format_arg(arg, verb, spec))
        return i


def _pad(s: str, spec: _Spec, *, zero_ok: bool = False) -> str:
    if spec.width is None or len(s) >= spec.width:
        return s
    fill = spec.width - len(s)
    if spec.minus:
        return s + " " * fill
    if spec.zero and zero_ok:
        sign = s[0] if s[:1] in ("-", "+", " ") else ""
        return sign + "0" * fill + s[len(sign) :]
    return " " * fill + s


def _bad_verb(arg: Any, verb: str) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={format_value(arg)})"


def _format_arg(arg: Any, verb: str, spec: _Spec) -> str:
    if verb == "T":
        return _pad(go_type(arg) if arg is not None else "<nil>", spec)
    if arg is None:
        return _pad("<nil>", spec) if verb == "v" else _bad_verb(arg, verb)
    if isinstance(arg, bool):
        if verb in "vt":
            return _pad("true" if arg else "false", spec)
        return _bad_verb(arg, verb)
    if isinstance(arg, int):
        return _format_int(int(arg), verb, spec, arg)
    if isinstance(arg, float):
        return _format_float_arg(arg, verb, spec)
    if isinstance(arg, str):
        return _format_str(arg, verb, spec)
    if isinstance(arg, list | tuple):
        if (verb in "sxXq" and all(isinstance(a, str) for a in arg)) or verb in "vdfegtc":
            inner = " ".join(_format_arg(a, verb, _Spec()) for a in arg)
            return _pad("[" + inner + "]", spec)
        return _bad_verb(arg, verb)
    if isinstance(arg, Mapping):
        items = sorted(arg.items(), key=lambda kv: _sort_key(kv[0]))
        inner = " ".join(
            f"{_format_arg(k, verb, _Spec())}:{_format_arg(x, verb, _Spec())}" for k, x in items
        )
        return _pad("map[" + inner + "]", spec)
    if verb in "vs":
        return _pad(format_value(arg), spec)
    return _bad_verb(arg, verb)


def _format_int(v: int, verb: str, spec: _Spec, orig: Any) -> str:
    if verb in "vd":
        s = str(abs(v))
    elif verb == "x":
        s = format(abs(v), "x")
    elif verb == "X":
        s = format(abs(v), "X")
    elif verb == "o":
        s = format(abs(v), "o")
    elif verb == "O":
        s = "0o" + format(abs(v), "o")
    elif verb == "b":
        s = format(abs(v), "b")
    elif verb == "c":
        return _pad(chr(v) if 0 <= v <= 0x10FFFF and not 0xD800 <= v <= 0xDFFF else "\ufffd", spec)
    elif verb == "q":
        return _pad(quote_rune(v, ascii_only=spec.plus), spec)
    elif verb == "U":
        s = f"U+{v:04X}"
        if spec.sharp and 0 <= v <= 0x10FFFF and is_print(chr(v)):
            s += f" '{chr(v)}'"
        return _pad(s, spec)
    elif verb in "eEfFgG":
        return _bad_verb(orig, verb)
    else:
        return _bad_verb(orig, verb)
    if spec.precision is not None:
        s = "" if spec.precision == 0 and v == 0 else s.rjust(spec.precision, "0")
    if spec.sharp:
        s = {"x": "0x", "X": "0X", "o": "0", "b": ""}.get(verb, "") + s
    sign = "-" if v < 0 else "+" if spec.plus else " " if spec.space else ""
    return _pad(sign + s, spec, zero_ok=spec.precision is None)


def _format_float_arg(v: float, verb: str, spec: _Spec) -> str:
    prec = spec.precision if spec.precision is not None else -1
    if verb in "vgG":
        s = format_float(v, "g", prec)
        if verb == "G":
            s = s.upper()
    elif verb in "eE":
        s = format_float(v, verb, 6 if prec < 0 else prec)
    elif verb in "fF":
        s = format_float(v, "f", 6 if prec < 0 else prec)
    else:
        return _bad_verb(v, verb)
    if spec.plus and not s.startswith("-"):
        s = "+" + s
    elif spec.space and not s.startswith("-"):
        s = " " + s
    return _pad(s, spec, zero_ok=not math.isinf(v) and not math.isnan(v))


def _format_str(v: str, verb: str, spec: _Spec) -> str:
    if spec.precision is not None and verb in "vsq":
        v = v[: spec.precision]
    if verb in "vs":
        return _pad(v, spec)
    if verb == "q":
        if spec.sharp and "`" not in v and all(is_print(c) or c == "\t" for c in v):
            return _pad("`" + v + "`", spec)
        return _pad(quote(v, ascii_only=spec.plus), spec)
    if verb in "xX":
        data = v.encode("utf-8", "surrogateescape")
        if spec.precision is not None:
            data = data[: spec.precision]
        h = data.hex()
        if verb == "X":
            h = h.upper()
        if spec.space:
            prefix = ("0X" if verb == "X" else "0x") if spec.sharp else ""
            h = " ".join(prefix + h[k : k + 2] for k in range(0, len(h), 2))
        elif spec.sharp and h:
            h = ("0X" if verb == "X" else "0x") + h
        return _pad(h, spec)
    return _bad_verb(v, verb)

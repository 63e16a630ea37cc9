"""JSON as Packer 1.6.6 reads it: Go's encoding/json errors, duplicate keys, positions.

The fast path is the C ``json`` module. Only when something is wrong does the slow,
pure-Python machinery run:

- ``GoScanner`` replays Go's JSON scanner byte by byte to find the exact error text
  and byte offset Go reports (``invalid character '}' looking for beginning of object
  key string``), which Packer prints with ``highlight``;
- ``first_duplicate`` finds the duplicate key Packer's token walk stops at first;
- ``Locator`` maps a key path such as ``("builders", 0, "type")`` to the line it is on,
  so that error messages can say where a problem is.

Numbers decode as Python ``int`` or ``float``; Go would hold both as float64, which
matters only for how error messages name the type (see ``loader``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from imagesmith.golang import quote

Path = tuple[str | int, ...]


class JSONSyntaxError(ValueError):
    """Go's ``json.SyntaxError``: the message and the byte offset after the bad byte."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class JSONValueError(ValueError):
    """A value Go cannot hold, e.g. a number beyond float64 (an UnmarshalTypeError)."""


class DuplicateKeyError(ValueError):
    """An object repeats a key; ``key`` is the first one Packer's check stops at."""

    def __init__(self, key: str, line: int) -> None:
        super().__init__(f"template has duplicate field: {key}")
        self.key = key
        self.line = line


# --- the fast path -----------------------------------------------------------------------


class _Hooks:
    """``json.loads`` hooks: note duplicates, refuse what Go's decoder refuses."""

    def __init__(self) -> None:
        self.duplicates = False

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            self.duplicates = True
        return obj

    @staticmethod
    def constant(name: str) -> Any:
        # NaN and Infinity are Python extensions; Go rejects them as syntax errors.
        raise ValueError(name)

    @staticmethod
    def floating(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise JSONValueError(
                f"json: cannot unmarshal number {text} into Go value of type float64"
            )
        return value

    @staticmethod
    def integer(text: str) -> int:
        value = int(text)
        if len(text) > 300 and math.isinf(_as_float(value)):
            raise JSONValueError(
                f"json: cannot unmarshal number {text} into Go value of type float64"
            )
        return value


def _as_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


# Go allows 10,000 levels; Python's parser stops near its recursion limit (~1,000).
_TOO_DEEP = "the JSON is nested too deeply to be read (more than about 900 levels)"


def loads(data: bytes) -> Any:
    """Decode a whole document as Go's ``json.Unmarshal`` accepts it.

    Raises ``JSONSyntaxError`` (Go's text and offset), ``JSONValueError``, or
    ``DuplicateKeyError`` (Packer's check, done only on valid JSON, as Packer does).
    """
    hooks = _Hooks()
    text = data.decode("utf-8", errors="replace")
    try:
        value = json.loads(
            text,
            object_pairs_hook=hooks.pairs,
            parse_constant=hooks.constant,
            parse_float=hooks.floating,
            parse_int=hooks.integer,
        )
    except JSONValueError:
        GoScanner(data).check_valid()
        raise
    except RecursionError:
        raise JSONValueError(_TOO_DEEP) from None
    except ValueError:
        GoScanner(data).check_valid()
        # The C parser refused something Go's scanner accepts; should not happen, but
        # never pass a Python message off as Go's.
        raise JSONSyntaxError("invalid JSON", len(data)) from None
    if hooks.duplicates:
        found = first_duplicate(text)
        if found is not None:
            raise DuplicateKeyError(*found)
    return value


def decode_first(data: bytes) -> Any:
    """Decode the first JSON value of a stream, as Go's ``json.Decoder.Decode`` does
    (used for var files and ``fix``): trailing data is ignored; empty input is ``EOF``
    and truncated input ``unexpected EOF``."""
    text = data.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise JSONSyntaxError("EOF", len(data))
    hooks = _Hooks()
    decoder = json.JSONDecoder(
        object_pairs_hook=hooks.pairs,
        parse_constant=hooks.constant,
        parse_float=hooks.floating,
        parse_int=hooks.integer,
    )
    try:
        value, _ = decoder.raw_decode(text, start)
    except JSONValueError:
        GoScanner(data).check_first_value()
        raise
    except RecursionError:
        raise JSONValueError(_TOO_DEEP) from None
    except ValueError:
        GoScanner(data).check_first_value()
        raise JSONSyntaxError("invalid JSON", len(data)) from None
    return value


# --- Go's scanner --------------------------------------------------------------------------

_SPACE = frozenset(b" \t\r\n")
_DIGITS = frozenset(b"0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = frozenset(b'bfnrt\\/"')

_OBJECT_KEY, _OBJECT_VALUE, _ARRAY_VALUE = range(3)


def quote_char(c: int) -> str:
    """Go's ``quoteChar``: how a byte appears in a JSON syntax error."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    return "'" + quote(chr(c))[1:-1] + "'"


class _Stop(Exception):
    """The scanner reached the end of the first top-level value."""


class GoScanner:
    """Go's ``encoding/json`` scanner, byte by byte, for its exact error texts.

    ``check_valid`` is ``json.Unmarshal``'s validity check; ``check_first_value`` is the
    value reading of ``json.Decoder``. Both raise ``JSONSyntaxError`` and return
    quietly when the input is valid.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.stack: list[int] = []
        self.step: Callable[[int], None] = self.begin_value
        self.offset = 0
        self.end_top = False
        self.first_only = False

    def fail(self, c: int, context: str) -> None:
        raise JSONSyntaxError(f"invalid character {quote_char(c)} {context}", self.offset)

    def check_valid(self) -> None:
        for c in self.data:
            self.offset += 1
            self.step(c)
        # Go feeds a final space so that a top-level number can end.
        if not self.end_top:
            self.step(ord(" "))
        if not self.end_top:
            raise JSONSyntaxError("unexpected end of JSON input", self.offset)

    def check_first_value(self) -> None:
        self.first_only = True
        try:
            for c in self.data:
                self.offset += 1
                self.step(c)
        except _Stop:
            return
        if self.end_top:
            return
        # A number running into the end of the stream is complete.
        if self.step in (self.state1, self.state0, self.dot0, self.exp0) and not self.stack:
            return
        started = any(c not in _SPACE for c in self.data)
        raise JSONSyntaxError("unexpected EOF" if started else "EOF", self.offset)

    # -- values

    def begin_value_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord("]"):
            self.end_value(c)
            return
        self.begin_value(c)

    def begin_value(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord("{"):
            self.stack.append(_OBJECT_KEY)
            self.step = self.begin_string_or_empty
        elif c == ord("["):
            self.stack.append(_ARRAY_VALUE)
            self.step = self.begin_value_or_empty
        elif c == ord('"'):
            self.step = self.in_string
        elif c == ord("-"):
            self.step = self.neg
        elif c == ord("0"):
            self.step = self.state0
        elif c == ord("t"):
            self.step = self.literal("true", 1)
        elif c == ord("f"):
            self.step = self.literal("false", 1)
        elif c == ord("n"):
            self.step = self.literal("null", 1)
        elif c in _DIGITS:
            self.step = self.state1
        else:
            self.fail(c, "looking for beginning of value")

    def begin_string_or_empty(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord("}"):
            self.stack[-1] = _OBJECT_VALUE
            self.end_value(c)
            return
        self.begin_string(c)

    def begin_string(self, c: int) -> None:
        if c in _SPACE:
            return
        if c == ord('"'):
            self.step = self.in_string
            return
        self.fail(c, "looking for beginning of object key string")

    def end_value(self, c: int) -> None:
        if not self.stack:
            self.end_top = True
            if self.first_only:
                raise _Stop
            self.step = self.end_top_state
            self.end_top_state(c)
            return
        if c in _SPACE:
            self.step = self.end_value
            return
        top = self.stack[-1]
        if top == _OBJECT_KEY:
            if c == ord(":"):
                self.stack[-1] = _OBJECT_VALUE
                self.step = self.begin_value
                return
            self.fail(c, "after object key")
        elif top == _OBJECT_VALUE:
            if c == ord(","):
                self.stack[-1] = _OBJECT_KEY
                self.step = self.begin_string
                return
            if c == ord("}"):
                self.pop(c)
                return
            self.fail(c, "after object key:value pair")
        else:
            if c == ord(","):
                self.step = self.begin_value
                return
            if c == ord("]"):
                self.pop(c)
                return
            self.fail(c, "after array element")

    def pop(self, c: int) -> None:
        self.stack.pop()
        if not self.stack:
            self.end_top = True
            if self.first_only:
                raise _Stop
            self.step = self.end_top_state
        else:
            self.step = self.end_value

    def end_top_state(self, c: int) -> None:
        if c not in _SPACE:
            self.fail(c, "after top-level value")

    # -- strings

    def in_string(self, c: int) -> None:
        if c == ord('"'):
            self.step = self.end_value
            if not self.stack:
                self.end_value(ord(" "))
        elif c == ord("\\"):
            self.step = self.in_string_esc
        elif c < 0x20:
            self.fail(c, "in string literal")

    def in_string_esc(self, c: int) -> None:
        if c in _ESCAPES:
            self.step = self.in_string
        elif c == ord("u"):
            self.step = self.hex_digit(4)
        else:
            self.fail(c, "in string escape code")

    def hex_digit(self, remaining: int) -> Callable[[int], None]:
        def step(c: int) -> None:
            if c not in _HEX:
                self.fail(c, "in \\u hexadecimal character escape")
            self.step = self.in_string if remaining == 1 else self.hex_digit(remaining - 1)

        return step

    # -- numbers

    def neg(self, c: int) -> None:
        if c == ord("0"):
            self.step = self.state0
        elif c in _DIGITS:
            self.step = self.state1
        else:
            self.fail(c, "in numeric literal")

    def state1(self, c: int) -> None:
        if c in _DIGITS:
            return
        self.state0(c)

    def state0(self, c: int) -> None:
        if c == ord("."):
            self.step = self.dot
        elif c in (ord("e"), ord("E")):
            self.step = self.exp
        else:
            self.number_end(c)

    def dot(self, c: int) -> None:
        if c in _DIGITS:
            self.step = self.dot0
            return
        self.fail(c, "after decimal point in numeric literal")

    def dot0(self, c: int) -> None:
        if c in _DIGITS:
            return
        if c in (ord("e"), ord("E")):
            self.step = self.exp
            return
        self.number_end(c)

    def exp(self, c: int) -> None:
        if c in (ord("+"), ord("-")):
            self.step = self.exp_sign
            return
        self.exp_sign(c)

    def exp_sign(self, c: int) -> None:
        if c in _DIGITS:
            self.step = self.exp0
            return
        self.fail(c, "in exponent of numeric literal")

    def exp0(self, c: int) -> None:
        if c in _DIGITS:
            return
        self.number_end(c)

    def number_end(self, c: int) -> None:
        if self.first_only and not self.stack:
            raise _Stop
        self.end_value(c)

    # -- literals

    def literal(self, word: str, index: int) -> Callable[[int], None]:
        def step(c: int) -> None:
            expected = word[index]
            if c != ord(expected):
                self.fail(c, f"in literal {word} (expecting {quote_char(ord(expected))})")
            if index + 1 == len(word):
                self.step = self.end_value
                if not self.stack:
                    self.end_value(ord(" "))
            else:
                self.step = self.literal(word, index + 1)

        return step


def highlight(data: bytes, offset: int) -> tuple[int, int, str]:
    """Packer's picture of a syntax error: (line, column, the two context lines and a
    caret). Columns count bytes; on lines after the first they start one higher, as
    Packer's own counting does."""
    line, col = 1, 0
    last_line = b""
    this_line = bytearray()
    for b in data[:offset]:
        if b == 0x0A:
            last_line = bytes(this_line)
            this_line.clear()
            line += 1
            col = 1
        else:
            col += 1
            this_line.append(b)
    text = ""
    if line > 1:
        text += f"{line - 1:5d}: {last_line.decode('utf-8', errors='replace')}\n"
    text += f"{line:5d}: {bytes(this_line).decode('utf-8', errors='replace')}\n"
    text += " " * (col + 5) + "^\n"
    return line, col, text


def format_syntax_error(data: bytes, err: JSONSyntaxError) -> str:
    """``Error parsing JSON: <go error>\\nAt line L, column C (offset O):\\n<picture>``."""
    line, col, picture = highlight(data, err.offset)
    return (
        f"Error parsing JSON: {err.message}\n"
        f"At line {line}, column {col} (offset {err.offset}):\n{picture}"
    )


# --- positions -----------------------------------------------------------------------------

# Compiled on first use: only error messages need positions.
_TOKEN = r"""
    (?P<ws>[ \t\r\n]+)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<punct>[{}\[\]:,])
    | (?P<atom>[^\s{}\[\]:,"]+)
"""


class _Tokens:
    """(kind, text, line) tokens of a JSON text that is known to be valid."""

    def __init__(self, text: str) -> None:
        self.items: list[tuple[str, str, int]] = []
        line = 1
        for m in re.finditer(_TOKEN, text, re.VERBOSE | re.DOTALL):
            kind = m.lastgroup or ""
            token = m.group()
            if kind != "ws":
                self.items.append((kind, token, line))
            line += token.count("\n")
        self.pos = 0

    def next(self) -> tuple[str, str, int]:
        item = self.items[self.pos]
        self.pos += 1
        return item

    def peek(self) -> str:
        return self.items[self.pos][1]


def _walk(
    tokens: _Tokens,
    path: Path,
    on_value: Callable[[Path, int], None],
    on_key: Callable[[dict[str, int], str, int], None] | None = None,
    key_line: int | None = None,
) -> None:
    """Visit every value depth-first in document order. A member's value is reported
    at its key's line."""
    _, token, line = tokens.next()
    on_value(path, line if key_line is None else key_line)
    if token == "{":
        if tokens.peek() == "}":
            tokens.next()
            return
        seen: dict[str, int] = {}
        while True:
            _, raw_key, member_line = tokens.next()
            key = json.loads(raw_key)
            if on_key is not None:
                on_key(seen, key, member_line)
            seen[key] = member_line
            tokens.next()  # the colon
            _walk(tokens, (*path, key), on_value, on_key, member_line)
            if tokens.next()[1] == "}":
                return
    elif token == "[":
        if tokens.peek() == "]":
            tokens.next()
            return
        index = 0
        while True:
            _walk(tokens, (*path, index), on_value, on_key)
            index += 1
            if tokens.next()[1] == "]":
                return


class _Found(Exception):
    def __init__(self, key: str, line: int) -> None:
        self.key, self.line = key, line


def first_duplicate(text: str) -> tuple[str, int] | None:
    """The first repeated key in document order, and the line of its repetition."""

    def on_key(seen: dict[str, int], key: str, line: int) -> None:
        if key in seen:
            raise _Found(key, line)

    try:
        _walk(_Tokens(text), (), lambda _p, _l: None, on_key)
    except _Found as found:
        return found.key, found.line
    return None


class Locator:
    """Lines of the values of a valid JSON document, by key path.

    For an object member the line is that of its key, for an array element that of
    the element. Computed on first use only: the happy path never needs it.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._lines: dict[Path, int] | None = None

    def line(self, path: Path) -> int | None:
        if self._lines is None:
            lines: dict[Path, int] = {}
            try:
                text = self._data.decode("utf-8", errors="replace")
                _walk(_Tokens(text), (), lines.__setitem__)
            except (IndexError, ValueError):
                pass
            self._lines = lines
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return self._lines.get((), None)

"""The environment string shell-type provisioners hand to their scripts.

Packer builds one ``{{.Vars}}`` string from the variables it always provides
(``PACKER_BUILD_NAME``, ``PACKER_BUILDER_TYPE`` and, when the builder serves HTTP,
``PACKER_HTTP_ADDR/IP/PORT``) and the user's ``environment_vars``: keys sorted by byte
order, each pair formatted through ``env_var_format`` (a Go format string such as
``%s='%s' ``), single quotes in values written as ``'"'"'``. The same text, formatted
with ``export %s='%s'\\n``, is the content of the shell provisioner's env file.

Packer escapes quotes only in the user's values, so a build name containing ``'``
breaks the command line it produces; here every value is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagesmith.engine.context import BuildInfo

# Placeholders the engine puts in the build data when the builder runs no HTTP server.
_HTTP_KEYS = {
    "PACKER_HTTP_ADDR": ("PackerHTTPAddr", "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER"),
    "PACKER_HTTP_IP": ("PackerHTTPIP", "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER"),
    "PACKER_HTTP_PORT": ("PackerHTTPPort", "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER"),
}

QUOTE_ESCAPE = "'\"'\"'"


def packer_env(info: BuildInfo, generated: Mapping[str, Any]) -> dict[str, str]:
    """The variables Packer always passes to scripts, from the build and its data."""
    env = {"PACKER_BUILD_NAME": info.name, "PACKER_BUILDER_TYPE": info.builder_type}
    for name, (key, placeholder) in _HTTP_KEYS.items():
        value = generated.get(key)
        if value is not None and value != placeholder:
            env[name] = str(value)
    return env


def parse_env_vars(items: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``KEY=VALUE`` items (the first ``=`` separates); later keys win.

    Returns the variables and one Packer-worded error per malformed item.
    """
    env: dict[str, str] = {}
    errors: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            errors.append(f"Environment variable not in format 'key=value': {item}")
            continue
        env[key] = value
    return env, errors


def flatten_env(vars: Mapping[str, str], fmt: str) -> str:
    """Format every pair through ``fmt`` in byte order of the keys, quotes escaped."""
    out = []
    for key in sorted(vars, key=lambda k: k.encode()):
        out.append(go_sprintf(fmt, key, vars[key].replace("'", QUOTE_ESCAPE)))
    return "".join(out)


_VERB = re.compile(r"%([-+# 0]*)(?:\[(\d+)\])?(\d+)?(?:\.(\d*))?(.?)", re.DOTALL)


def go_sprintf(fmt: str, *args: str) -> str:
    """Go's ``fmt.Sprintf`` for string arguments, including its error markers.

    Users write ``env_var_format`` for Go, so a format with too few or too many verbs
    must come out the way Packer prints it (``%!s(MISSING)``, ``%!(EXTRA ...)``).
    """
    out: list[str] = []
    pos = 0
    argi = 0
    reordered = False
    while True:
        pct = fmt.find("%", pos)
        if pct < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:pct])
        m = _VERB.match(fmt, pct)
        assert m is not None  # the pattern matches any "%"
        flags, index, width, prec, verb = m.groups()
        pos = m.end()
        if verb == "%":
            out.append("%")
            continue
        if not verb:
            out.append("%!(NOVERB)")
            continue
        if index is not None:
            reordered = True
            argi = int(index) - 1
            if not 0 <= argi < len(args):
                out.append(f"%!{verb}(BADINDEX)")
                continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_string(args[argi], verb, flags, width, prec))
        argi += 1
    if not reordered and argi < len(args):
        extra = ", ".join(f"string={a}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _format_string(value: str, verb: str, flags: str, width: str | None, prec: str | None) -> str:
    if verb in "sv":
        text = value if prec is None else value[: int(prec or 0)]
    elif verb == "q":
        text = _go_quote(value)
    elif verb in "xX":
        data = value.encode()
        if prec is not None:
            data = data[: int(prec or 0)]
        sep = " " if " " in flags else ""
        text = sep.join(f"{b:02x}" for b in data)
        text = text.upper() if verb == "X" else text
    else:
        return f"%!{verb}(string={value})"
    if width is not None and len(text) < int(width):
        pad = int(width) - len(text)
        text = text + " " * pad if "-" in flags else " " * pad + text
    return text


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def _go_quote(value: str) -> str:
    """``strconv.Quote``: printable characters kept, the rest escaped."""
    parts = ['"']
    for ch in value:
        if ch in _GO_ESCAPES:
            parts.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            parts.append(ch)
        elif ord(ch) < 0x80:
            parts.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            parts.append(f"\\u{ord(ch):04x}")
        else:
            parts.append(f"\\U{ord(ch):08x}")
    parts.append('"')
    return "".join(parts)

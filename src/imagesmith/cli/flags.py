"""Command-line flags the way Go's ``flag`` package parses them (Packer's commands).

- ``-name=value``, ``-name value``, ``--name`` and ``--name=value`` are the same flag;
- a bool flag takes no separate value (``-debug``; ``-color=false``);
- parsing stops at the first argument that is not a flag, at a lone ``-``, or after
  ``--``; the rest are positional arguments;
- repeatable flags (``-var``, ``-var-file``, ``-only``, ``-except``) collect every use,
  ``-only``/``-except`` splitting on commas;
- errors read as Go's: ``flag provided but not defined: -x``,
  ``flag needs an argument: -only``, ``invalid value "bogus" for flag -on-error: ...``.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from imagesmith.golang import quote

FlagKind = Literal["bool", "string", "int", "multi", "vars"]

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class FlagError(Exception):
    """A flag could not be parsed; ``str()`` is Go's message."""


@dataclass
class _Flag:
    name: str
    kind: FlagKind
    default: Any
    choices: Sequence[str] | None = None
    split_commas: bool = False


@dataclass
class FlagSet:
    """The flags of one command. ``parse`` returns their values by name (defaults for
    those not given) and the positional arguments."""

    name: str
    _flags: dict[str, _Flag] = field(default_factory=dict)

    def bool(self, name: str, default: builtins.bool = False) -> None:
        self._flags[name] = _Flag(name, "bool", default)

    def string(self, name: str, default: str = "", choices: Sequence[str] | None = None) -> None:
        self._flags[name] = _Flag(name, "string", default, choices)

    def int(self, name: str, default: builtins.int = 0) -> None:
        self._flags[name] = _Flag(name, "int", default)

    def multi(self, name: str, split_commas: builtins.bool = False) -> None:
        """A repeatable flag; its value is the list of every use, in order."""
        self._flags[name] = _Flag(name, "multi", [], split_commas=split_commas)

    def vars(self, name: str) -> None:
        """A repeatable ``key=value`` flag (``-var``); its value is a list of pairs."""
        self._flags[name] = _Flag(name, "vars", [])

    def parse(self, argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
        values: dict[str, Any] = {
            f.name: list(f.default) if isinstance(f.default, list) else f.default
            for f in self._flags.values()
        }
        args = list(argv)
        while args:
            arg = args[0]
            if len(arg) < 2 or arg[0] != "-":
                break
            dashes = 2 if arg[1] == "-" else 1
            if dashes == 2 and len(arg) == 2:
                args.pop(0)  # "--" ends the flags
                break
            args.pop(0)
            name = arg[dashes:]
            if not name or name[0] in "-=":
                raise FlagError(f"bad flag syntax: {arg}")
            name, has_value, value = name.partition("=")
            flag = self._flags.get(name)
            if flag is None:
                raise FlagError(f"flag provided but not defined: -{name}")
            if flag.kind == "bool":
                values[name] = _parse_bool(name, value) if has_value else True
                continue
            if not has_value:
                if not args:
                    raise FlagError(f"flag needs an argument: -{name}")
                value = args.pop(0)
            self._set(flag, value, values)
        return values, args

    def _set(self, flag: _Flag, value: str, values: dict[str, Any]) -> None:
        if flag.kind == "string":
            if flag.choices is not None and value not in flag.choices:
                listed = " ".join(quote(c) for c in flag.choices)
                raise FlagError(
                    f"invalid value {quote(value)} for flag -{flag.name}: "
                    f"expected one of [{listed}]"
                )
            values[flag.name] = value
        elif flag.kind == "int":
            values[flag.name] = _parse_int(flag.name, value)
        elif flag.kind == "multi":
            values[flag.name].extend(value.split(",") if flag.split_commas else [value])
        else:
            key, sep, rest = value.partition("=")
            if not sep:
                raise FlagError(
                    f"invalid value {quote(value)} for flag -{flag.name}: "
                    f"No '=' value in arg: {value}"
                )
            values[flag.name].append((key, rest))


def _parse_bool(name: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FlagError(f"invalid boolean value {quote(value)} for -{name}: parse error")


_GO_INT = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO]?[0-7_]*|[1-9][0-9_]*)")


def _parse_int(name: str, value: str) -> int:
    """strconv.ParseInt(value, 0, 64) as Go's int flag uses it."""
    if _GO_INT.fullmatch(value) is None or "__" in value or value.endswith("_"):
        raise FlagError(f"invalid value {quote(value)} for flag -{name}: parse error")
    sign = -1 if value.startswith("-") else 1
    digits = value.lstrip("+-").replace("_", "")
    if digits[:2].lower() in ("0x", "0b", "0o"):
        number = int(digits, 0)
    elif len(digits) > 1 and digits[0] == "0":
        number = int(digits, 8)
    else:
        number = int(digits)
    number *= sign
    if not -(1 << 63) <= number < (1 << 63):
        raise FlagError(f"invalid value {quote(value)} for flag -{name}: value out of range")
    return number

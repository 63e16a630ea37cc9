"""Packer 1.6.6's template function map for JSON templates.

Each function is a ``GoFunc``: the Python callable plus the Go parameter types that
text/template checks arguments against, so arity and type errors read as Go's do.
A function fails by raising ``FuncError``; the executor reports it as
``error calling <name>: <message>``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import imagesmith
from imagesmith.golang import format_time, sprintf
from imagesmith.template.gobuiltins import FuncError, GoFunc

if TYPE_CHECKING:
    from imagesmith.template.render import RenderContext

#: The one run-start time behind timestamp, isotime and strftime (Packer's InitTime),
#: so that every field of a run sees the same value.
RUN_START: datetime = datetime.now(UTC)

PLACEHOLDER_MSG = (
    "To set this dynamically in the Packer template, you must use the `build` function"
)

_SED_DEPRECATED = (
    "template function `sed` is deprecated use `replace` or `replace_all` instead."
    "Documentation: https://www.packer.io/docs/templates/engine"
)


# --- time ----------------------------------------------------------------------------


def timestamp() -> str:
    return str(int(RUN_START.timestamp()))


def isotime(*layout: str) -> str:
    if not layout:
        return format_time(RUN_START, "2006-01-02T15:04:05Z07:00")
    if len(layout) > 1:
        raise FuncError(sprintf("too many values, 1 needed: %v", list(layout)))
    return format_time(RUN_START, layout[0])


# The conversions jehiah/go-strftime knows; any other %X is copied through as it is.
_STRFTIME = {
    "A": "Monday",
    "a": "Mon",
    "B": "January",
    "b": "Jan",
    "d": "02",
    "H": "15",
    "I": "03",
    "L": ".000",
    "M": "04",
    "m": "01",
    "p": "PM",
    "S": "05",
    "Y": "2006",
    "y": "06",
    "Z": "MST",
    "z": "-0700",
}


def strftime(layout: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(layout):
        pct = layout.find("%", i)
        if pct < 0:
            out.append(layout[i:])
            break
        out.append(layout[i:pct])
        if pct + 1 == len(layout):
            out.append("%")
            break
        c = layout[pct + 1]
        if c == "%":
            out.append("%")
        elif c in _STRFTIME:
            out.append(format_time(RUN_START, _STRFTIME[c]))
        else:
            out.append("%" + c)
        i = pct + 2
    return "".join(out)


def time_ordered_uuid() -> str:
    """Packer's uuid: 8 hex digits of the current unix time, then 24 random hex digits
    in the 8-4-4-4-12 layout. Sorts by creation time; not an RFC 4122 UUID."""
    b = os.urandom(12).hex()
    return f"{int(time.time()) & 0xFFFFFFFF:08x}-{b[0:4]}-{b[4:8]}-{b[8:12]}-{b[12:16]}{b[16:]}"


# --- strings -------------------------------------------------------------------------


def split(s: str, sep: str, index: int) -> str:
    parts = go_split(s, sep)
    if index >= len(parts):
        raise FuncError(
            f"the substring {index} was unavailable using the separator value, {sep}, "
            f"only {len(parts)} values were found"
        )
    if index < 0:
        # Go panics on a negative index; text/template reports the recovered panic.
        raise FuncError(f"runtime error: index out of range [{index}]")
    return parts[index]


def go_split(s: str, sep: str) -> list[str]:
    """strings.Split: an empty separator splits after each character."""
    if sep == "":
        return list(s)
    return s.split(sep)


def go_replace(s: str, old: str, new: str, n: int) -> str:
    """strings.Replace: n < 0 replaces all; an empty ``old`` matches between runes."""
    if n == 0 or (old == new):
        return s
    if old == "":
        count = len(s) + 1 if n < 0 else min(n, len(s) + 1)
        pieces = [new]
        for i, ch in enumerate(s):
            pieces.append(ch)
            if i + 1 < count:
                pieces.append(new)
        return "".join(pieces)
    return s.replace(old, new, n if n >= 0 else -1)


def replace(old: str, new: str, n: int, src: str) -> str:
    return go_replace(src, old, new, n)


def replace_all(old: str, new: str, src: str) -> str:
    return go_replace(src, old, new, -1)


def sed(*_args: Any) -> str:
    raise FuncError(_SED_DEPRECATED)


_AMI_INVALID = re.compile(r"[^a-zA-Z0-9()\[\] ./\-'@_]")
_GCE_VALID = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")


def clean_ami_name(s: str) -> str:
    """The amazon builders' clean_resource_name: characters an AMI name may not hold
    become ``-``."""
    return _AMI_INVALID.sub("-", s)


def clean_gce_name(s: str) -> str:
    """The googlecompute builder's clean_resource_name: lower-case, and every
    character outside ``[a-z0-9]`` becomes ``-``; a valid name is returned as is."""
    if _GCE_VALID.match(s):
        return s
    return "".join(c if ("a" <= c <= "z" or "0" <= c <= "9") else "-" for c in s.lower())


# --- the context-bound map -----------------------------------------------------------


def _only_in_variables(message: str) -> Callable[..., str]:
    def refuse(*_args: Any) -> str:
        raise FuncError(message)

    return refuse


def _unavailable(message: str) -> Callable[[], str]:
    def refuse() -> str:
        raise FuncError(message)

    return refuse


def go_lower(s: str) -> str:
    # Go maps case rune by rune; Python's str.lower may change the length ("İ").
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in s)


def go_upper(s: str) -> str:
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in s)


_STATIC: dict[str, GoFunc] = {
    "timestamp": GoFunc(timestamp),
    "isotime": GoFunc(isotime, variadic="string"),
    "strftime": GoFunc(strftime, ("string",)),
    "uuid": GoFunc(time_ordered_uuid),
    "pwd": GoFunc(os.getcwd),
    "split": GoFunc(split, ("string", "string", "int")),
    "replace": GoFunc(replace, ("string", "string", "int", "string")),
    "replace_all": GoFunc(replace_all, ("string", "string", "string")),
    "sed": GoFunc(sed, ("string", "string")),
    "lower": GoFunc(go_lower, ("string",)),
    "upper": GoFunc(go_upper, ("string",)),
}


#: Every name Packer registers, in every context (what a parse accepts).
FUNCTION_NAMES = frozenset(
    [
        *_STATIC,
        "user",
        "env",
        "template_dir",
        "build_name",
        "build_type",
        "packer_version",
        "build",
        "consul_key",
        "vault",
        "aws_secretsmanager",
    ]
)


def make_funcs(ctx: RenderContext) -> dict[str, GoFunc]:
    """The function map for one rendering context (Packer's FuncGens bound to it)."""
    funcs = dict(_STATIC)

    def user(name: str) -> str:
        if name in ctx.user_variables:
            return ctx.user_variables[name]
        if ctx.in_variables:
            raise FuncError(
                f"Error: variable not set: {name}: Please make sure that the variable "
                "you're referencing has been defined; Packer treats all variables used to "
                "interpolate other user variables as required."
            )
        return ""

    def env(name: str) -> str:
        if not ctx.allow_env:
            raise FuncError("env vars are not allowed here")
        return os.environ.get(name, "")

    def template_dir() -> str:
        if not ctx.template_dir:
            raise FuncError("template path not available")
        return os.path.abspath(ctx.template_dir)

    funcs["user"] = GoFunc(user, ("string",))
    funcs["env"] = GoFunc(env, ("string",))
    funcs["template_dir"] = GoFunc(template_dir)
    funcs["build_name"] = GoFunc(_build_info(ctx.build_name, "build_name"))
    funcs["build_type"] = GoFunc(_build_info(ctx.build_type, "build_type"))
    funcs["packer_version"] = GoFunc(_packer_version(ctx))
    funcs["build"] = GoFunc(_build_func(ctx), ("string",))

    if ctx.allow_env:
        from imagesmith.template import secretstores

        funcs["consul_key"] = GoFunc(secretstores.consul_key, ("string",))
        funcs["vault"] = GoFunc(secretstores.vault, ("string", "string"))
        funcs["aws_secretsmanager"] = GoFunc(secretstores.aws_secretsmanager, (), "string")
    else:
        funcs["consul_key"] = GoFunc(
            _only_in_variables("consul_key is not allowed here"), ("string",)
        )
        funcs["vault"] = GoFunc(
            _only_in_variables("Vault vars are only allowed in the variables section"),
            ("string", "string"),
        )
        funcs["aws_secretsmanager"] = GoFunc(
            _only_in_variables("AWS Secrets Manager is only allowed in the variables section"),
            (),
            variadic="string",
        )

    for name, fn in ctx.functions.items():
        funcs[name] = fn if isinstance(fn, GoFunc) else _wrap_plain(fn)
    return funcs


def _build_info(value: str | None, name: str) -> Callable[[], str]:
    if not value:
        return _unavailable(f"{name} not available")
    return lambda: value


def _packer_version(ctx: RenderContext) -> Callable[[], str]:
    if not ctx.packer_version:
        return _unavailable("packer_version not available")
    return lambda: imagesmith.PACKER_COMPAT_VERSION


def _build_func(ctx: RenderContext) -> Callable[[str], Any]:
    mode = ctx.build_mode

    def build(key: str) -> Any:
        if mode == "placeholder":
            if key in ctx.build_keys:
                return "{{." + key + "}}"
            raise FuncError(f"loaded data, but couldnt find {key} in it.")
        if mode == "data":
            if key in ctx.generated:
                return ctx.generated[key]
            raise FuncError(f"loaded data, but couldnt find {key} in it.")
        raise FuncError(
            "Error validating build variable: the given variable ID will not be passed "
            "into your plugin."
        )

    return build


def placeholder_data(keys: Collection[str]) -> dict[str, str]:
    """What ``{{ .Key }}`` reads during a provisioner's Prepare: a note that the
    value only exists at build time."""
    return {k: f"Build_{k}. {PLACEHOLDER_MSG}" for k in keys}


@lru_cache(maxsize=256)
def _wrap_plain(fn: Callable[..., Any]) -> GoFunc:
    """Extra functions given as plain callables take strings, one per parameter."""
    import inspect

    params = inspect.signature(fn).parameters.values()
    fixed = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    variadic = "string" if any(p.kind == p.VAR_POSITIONAL for p in params) else None
    return GoFunc(fn, ("string",) * len(fixed), variadic)

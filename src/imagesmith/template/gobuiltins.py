"""Go's template builtins and the value model the executor shares with functions.

Values are plain Python objects standing for Go's: ``str`` string, ``int`` int,
``Uint8`` uint8, ``float`` float64, ``bool``, ``None`` a nil interface, lists and
tuples ``[]interface {}``, mappings ``map[string]interface {}``, other objects
structs read by attribute. ``MISSING`` is Go's invalid reflect.Value: what a missing
map key or field yields, printed as ``<no value>``.

A function fails by raising ``FuncError``; the executor reports it as
``error calling <name>: <message>``, as Go reports a returned error or a panic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from imagesmith.golang import Uint8, format_value, go_type, is_print, sprint, sprintf, sprintln


class FuncError(Exception):
    """A template function returned an error; ``str()`` is its Go error text."""


class GoFunc:
    """A template function with its Go signature.

    ``params`` and ``variadic`` use Go type names: ``string``, ``int``, ``bool``,
    ``float64``, ``any`` (interface{}) and ``value`` (reflect.Value, which the
    builtins take and which accepts even a missing value).
    """

    __slots__ = ("call", "params", "variadic")

    def __init__(
        self,
        call: Callable[..., Any],
        params: tuple[str, ...] = (),
        variadic: str | None = None,
    ) -> None:
        self.call = call
        self.params = params
        self.variadic = variadic


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


# --- truth and comparison --------------------------------------------------------------


def is_true(v: Any) -> tuple[bool, bool]:
    """Go's isTrue: (truth, ok)."""
    if v is MISSING or v is None:
        return False, True
    if isinstance(v, bool):
        return v, True
    if isinstance(v, int | float | complex):
        return v != 0, True
    if isinstance(v, str | list | tuple | Mapping):
        return len(v) > 0, True
    return True, True


def _basic_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Uint8):
        return "uint"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    if isinstance(v, str):
        return "string"
    return "invalid"


def deref(v: Any) -> Any:
    """indirectInterface: a nil interface is no value at all."""
    return MISSING if v is None else v


_BAD_COMPARISON = "incompatible types for comparison"
_BAD_COMPARISON_TYPE = "invalid type for comparison"


def _comparable(v: Any) -> bool:
    return not isinstance(v, list | Mapping)


def builtin_eq(arg1: Any, *arg2: Any) -> bool:
    arg1 = deref(arg1)
    if arg1 is not MISSING and not _comparable(arg1):
        raise FuncError(f"uncomparable type {go_type(arg1)}: {format_value(arg1)}")
    if not arg2:
        raise FuncError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in arg2:
        arg = deref(arg)
        k2 = _basic_kind(arg)
        if k1 != k2:
            if {k1, k2} == {"int", "uint"}:
                truth = int(arg1) == int(arg)
            elif arg1 is not MISSING and arg is not MISSING:
                raise FuncError(_BAD_COMPARISON)
            else:
                truth = False
        elif k1 != "invalid":
            truth = arg1 == arg
        elif arg is MISSING or arg1 is MISSING:
            truth = arg is arg1
        else:
            if not _comparable(arg):
                raise FuncError(f"runtime error: comparing uncomparable type {go_type(arg)}")
            truth = arg1 is arg or arg1 == arg
        if truth:
            return True
    return False


def builtin_ne(arg1: Any, arg2: Any) -> bool:
    return not builtin_eq(arg1, arg2)


def builtin_lt(arg1: Any, arg2: Any) -> bool:
    arg1, arg2 = deref(arg1), deref(arg2)
    k1, k2 = _basic_kind(arg1), _basic_kind(arg2)
    if "invalid" in (k1, k2):
        raise FuncError(_BAD_COMPARISON_TYPE)
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return bool(int(arg1) < int(arg2))
        raise FuncError(_BAD_COMPARISON)
    if k1 in ("bool", "complex"):
        raise FuncError(_BAD_COMPARISON_TYPE)
    return bool(arg1 < arg2)


def builtin_le(arg1: Any, arg2: Any) -> bool:
    return builtin_lt(arg1, arg2) or builtin_eq(arg1, arg2)


def builtin_gt(arg1: Any, arg2: Any) -> bool:
    return not builtin_le(arg1, arg2)


def builtin_ge(arg1: Any, arg2: Any) -> bool:
    return not builtin_lt(arg1, arg2)


def builtin_not(arg: Any) -> bool:
    return not is_true(deref(arg))[0]


# --- indexing ----------------------------------------------------------------------------


def _index_arg(index: Any, cap: int) -> int:
    if index is MISSING or index is None:
        raise FuncError("cannot index slice/array with nil")
    if isinstance(index, bool) or not isinstance(index, int):
        raise FuncError(f"cannot index slice/array with type {go_type(index)}")
    if index < 0 or index > cap:
        raise FuncError(f"index out of range: {index}")
    return int(index)


def _encode(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def builtin_index(item: Any, *indexes: Any) -> Any:
    item = deref(item)
    if item is MISSING:
        raise FuncError("index of untyped nil")
    for index in indexes:
        index = deref(index)
        if item is None:
            raise FuncError("index of nil pointer")
        if isinstance(item, str):
            data = _encode(item)
            x = _index_arg(index, len(data))
            if x == len(data):
                raise FuncError("reflect: string index out of range")
            item = Uint8(data[x])
        elif isinstance(item, list | tuple):
            x = _index_arg(index, len(item))
            if x == len(item):
                raise FuncError("reflect: slice index out of range")
            item = item[x]
        elif isinstance(item, Mapping):
            if index is MISSING:
                raise FuncError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise FuncError(f"value has type {go_type(index)}; should be string")
            item = item.get(index)
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def builtin_slice(item: Any, *indexes: Any) -> Any:
    item = deref(item)
    if item is MISSING:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        seq: Any = _encode(item)
    elif isinstance(item, list | tuple):
        seq = list(item)
    else:
        raise FuncError(f"can't slice item of type {go_type(item)}")
    idx = [0, len(seq), len(seq)]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, len(seq))
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = seq[idx[0] : idx[1]]
    if isinstance(part, bytes):
        return part.decode("utf-8", "surrogateescape")
    return part


def builtin_len(item: Any) -> int:
    if item is MISSING:
        raise FuncError("reflect: call of reflect.Value.Type on zero Value")
    if item is None:
        raise FuncError("len of nil pointer")
    if isinstance(item, str):
        return len(_encode(item))
    if isinstance(item, list | tuple | Mapping):
        return len(item)
    raise FuncError(f"len of type {go_type(item)}")


def builtin_call(fn: Any, *args: Any) -> Any:
    fn = deref(fn)
    if fn is MISSING:
        raise FuncError("call of nil")
    if not callable(fn):
        raise FuncError(f"non-function of type {go_type(fn)}")
    return fn(*(None if a is MISSING else a for a in args))


# --- escaping ----------------------------------------------------------------------------


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*("<no value>" if a is None or a is MISSING else a for a in args))


_HTML = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
_JS = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def builtin_html(*args: Any) -> str:
    s = _eval_args(args)
    return "".join(_HTML.get(c, c) for c in s)


def builtin_js(*args: Any) -> str:
    out = []
    for c in _eval_args(args):
        if c in _JS:
            out.append(_JS[c])
        elif c < " " or (ord(c) >= 0x80 and not is_print(c)):
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def builtin_urlquery(*args: Any) -> str:
    import urllib.parse

    return urllib.parse.quote_plus(_encode(_eval_args(args)), safe="-_.~")


def _builtin_and_or(*_args: Any) -> Any:  # evaluated lazily by the executor
    raise AssertionError("and/or are evaluated by the executor")


BUILTINS: dict[str, GoFunc] = {
    "and": GoFunc(_builtin_and_or, ("value",), "value"),
    "or": GoFunc(_builtin_and_or, ("value",), "value"),
    "not": GoFunc(builtin_not, ("value",)),
    "len": GoFunc(builtin_len, ("value",)),
    "index": GoFunc(builtin_index, ("value",), "value"),
    "slice": GoFunc(builtin_slice, ("value",), "value"),
    "print": GoFunc(sprint, (), "any"),
    "printf": GoFunc(sprintf, ("string",), "any"),
    "println": GoFunc(sprintln, (), "any"),
    "html": GoFunc(builtin_html, (), "any"),
    "js": GoFunc(builtin_js, (), "any"),
    "urlquery": GoFunc(builtin_urlquery, (), "any"),
    "call": GoFunc(builtin_call, ("value",), "value"),
    "eq": GoFunc(builtin_eq, ("value",), "value"),
    "ne": GoFunc(builtin_ne, ("value", "value")),
    "lt": GoFunc(builtin_lt, ("value", "value")),
    "le": GoFunc(builtin_le, ("value", "value")),
    "gt": GoFunc(builtin_gt, ("value", "value")),
    "ge": GoFunc(builtin_ge, ("value", "value")),
}

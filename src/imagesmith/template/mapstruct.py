"""Decode the core's own template structures the way Packer's mapstructure calls do.

Packer 1.6.6 decodes the template root, each builder, provisioner and post-processor
entry into small Go structs before any plugin sees them. Which keys match, what is
converted and the error texts all follow from mapstructure's rules, reproduced here
for exactly those structs (component configs go through ``imagesmith.config.decode``):

- a field matches the key spelled as its Go name or tag, else the first key equal to
  it ignoring case;
- ``weak`` decoding turns numbers and bools into strings, wraps a single value into a
  list, and accepts an empty list for a map;
- errors name the field as mapstructure does (``'Type'``, ``'builders'``,
  ``'sensitive-variables[0]'``) and are reported sorted, all together.

JSON numbers are float64 in Go, which is what the error texts call them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from imagesmith.golang import DurationError, format_float, format_value, parse_duration

Kind = Literal["string", "strings", "list", "map", "any", "bool", "duration", "bytes", "comments"]


@dataclass(frozen=True)
class Field:
    """One field of a Go struct: its Go name, mapstructure tag and kind of value."""

    go_name: str
    kind: Kind
    tag: str | None = None

    @property
    def key(self) -> str:
        return self.tag or self.go_name


@dataclass
class Decoded:
    """Result of decoding one map: values by Go name, the raw key each came from,
    the keys nobody used, and the errors, sorted, each with the raw key it is about."""

    values: dict[str, Any]
    keys: dict[str, str]
    unused: list[str]
    errors: list[tuple[str, str]]

    @property
    def messages(self) -> list[str]:
        return [message for message, _ in self.errors]


_UNSET = object()


def go_type(value: Any) -> str:
    """The Go type of a decoded JSON value, as error texts name it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"


def go_kind(value: Any) -> str:
    """reflect.Kind of a decoded JSON value (``slice``, ``map``, ``string``...)."""
    if isinstance(value, list):
        return "slice"
    if isinstance(value, Mapping):
        return "map"
    return go_type(value)


def go_value(value: Any) -> str:
    """``%v`` of a decoded JSON value (numbers are float64: ``1e+06``)."""
    return format_value(_floats(value))


def _floats(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _floats(v) for k, v in value.items()}
    return value


def type_error(name: str, expected: str, value: Any) -> str:
    return (
        f"'{name}' expected type '{expected}', got unconvertible type "
        f"'{go_type(value)}', value: '{go_value(value)}'"
    )


def find_key(raw: Mapping[str, Any], name: str) -> str | None:
    """The key of ``raw`` that mapstructure matches to field ``name``."""
    if name in raw:
        return name
    folded = name.lower()
    for key in raw:
        if key.lower() == folded:
            return key
    return None


def decode_struct(raw: Mapping[str, Any], fields: Sequence[Field], *, weak: bool) -> Decoded:
    """Decode ``raw`` into the given fields (mapstructure with the duration hook)."""
    values: dict[str, Any] = {}
    keys: dict[str, str] = {}
    errors: list[tuple[str, str]] = []
    used: set[str] = set()
    for f in fields:
        key = find_key(raw, f.key)
        if key is None:
            continue
        used.add(key)
        keys[f.go_name] = key
        found: list[str] = []
        value = decode_value(f.kind, f.key, raw[key], weak, found)
        errors.extend((message, key) for message in found)
        if value is not _UNSET:
            values[f.go_name] = value
    unused = [k for k in raw if k not in used]
    return Decoded(values, keys, unused, sorted(errors))


def decode_value(kind: Kind, name: str, value: Any, weak: bool, errors: list[str]) -> Any:
    """One value of the given kind; on error append the message and return _UNSET."""
    if value is None:
        return _zero(kind)
    if kind == "any":
        return value
    if kind == "string":
        return _string(name, value, weak, errors)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        errors.append(type_error(name, "bool", value))
        return _UNSET
    if kind == "duration":
        return _duration(name, value, weak, errors)
    if kind == "map":
        return _map(name, value, weak, errors)
    if kind in ("strings", "list", "bytes", "comments"):
        return _list(kind, name, value, weak, errors)
    raise ValueError(f"unknown field kind {kind}")


def _zero(kind: Kind) -> Any:
    return {"string": "", "strings": [], "list": [], "duration": 0.0}.get(kind)


def _string(name: str, value: Any, weak: bool, errors: list[str]) -> Any:
    if isinstance(value, str):
        return value
    if weak and isinstance(value, bool):
        return "1" if value else "0"
    if weak and isinstance(value, int | float):
        return format_float(float(value), "f", -1)
    errors.append(type_error(name, "string", value))
    return _UNSET


def _duration(name: str, value: Any, weak: bool, errors: list[str]) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except (DurationError, ValueError) as exc:
            errors.append(f"error decoding '{name}': {exc}")
            return _UNSET
    if isinstance(value, bool):
        if weak:
            return 1e-9 if value else 0.0
    elif isinstance(value, int | float):
        return int(value) / 1e9
    errors.append(type_error(name, "time.Duration", value))
    return _UNSET


def _map(name: str, value: Any, weak: bool, errors: list[str]) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if weak and isinstance(value, list):
        merged: dict[str, Any] = {}
        ok = True
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                merged.update(item)
            elif item is not None:
                errors.append(f"'{name}[{i}]' expected a map, got '{go_kind(item)}'")
                ok = False
        return merged if ok else _UNSET
    errors.append(f"'{name}' expected a map, got '{go_kind(value)}'")
    return _UNSET


def _list(kind: Kind, name: str, value: Any, weak: bool, errors: list[str]) -> Any:
    if not isinstance(value, list):
        if not weak:
            errors.append(f"'{name}': source data must be an array or slice, got {go_kind(value)}")
            return _UNSET
        if isinstance(value, Mapping) and not value:
            return []
        value = [value]
    out: list[Any] = []
    ok = True
    for i, item in enumerate(value):
        item_name = f"{name}[{i}]"
        if kind == "strings":
            decoded = _string(item_name, item, weak, errors) if item is not None else ""
        elif kind == "bytes":
            decoded = _byte(item_name, item, errors)
        elif kind == "comments":
            decoded = _comment_map(item_name, item, errors)
        else:
            decoded = item
        if decoded is _UNSET:
            ok = False
        else:
            out.append(decoded)
    return out if ok else _UNSET


def _byte(name: str, value: Any, errors: list[str]) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) & 0xFF
    errors.append(type_error(name, "uint8", value))
    return _UNSET


def _comment_map(name: str, value: Any, errors: list[str]) -> Any:
    if not isinstance(value, Mapping):
        errors.append(f"'{name}' expected a map, got '{go_kind(value)}'")
        return _UNSET
    out: dict[str, str] = {}
    for k, v in value.items():
        text = _string(f"{name}[{k}]", v, False, errors) if v is not None else ""
        if text is _UNSET:
            return _UNSET
        out[k] = text
    return out


def mapstructure_errors(errors: Sequence[str]) -> str:
    """mapstructure's aggregate error text (``N error(s) decoding:``)."""
    return f"{len(errors)} error(s) decoding:\n\n" + "\n".join(f"* {e}" for e in errors)

"""Decode a component's raw template config into its typed dataclass.

This reproduces what Packer's plugins get from mapstructure with weak typing, so that
templates decode the same way and fail with the same texts:

- keys match field names (and aliases) case-insensitively; when one key is given in two
  spellings, the one that is not the field's own name is reported as unknown;
- weak typing: ``"true"`` is a bool, ``"5"`` an int, a string where a list is expected
  is split on commas, a number where a string is expected becomes its text, durations
  are Go duration strings or nanoseconds;
- type errors are all reported together as ``N error(s) decoding:``, and only when the
  types are right are unknown keys reported (``unknown configuration key: '"x"'``);
  the error carries the config decoded from the rest, which the planner still
  validates, so that one run reports every problem;
- every string, nested ones and map keys included, is interpolated with ``render``
  unless its field is ``late`` (rendered by the component at run time) or ``raw``.

Keys starting with ``packer_`` are Packer's injected keys and are never unknown.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from imagesmith.config.fields import SET_KEYS_ATTR, Duration, FieldSpec, spec_of
from imagesmith.errors import ConfigError, format_go_multierror
from imagesmith.template.mapstruct import go_kind, go_type, go_value

Render = Callable[[str], str]


class DecodeError(ConfigError):
    """Type errors (``N error(s) decoding:``) or unknown keys (go-multierror list).

    ``partial`` is the config decoded from everything else (each failed field left at its
    default) and ``failed_keys`` the lower-cased top-level keys that failed, so that the
    caller can still validate the rest and report every problem in one run.
    """

    def __init__(
        self,
        errors: list[str],
        *,
        unknown_keys: bool = False,
        partial: Any = None,
        failed_keys: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(errors)
        self.unknown_keys = unknown_keys
        self.partial = partial
        self.failed_keys = failed_keys
        if unknown_keys:
            text = format_go_multierror(errors)
        else:
            text = f"{len(errors)} error(s) decoding:\n\n" + "\n".join(f"* {e}" for e in errors)
        self.args = (text,)

    def __str__(self) -> str:
        return str(self.args[0])


class RenderFailure(ConfigError):
    """A string could not be interpolated; the message is Packer's ``render '<key>'...``."""

    def __init__(self, message: str) -> None:
        super().__init__([message])
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


def decode(
    cls: type[Any], raw: Mapping[str, Any], *, render: Render | None = None, key_path: str = ""
) -> Any:
    """Build ``cls`` from ``raw``. Raises ``DecodeError`` or ``RenderFailure``."""
    decoder = _Decoder(render)
    obj = decoder.decode_dataclass(cls, raw, key_path)
    if decoder.render_error is not None:
        raise RenderFailure(decoder.render_error)
    failed = frozenset(decoder.failed_keys)
    if decoder.errors:
        # mapstructure reports its decoding errors sorted.
        raise DecodeError(sorted(decoder.errors), partial=obj, failed_keys=failed)
    if decoder.unknown:
        deprecated: frozenset[str] = getattr(cls, "DEPRECATED_KEYS", frozenset())
        unknown = sorted(
            _DEPRECATED.format(key=k) if k in deprecated else _UNKNOWN.format(key=_go_quote(k))
            for k in decoder.unknown
        )
        raise DecodeError(unknown, unknown_keys=True, partial=obj, failed_keys=failed)
    return obj


_UNKNOWN = "unknown configuration key: '{key}'"
_DEPRECATED = (
    "Deprecated configuration key: '{key}'. Please call `packer fix` against your template to "
    "update your template to be compatible with the current version of Packer. Visit "
    "https://www.packer.io/docs/commands/fix/ for more detail."
)


def _top_key(path: str) -> str:
    """``volumes[0].volume_size`` -> ``volumes``: the template key a problem is under."""
    return re.split(r"[.\[]", path, maxsplit=1)[0].lower()


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fields_by_key(cls: type[Any]) -> dict[str, tuple[dataclasses.Field[Any], FieldSpec, str]]:
    """Lower-cased template key -> (field, spec, canonical key), squashed fields included."""
    out: dict[str, tuple[dataclasses.Field[Any], FieldSpec, str]] = {}
    for f in dataclasses.fields(cls):
        spec = spec_of(f)
        if spec.squash:
            continue
        for key in (f.name, *spec.aliases):
            out[key.lower()] = (f, spec, key)
    return out


_HINTS_CACHE: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS_CACHE.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _HINTS_CACHE[cls] = hints
    return hints


class _Decoder:
    def __init__(self, render: Render | None) -> None:
        self.render = render
        self.errors: list[str] = []
        self.unknown: list[str] = []
        self.render_error: str | None = None
        #: Lower-cased top-level keys whose value (or part of it) could not be decoded.
        self.failed_keys: set[str] = set()

    # -- dataclasses -------------------------------------------------------------------

    def decode_dataclass(self, cls: type[Any], raw: Mapping[str, Any], path: str) -> Any:
        obj = cls()
        consumed = self._fill(obj, cls, raw, path)
        for key in raw:
            if key not in consumed and not key.lower().startswith("packer_"):
                self.unknown.append(f"{path}{key}")
        return obj

    def _fill(self, obj: Any, cls: type[Any], raw: Mapping[str, Any], path: str) -> set[str]:
        """Set every field of ``obj`` found in ``raw``; return the raw keys consumed."""
        hints = _hints(cls)
        consumed: set[str] = set()
        set_names: set[str] = set()
        by_key = _fields_by_key(cls)
        # An exact-case key wins over another spelling of the same field.
        chosen: dict[str, str] = {}
        for key in raw:
            entry = by_key.get(key.lower())
            if entry is None:
                continue
            f, _, _ = entry
            previous = chosen.get(f.name)
            if previous is None or (key in (f.name, *spec_of(f).aliases) and previous != f.name):
                chosen[f.name] = key
        for name, key in chosen.items():
            f, spec, _ = by_key[key.lower()]
            consumed.add(key)
            set_names.add(name)
            value = raw[key]
            interpolate = not (spec.late or spec.raw)
            errors_before = len(self.errors)
            decoded = self.value(hints[name], value, f"{path}{key}", interpolate)
            if len(self.errors) > errors_before:
                self.failed_keys.add(_top_key(f"{path}{key}"))
            if decoded is not _INVALID:
                setattr(obj, name, decoded)
        for f in dataclasses.fields(cls):
            spec = spec_of(f)
            if spec.squash:
                inner_cls = hints[f.name]
                inner = getattr(obj, f.name)
                consumed |= self._fill(inner, inner_cls, raw, path)
                set_names |= getattr(inner, SET_KEYS_ATTR, frozenset())
            elif spec.required and f.name not in set_names:
                self.errors.append(f"'{path}{f.name}' must be specified")
                self.failed_keys.add(_top_key(f"{path}{f.name}"))
        object.__setattr__(obj, SET_KEYS_ATTR, frozenset(set_names))
        return consumed

    # -- values ------------------------------------------------------------------------

    def value(self, tp: Any, value: Any, key: str, interpolate: bool) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if value is None:
                return None
            return self.value(inner[0], value, key, interpolate)
        if tp is Any or tp is object:
            return self.render_tree(value, key) if interpolate else value
        if value is None:
            return _INVALID
        if origin is list:
            return self.list_value(args[0] if args else Any, value, key, interpolate)
        if origin is dict:
            return self.dict_value(args[1] if len(args) > 1 else Any, value, key, interpolate)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if not isinstance(value, Mapping):
                self.errors.append(f"'{key}' expected a map, got '{_go_kind(value)}'")
                return _INVALID
            return self.decode_dataclass(tp, value, f"{key}.")
        if tp is Duration:
            return self.duration(value, key, interpolate)
        if tp is str:
            return self.string(value, key, interpolate)
        if tp is bool:
            return self.boolean(value, key, interpolate)
        if tp is int:
            return self.integer(value, key, interpolate)
        if tp is float:
            return self.floating(value, key, interpolate)
        raise TypeError(f"unsupported config field type {tp!r} for {key}")

    def render_string(self, text: str, key: str) -> str:
        if self.render is None or "{{" not in text:
            return text
        try:
            return self.render(text)
        except Exception as exc:  # the engine's RenderError, reported Packer's way
            if self.render_error is None:
                message = str(exc)
                verb = "invalid" if _is_parse_error(message) else "render"
                # Packer names the template key, not the list index or nested field.
                top = key.split("[", 1)[0].split(".", 1)[0]
                self.render_error = f"{verb} '{top}': {message} in:\n\n{text}"
            return text

    def render_tree(self, value: Any, key: str) -> Any:
        if isinstance(value, str):
            return self.render_string(value, key)
        if isinstance(value, list):
            return [self.render_tree(v, f"{key}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            return {
                self.render_string(str(k), key): self.render_tree(v, f"{key}.{k}")
                for k, v in value.items()
            }
        return value

    def string(self, value: Any, key: str, interpolate: bool) -> Any:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return _go_float(value)
        if isinstance(value, str):
            return self.render_string(value, key) if interpolate else value
        self.type_error(key, "string", value)
        return _INVALID

    def boolean(self, value: Any, key: str, interpolate: bool) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return value != 0
        if isinstance(value, str):
            text = self.render_string(value, key) if interpolate else value
            if text == "":
                return False
            if text in ("1", "t", "T", "TRUE", "true", "True"):
                return True
            if text in ("0", "f", "F", "FALSE", "false", "False"):
                return False
            self.errors.append(
                f"cannot parse '{key}' as bool: strconv.ParseBool: parsing {_go_quote(text)}: "
                "invalid syntax"
            )
            return _INVALID
        self.type_error(key, "bool", value)
        return _INVALID

    def integer(self, value: Any, key: str, interpolate: bool) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        if isinstance(value, str):
            text = self.render_string(value, key) if interpolate else value
            if text == "":
                return 0
            try:
                return int(text, 0) if text.lower().startswith(("0x", "0o", "0b")) else int(text)
            except ValueError:
                self.errors.append(
                    f"cannot parse '{key}' as int: strconv.ParseInt: parsing {_go_quote(text)}: "
                    "invalid syntax"
                )
                return _INVALID
        self.type_error(key, "int", value)
        return _INVALID

    def floating(self, value: Any, key: str, interpolate: bool) -> Any:
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            text = self.render_string(value, key) if interpolate else value
            if text == "":
                return 0.0
            try:
                return float(text)
            except ValueError:
                self.errors.append(
                    f"cannot parse '{key}' as float: strconv.ParseFloat: parsing "
                    f"{_go_quote(text)}: invalid syntax"
                )
                return _INVALID
        self.type_error(key, "float64", value)
        return _INVALID

    def duration(self, value: Any, key: str, interpolate: bool) -> Any:
        from imagesmith.golang import parse_duration

        if isinstance(value, bool):
            self.type_error(key, "time.Duration", value)
            return _INVALID
        if isinstance(value, int | float):
            return Duration(value / 1e9)
        if isinstance(value, str):
            text = self.render_string(value, key) if interpolate else value
            if text == "":
                return Duration(0)
            try:
                return Duration(parse_duration(text))
            except ValueError as exc:
                self.errors.append(f"error decoding '{key}': {exc}")
                return _INVALID
        self.type_error(key, "time.Duration", value)
        return _INVALID

    def list_value(self, item_tp: Any, value: Any, key: str, interpolate: bool) -> Any:
        if isinstance(value, str):
            # mapstructure's weak decoding splits a string on commas into a list.
            text = self.render_string(value, key) if interpolate else value
            items: list[Any] = text.split(",") if text else []
            interpolate = False
        elif isinstance(value, list):
            items = value
        elif isinstance(value, Mapping) and not (
            dataclasses.is_dataclass(item_tp) or typing.get_origin(item_tp) is dict
        ):
            self.type_error(key, "[]" + _go_type_name(item_tp), value)
            return _INVALID
        else:
            items = [value]
        out = []
        for i, item in enumerate(items):
            decoded = self.value(item_tp, item, f"{key}[{i}]", interpolate)
            if decoded is not _INVALID:
                out.append(decoded)
        return out

    def dict_value(self, value_tp: Any, value: Any, key: str, interpolate: bool) -> Any:
        maps: list[Mapping[str, Any]]
        if isinstance(value, Mapping):
            maps = [value]
        elif isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
            # Weak decoding merges a list of maps into one map.
            maps = value
        else:
            self.errors.append(f"'{key}' expected a map, got '{_go_kind(value)}'")
            return _INVALID
        out: dict[str, Any] = {}
        for m in maps:
            for k, v in m.items():
                name = self.render_string(str(k), key) if interpolate else str(k)
                decoded = self.value(value_tp, v, f"{key}[{k}]", interpolate)
                if decoded is not _INVALID:
                    out[name] = decoded
        return out

    def type_error(self, key: str, expected: str, value: Any) -> None:
        self.errors.append(
            f"'{key}' expected type '{expected}', got unconvertible type "
            f"'{_go_type_of(value)}', value: '{go_value(value)}'"
        )


class _Invalid:
    pass


_INVALID: Any = _Invalid()


def _is_parse_error(message: str) -> bool:
    # Go reports parse errors as "template: root:1: ..." (no column) and execution
    # errors as "template: root:1:2: executing ...".
    return message.startswith("template: ") and "executing" not in message


def _go_type_of(value: Any) -> str:
    # Plugins decode from a map[interface{}]interface{}, the core from map[string]...
    if isinstance(value, Mapping):
        return "map[interface {}]interface {}"
    return go_type(value)


def _go_kind(value: Any) -> str:
    return go_kind(value) if isinstance(value, list | Mapping) else _go_type_of(value)


def _go_type_name(tp: Any) -> str:
    return {str: "string", int: "int", bool: "bool", float: "float64"}.get(tp, "interface {}")


def _go_float(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)

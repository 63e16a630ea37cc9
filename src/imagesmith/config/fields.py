"""How a component declares its configuration.

A component's config is a plain dataclass. Each field is a template key of the same
name; ``opt`` attaches what the decoder needs to know beyond the type::

    @dataclass
    class Config:
        target: str = opt(required=True)
        content: str = ""
        execute_command: list[str] = opt(default_factory=list, late=True)
        comm: CommunicatorConfig = opt(squash=True)

Keys that ``packer fix`` rewrites are listed in the config class's
``DEPRECATED_KEYS`` (a ``ClassVar[frozenset[str]]``); using one is reported with Packer's
"Deprecated configuration key" message instead of "unknown configuration key".

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``Duration``,
``list[...]`` and ``dict[str, ...]`` of those, ``X | None``, ``Any`` (raw JSON value),
and nested dataclasses (as an object, a list of objects, or squashed into the parent).
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING
from typing import Any


class Duration(float):
    """A duration in seconds, written in templates as a Go duration (``"1m30s"``) or as
    a number of nanoseconds (Packer's encoding)."""


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    aliases: tuple[str, ...] = ()
    # Rendered at run time by the component itself with build data, not at decode time.
    late: bool = False
    # The fields of a nested dataclass appear at the parent's level (Go's ",squash").
    squash: bool = False
    required: bool = False
    # Never interpolated at all (e.g. keys Packer leaves raw such as ``only``).
    raw: bool = False
    # Value is a secret: registered for redaction once decoded.
    secret: bool = False
    # Whether the user set the key (tracked for every field; see ``was_set``).


def opt(
    default: Any = MISSING,
    *,
    default_factory: Any = MISSING,
    alias: tuple[str, ...] | str = (),
    late: bool = False,
    squash: bool = False,
    required: bool = False,
    raw: bool = False,
    secret: bool = False,
) -> Any:
    """A dataclass field with decoding metadata (see the module docstring)."""
    aliases = (alias,) if isinstance(alias, str) else tuple(alias)
    spec = FieldSpec(aliases, late, squash, required, raw, secret)
    if default is MISSING and default_factory is MISSING:
        if squash:
            raise TypeError("a squashed field needs default_factory=<its dataclass>")
        # Required or not, every field needs a default so configs can be built empty.
        default = None
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"imagesmith": spec})
    return dataclasses.field(default=default, metadata={"imagesmith": spec})


def spec_of(f: dataclasses.Field[Any]) -> FieldSpec:
    spec = f.metadata.get("imagesmith")
    return spec if isinstance(spec, FieldSpec) else FieldSpec()


SET_KEYS_ATTR = "_imagesmith_set_keys"


def was_set(config: Any, name: str) -> bool:
    """True when the template gave a value for field ``name`` of ``config``."""
    return name in getattr(config, SET_KEYS_ATTR, frozenset())

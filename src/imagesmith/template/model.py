"""The parsed template: what ``loader`` makes of the JSON before variables and plugins.

Every section keeps what Packer's core keeps (raw builder names, provisioner configs
with the core's own keys removed, post-processor chains) plus the source line of each
entry, so that later stages can say where a problem is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from imagesmith.template.jsonparse import Locator, Path


class Located:
    """Something at ``path`` in the template. Its ``line`` is only looked up when a
    message needs it: finding lines takes a second pass over the JSON text."""

    path: Path
    locator: Locator | None

    @property
    def line(self) -> int | None:
        return self.locator.line(self.path) if self.locator is not None else None


@dataclass
class Variable(Located):
    name: str
    default: str
    #: A ``null`` default: the value must come from ``-var`` or ``-var-file``.
    required: bool
    path: Path = ()
    locator: Locator | None = field(default=None, repr=False, compare=False)


@dataclass
class BuilderDef(Located):
    index: int  # 1-based, as Packer numbers them in messages
    name: str  # raw: ``{{user `x`}}`` is only rendered once variables are known
    type: str
    config: dict[str, Any]
    path: Path = ()
    locator: Locator | None = field(default=None, repr=False, compare=False)


@dataclass
class ProvisionerDef(Located):
    index: int  # 1-based; 0 for the error-cleanup-provisioner
    type: str
    config: dict[str, Any]
    only: list[str] = field(default_factory=list)
    except_: list[str] = field(default_factory=list)
    #: Builder name (raw) -> partial config merged over ``config`` for that build.
    override: dict[str, Any] = field(default_factory=dict)
    pause_before: float = 0.0  # seconds; 0 means none
    timeout: float = 0.0
    #: Rendered with the user variables when builds are created, then an integer.
    max_retries: str = ""
    path: Path = ()
    locator: Locator | None = field(default=None, repr=False, compare=False)

    def skip(self, builder_name: str) -> bool:
        return _skip(self.only, self.except_, builder_name)


@dataclass
class PostProcessorDef(Located):
    chain: int  # 1-based index of the chain in ``post-processors``
    position: int  # 1-based position inside the chain
    type: str
    name: str  # defaults to the type
    config: dict[str, Any]
    only: list[str] = field(default_factory=list)
    except_: list[str] = field(default_factory=list)
    keep_input_artifact: bool | None = None
    path: Path = ()
    locator: Locator | None = field(default=None, repr=False, compare=False)

    def skip(self, builder_name: str) -> bool:
        return _skip(self.only, self.except_, builder_name)


def _skip(only: list[str], except_: list[str], name: str) -> bool:
    if only:
        return name not in only
    return name in except_


@dataclass
class Template:
    #: Absolute path of the file; None for the built-in template of ``console``.
    path: str | None
    #: The file as the user named it, for messages (``<stdin>`` for ``-``).
    display_name: str
    description: str = ""
    min_version: str = ""
    variables: dict[str, Variable] = field(default_factory=dict)
    #: Declared variables listed in ``sensitive-variables`` (undeclared names are
    #: ignored, as Packer ignores them).
    sensitive_variables: list[str] = field(default_factory=list)
    #: By raw name, in template order.
    builders: dict[str, BuilderDef] = field(default_factory=dict)
    provisioners: list[ProvisionerDef] = field(default_factory=list)
    post_processors: list[list[PostProcessorDef]] = field(default_factory=list)
    cleanup_provisioner: ProvisionerDef | None = None
    comments: dict[str, str] = field(default_factory=dict)
    locator: Locator | None = None

    @property
    def template_dir(self) -> str | None:
        return os.path.dirname(self.path) if self.path else None

    def line(self, path: Path) -> int | None:
        return self.locator.line(path) if self.locator is not None else None

    def where(self, line: int | None) -> str:
        """The position suffix imagesmith adds to Packer's messages."""
        return where(self.display_name, line)


def where(display_name: str, line: int | None) -> str:
    """`` (<file> line <n>)``, or nothing when the line is unknown."""
    if line is None or not display_name:
        return ""
    return f" ({display_name} line {line})"

"""Component base classes and the registry that finds them by template type name.

Builders, provisioners and post-processors register through Python entry points
(groups ``imagesmith.builders``, ``imagesmith.provisioners``,
``imagesmith.post_processors``), so a separate package can add one. Looking a type up
imports only that component's module: a component module must keep heavy imports
(boto3, asyncssh, docker) inside the functions that run a build, so ``validate``
stays fast.

Lifecycle of a component, driven by the engine:

1. ``Cls.Config`` (a dataclass, see ``imagesmith.config``) is decoded from the
   template, strings interpolated, unknown keys and wrong types reported.
2. ``Cls(config, info)`` then ``prepare()``: semantic checks, no side effects; returns
   warnings, raises ``ConfigError`` listing every problem.
3. The build runs it (``run`` / ``provision`` / ``post_process``).
"""

from __future__ import annotations

import importlib
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.engine.build import BuildRun
    from imagesmith.engine.context import BuildInfo, ProvisionContext
    from imagesmith.ui.base import Ui

Kind = Literal["builder", "provisioner", "post-processor"]

_GROUPS: dict[Kind, str] = {
    "builder": "imagesmith.builders",
    "provisioner": "imagesmith.provisioners",
    "post-processor": "imagesmith.post_processors",
}


class Component:
    type_name: ClassVar[str] = ""
    Config: ClassVar[type[Any]]
    #: Put before decoding errors, as some Packer plugins do ("Error decoding config: ").
    decode_error_prefix: ClassVar[str] = ""
    #: Template functions only this component's config may call, by name (Packer's
    #: builder-specific functions, e.g. the amazon builders' ``clean_resource_name``).
    #: The planner adds them to ``RenderContext.functions`` when it decodes this
    #: component's config, and to the renderer the component gets in ``BuildInfo``.
    template_functions: ClassVar[Mapping[str, Callable[..., Any]]] = {}

    def __init__(self, config: Any, info: BuildInfo) -> None:
        self.config = config
        self.info = info

    def prepare(self) -> list[str]:
        """Check the decoded config. Return warnings; raise ``ConfigError`` on errors."""
        return []


class Builder(Component, ABC):
    #: Stable id post-processors use to recognise this builder's artifacts.
    builder_id: ClassVar[str] = ""

    def generated_data_keys(self) -> tuple[str, ...]:
        """Extra keys this builder adds to the build data (``{{build `SourceAMI`}}``)."""
        return ()

    @abstractmethod
    async def run(self, build: BuildRun) -> Artifact | None:
        """Create the machine, provision it through ``build.provision``, return the
        artifact. Runs its steps with ``build.run_steps`` so cleanup is guaranteed."""


class Provisioner(Component, ABC):
    @abstractmethod
    async def provision(self, ctx: ProvisionContext) -> None:
        """Do the work; raise ``BuildError`` (or ``CommunicatorError``) on failure."""


class PostProcessor(Component, ABC):
    #: Whether the input artifact is kept when the user does not say.
    keep_default: ClassVar[bool] = True
    #: When true, ``keep_input_artifact: false`` from the user is ignored.
    force_keep: ClassVar[bool] = False

    @abstractmethod
    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        """Turn ``artifact`` into a new one (or return it unchanged)."""


class UnknownComponent(LookupError):
    def __init__(self, kind: Kind, name: str, known: list[str]) -> None:
        import difflib

        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(name, known, n=1)
        # Packer's text, then the closest known name when there is one.
        hint = f". Did you mean '{close[0]}'?" if close else ""
        super().__init__(f"Unknown {kind} {name}{hint}")


class Registry:
    """Finds component classes by type name through entry points (loaded lazily).

    imagesmith's own components are looked up in its own ``entry_points.txt`` first:
    reading that one file is much faster than ``importlib.metadata`` scanning every
    installed distribution, which ``validate`` would otherwise pay at every start.
    Names not found there (third-party components) are looked up the full way.
    """

    def __init__(self) -> None:
        self._eps: dict[Kind, dict[str, Any]] | None = None
        self._own: dict[Kind, dict[str, str]] | None = None
        self._extra: dict[Kind, dict[str, type[Component]]] = {k: {} for k in _GROUPS}

    def _entry_points(self) -> dict[Kind, dict[str, Any]]:
        if self._eps is None:
            from importlib.metadata import entry_points

            found = entry_points()
            self._eps = {
                kind: {ep.name: ep for ep in found.select(group=group)}
                for kind, group in _GROUPS.items()
            }
        return self._eps

    def _own_entry_points(self) -> dict[Kind, dict[str, str]]:
        if self._own is None:
            self._own = _read_own_entry_points()
        return self._own

    def register(self, kind: Kind, name: str, cls: type[Component]) -> None:
        """Add a component without an entry point (tests, embedding)."""
        self._extra[kind][name] = cls

    def names(self, kind: Kind) -> list[str]:
        return sorted(set(self._entry_points()[kind]) | set(self._extra[kind]))

    def get(self, kind: Kind, name: str) -> type[Component]:
        if name in self._extra[kind]:
            return self._extra[kind][name]
        target = self._own_entry_points()[kind].get(name)
        if target is not None:
            return _load(target)
        ep = self._entry_points()[kind].get(name)
        if ep is None:
            raise UnknownComponent(kind, name, self.names(kind))
        cls: type[Component] = ep.load()
        return cls


def _read_own_entry_points() -> dict[Kind, dict[str, str]]:
    """imagesmith's entry points (``name -> "module:attr"``) from the ``entry_points.txt``
    of its installed distribution; empty when it is not installed (a plain checkout)."""
    kinds = {group: kind for kind, group in _GROUPS.items()}
    found: dict[Kind, dict[str, str]] = {kind: {} for kind in _GROUPS}
    path = _own_dist_info()
    if path is None:
        return found
    try:
        with open(os.path.join(path, "entry_points.txt"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    kind: Kind | None = None
    for line in lines:
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            kind = kinds.get(line[1:-1].strip())
        elif kind is not None and "=" in line:
            name, _, target = line.partition("=")
            found[kind][name.strip()] = target.strip()
    return found


def _own_dist_info() -> str | None:
    """The ``imagesmith-<version>.dist-info`` directory first on ``sys.path``."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("imagesmith-") and name.endswith(".dist-info"):
                return os.path.join(entry or ".", name)
    return None


def _load(target: str) -> type[Component]:
    """Import ``module:attr.attr`` as an entry point's ``load()`` does."""
    module_name, _, attrs = target.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for attr in attrs.strip().split(".") if attrs.strip() else []:
        obj = getattr(obj, attr)
    cls: type[Component] = obj
    return cls


registry = Registry()

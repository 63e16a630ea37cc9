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

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
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
        self.kind, self.name, self.known = kind, name, known
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        super().__init__(f"Unknown {kind} {name}.{hint}")


class Registry:
    """Finds component classes by type name through entry points (loaded lazily)."""

    def __init__(self) -> None:
        self._eps: dict[Kind, dict[str, Any]] | None = None
        self._extra: dict[Kind, dict[str, type[Component]]] = {k: {} for k in _GROUPS}

    def _entry_points(self) -> dict[Kind, dict[str, Any]]:
        if self._eps is None:
            self._eps = {
                kind: {ep.name: ep for ep in entry_points(group=group)}
                for kind, group in _GROUPS.items()
            }
        return self._eps

    def register(self, kind: Kind, name: str, cls: type[Component]) -> None:
        """Add a component without an entry point (tests, embedding)."""
        self._extra[kind][name] = cls

    def names(self, kind: Kind) -> list[str]:
        return sorted(set(self._entry_points()[kind]) | set(self._extra[kind]))

    def get(self, kind: Kind, name: str) -> type[Component]:
        if name in self._extra[kind]:
            return self._extra[kind][name]
        ep = self._entry_points()[kind].get(name)
        if ep is None:
            raise UnknownComponent(kind, name, self.names(kind))
        cls: type[Component] = ep.load()
        return cls


registry = Registry()

"""The plan: what ``build`` and ``validate`` derive from a template before running.

INTERFACE CONTRACT between the template layer (which produces a ``Plan``) and the
runner (which executes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from imagesmith.engine.context import BuildInfo
    from imagesmith.plugins import Builder, PostProcessor, Provisioner


@dataclass
class Diagnostic:
    """An error or warning printed as ``Error: <summary>\\n\\n<detail>`` (wrapped at 80)."""

    severity: Literal["error", "warning"]
    summary: str
    detail: str


@dataclass
class PlannedProvisioner:
    type_name: str
    instance: Provisioner
    pause_before: float | None = None  # seconds
    timeout: float | None = None  # seconds
    max_retries: int = 0


@dataclass
class PlannedPostProcessor:
    type_name: str
    name: str
    instance: PostProcessor
    keep_input_artifact: bool | None = None  # None: the component's default


@dataclass
class PlannedBuild:
    name: str
    builder_type: str
    builder: Builder
    info: BuildInfo
    provisioners: list[PlannedProvisioner] = field(default_factory=list)
    cleanup_provisioner: PlannedProvisioner | None = None
    post_processors: list[list[PlannedPostProcessor]] = field(default_factory=list)


@dataclass
class Plan:
    """Builds that prepared successfully, sorted by name, and every diagnostic found.

    Builds whose preparation failed are absent from ``builds``; their errors are in
    ``diagnostics`` and make the run's exit code 1.
    """

    builds: list[PlannedBuild]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Values to redact from every output (sensitive variables, credentials).
    secrets: list[str] = field(default_factory=list)
    run_uuid: str = ""

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)

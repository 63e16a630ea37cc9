"""What the engine hands to builders, provisioners and post-processors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from imagesmith.communicators.base import Communicator
    from imagesmith.ui.base import Ui


class Renderer(Protocol):
    """Renders a template string in a build's context (user variables, build_name,
    build_type, template_dir, packer_version), for fields a component renders late."""

    def render(
        self,
        text: str,
        *,
        data: Mapping[str, Any] | None = None,
        generated: Mapping[str, Any] | None = None,
    ) -> str:
        """``data`` is the dot object (``{{ .Path }}``); ``generated`` feeds ``{{build `X`}}``.

        Raises ``imagesmith.template.render.RenderError`` on a bad expression.
        """


@dataclass
class BuildInfo:
    """The facts Packer injects into every plugin as ``packer_*`` keys."""

    name: str
    builder_type: str
    run_uuid: str
    renderer: Renderer
    debug: bool = False
    force: bool = False
    on_error: str = "cleanup"
    template_path: str | None = None
    user_variables: dict[str, str] = field(default_factory=dict)


@dataclass
class ProvisionContext:
    """Everything a provisioner may use while it runs."""

    info: BuildInfo
    ui: Ui
    comm: Communicator | None
    # Build data: ID, Host, Port, User, ConnType, PackerRunUUID, SourceAMI, ...
    generated_data: dict[str, Any]

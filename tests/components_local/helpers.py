"""Build the local components the way the planner does, with the real template engine.

``make(cls, raw)`` decodes ``raw`` with the real decoder, rendering strings the way a
provisioner's or post-processor's Prepare sees them (``{{build `ID`}}`` becomes the
passthrough ``{{.ID}}``), then constructs and prepares the component. Run-time
rendering goes through ``TemplateRenderer``, a ``Renderer`` over the real engine.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from imagesmith.config.decode import decode
from imagesmith.engine.artifact import Artifact
from imagesmith.engine.context import BuildInfo
from imagesmith.plugins import Component
from imagesmith.template.render import RenderContext, render
from imagesmith.ui.console import BuildUi, Console

C = TypeVar("C", bound=Component)

#: The build-data keys every build has at Prepare (Packer's common set).
BUILD_KEYS = (
    "ID",
    "Host",
    "Port",
    "User",
    "Password",
    "ConnType",
    "PackerRunUUID",
    "PackerHTTPIP",
    "PackerHTTPPort",
    "PackerHTTPAddr",
    "SSHPublicKey",
    "SSHPrivateKey",
    "WinRMPassword",
)


class TemplateRenderer:
    """The build's renderer: user variables, build_name/build_type, data-mode ``build``."""

    def __init__(self, name: str, builder_type: str, user: Mapping[str, str]) -> None:
        self.name, self.builder_type, self.user = name, builder_type, dict(user)

    def context(
        self,
        mode: Literal["placeholder", "data"],
        *,
        data: Any = None,
        generated: Mapping[str, Any] | None = None,
    ) -> RenderContext:
        return RenderContext(
            user_variables=self.user,
            build_name=self.name,
            build_type=self.builder_type,
            build_mode=mode,
            build_keys=BUILD_KEYS,
            generated=generated or {},
            data=data,
        )

    def render(
        self,
        text: str,
        *,
        data: Mapping[str, Any] | None = None,
        generated: Mapping[str, Any] | None = None,
    ) -> str:
        return render(text, self.context("data", data=data, generated=generated))


def build_info(
    name: str = "b",
    builder_type: str = "null",
    *,
    user: Mapping[str, str] | None = None,
    force: bool = False,
    run_uuid: str | None = None,
) -> BuildInfo:
    return BuildInfo(
        name=name,
        builder_type=builder_type,
        run_uuid=run_uuid or str(uuid.uuid4()),
        renderer=TemplateRenderer(name, builder_type, user or {}),
        force=force,
    )


def make(cls: type[C], raw: Mapping[str, Any], info: BuildInfo | None = None) -> C:
    """Decode ``raw`` as Prepare does, then construct and prepare ``cls``."""
    info = info or build_info()
    renderer = info.renderer
    assert isinstance(renderer, TemplateRenderer)
    ctx = renderer.context("placeholder")
    config = decode(cls.Config, raw, render=lambda text: render(text, ctx))
    component = cls(config, info)
    component.prepare()
    return component


def ui(name: str = "b") -> tuple[BuildUi, io.StringIO]:
    out = io.StringIO()
    return Console(stream=out, color=False).build_ui(name, 0), out


def null_artifact(run_uuid: str = "u") -> Artifact:
    """What the null builder hands its post-processors."""
    return Artifact(
        builder_id="fnoeding.null",
        id="Null",
        text="Did not export anything. This is the null builder",
        generated_data={"ID": "Null", "PackerRunUUID": run_uuid},
    )


def file_artifact(*files: str, builder_id: str = "packer.file") -> Artifact:
    return Artifact(
        builder_id=builder_id, id="File", text=f"Stored file: {files[0]}", files=list(files)
    )

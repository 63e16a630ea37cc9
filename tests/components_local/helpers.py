"""Build the local components the way the planner does, with the real template engine.

``make(cls, raw)`` decodes ``raw`` with the real decoder, rendering strings the way a
provisioner's or post-processor's Prepare sees them (``{{build `ID`}}`` becomes the
passthrough ``{{.ID}}``), then constructs and prepares the component. Run-time
rendering goes through the planner's own ``BuildRenderer``, as in a real build.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from imagesmith.config.decode import decode
from imagesmith.engine.artifact import Artifact
from imagesmith.engine.context import BuildInfo
from imagesmith.plugins import Component
from imagesmith.template.planner import COMMON_BUILD_KEYS, BuildRenderer
from imagesmith.template.render import render
from imagesmith.ui.console import BuildUi, Console

C = TypeVar("C", bound=Component)


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
        renderer=BuildRenderer(
            build_name=name, build_type=builder_type, user_variables=user or {}, template_dir=None
        ),
        force=force,
    )


def make(cls: type[C], raw: Mapping[str, Any], info: BuildInfo | None = None) -> C:
    """Decode ``raw`` as Prepare does, then construct and prepare ``cls``."""
    info = info or build_info()
    renderer = info.renderer
    assert isinstance(renderer, BuildRenderer)
    ctx = renderer.context(mode="placeholder", keys=COMMON_BUILD_KEYS)
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

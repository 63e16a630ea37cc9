"""Run a null build over SSH in-process, through the real engine and components.

``run_null`` decodes a builder config and provisioner configs with the real decoder,
prepares them, and runs the build with ``run_plan`` on a Console that writes to a
string: the output is exactly what ``imagesmith build -color=false`` prints for the
build (its summary included).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fixtures.sshd import KeyPair, SshServer
from imagesmith.config.decode import decode
from imagesmith.engine.context import BuildInfo
from imagesmith.engine.plan import Plan, PlannedBuild, PlannedProvisioner
from imagesmith.engine.runner import RunResult, run_plan
from imagesmith.plugins import registry
from imagesmith.template.render import RenderContext, render
from imagesmith.ui.console import Console


class DataRenderer:
    """Run-time rendering as the engine does it: ``{{build `X`}}`` and ``{{.X}}``."""

    def __init__(self, name: str, builder_type: str) -> None:
        self.name, self.builder_type = name, builder_type

    def render(
        self,
        text: str,
        *,
        data: Mapping[str, Any] | None = None,
        generated: Mapping[str, Any] | None = None,
    ) -> str:
        ctx = RenderContext(
            build_name=self.name,
            build_type=self.builder_type,
            build_mode="data",
            generated=generated or {},
            data=data,
        )
        return render(text, ctx)


def ssh_config(server: SshServer, key: KeyPair | None = None, **extra: Any) -> dict[str, Any]:
    """The null builder's keys for logging in to ``server``."""
    raw: dict[str, Any] = {
        "ssh_host": server.host,
        "ssh_port": server.port,
        "ssh_username": server.user.name,
    }
    if key is not None:
        raw["ssh_private_key_file"] = str(key.private)
    else:
        raw["ssh_password"] = server.user.password
    raw.update(extra)
    return raw


def component(kind: str, type_name: str, raw: Mapping[str, Any], info: BuildInfo) -> Any:
    cls = registry.get(kind, type_name)  # type: ignore[arg-type]
    obj = cls(decode(cls.Config, raw), info)
    obj.prepare()
    return obj


@dataclass
class Outcome:
    result: RunResult
    output: str

    @property
    def rc(self) -> int:
        return self.result.exit_code

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()


def run_null(
    builder: Mapping[str, Any],
    provisioners: Sequence[tuple[str, Mapping[str, Any]]] = (),
    *,
    name: str = "null",
    cwd: Path | None = None,
) -> Outcome:
    info = BuildInfo(
        name=name, builder_type="null", run_uuid="run-1", renderer=DataRenderer(name, "null")
    )
    b = component("builder", "null", builder, info)
    planned = PlannedBuild(
        name=name,
        builder_type="null",
        builder=b,
        info=info,
        provisioners=[
            PlannedProvisioner(t, component("provisioner", t, raw, info)) for t, raw in provisioners
        ],
    )
    out = io.StringIO()
    console = Console(stream=out, color=False)
    result = asyncio.run(
        run_plan(Plan(builds=[planned], run_uuid="run-1"), console, handle_signals=False)
    )
    return Outcome(result, out.getvalue())

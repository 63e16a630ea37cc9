"""Run the docker builder through the real engine, for integration tests.

``Commands`` drives the communicator the way the shell and file provisioners do (run a
command with streamed output, upload a file or a folder), so these tests do not
depend on another area's provisioners.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagesmith.builders.docker.builder import DockerBuilder
from imagesmith.config.decode import decode
from imagesmith.engine.context import BuildInfo, ProvisionContext
from imagesmith.engine.plan import Plan, PlannedBuild, PlannedPostProcessor, PlannedProvisioner
from imagesmith.engine.runner import RunResult, run_plan
from imagesmith.errors import BuildError
from imagesmith.plugins import PostProcessor, Provisioner
from imagesmith.ui.console import Console


class ImageRenderer:
    """Renders ``{{.Image}}`` (all run_command needs) and leaves other text as it is."""

    def render(
        self,
        text: str,
        *,
        data: Mapping[str, Any] | None = None,
        generated: Mapping[str, Any] | None = None,
    ) -> str:
        for key, value in (data or {}).items():
            text = text.replace("{{." + key + "}}", str(value))
        return text


@dataclass
class Step:
    run: str = ""
    upload: tuple[str, str] | None = None  # (local src, remote dst)


class Commands(Provisioner):
    """Runs shell commands and uploads through the build's communicator."""

    def __init__(self, steps: Sequence[Step | str]) -> None:
        self.steps = [Step(run=s) if isinstance(s, str) else s for s in steps]

    async def provision(self, ctx: ProvisionContext) -> None:
        assert ctx.comm is not None
        for step in self.steps:
            if step.upload:
                src, dst = step.upload
                ctx.ui.say(f"Uploading {src} => {dst}")
                if Path(src).is_dir():
                    await ctx.comm.upload_dir(dst, src)
                else:
                    await ctx.comm.upload(dst, Path(src))
            if step.run:
                code = await ctx.comm.run(
                    step.run, on_stdout=ctx.ui.message, on_stderr=ctx.ui.error
                )
                if code != 0:
                    raise BuildError(f"Script exited with non-zero exit status: {code}")


def build_info(name: str = "docker", run_uuid: str = "test-run") -> BuildInfo:
    return BuildInfo(name=name, builder_type="docker", run_uuid=run_uuid, renderer=ImageRenderer())


def builder(
    raw: Mapping[str, Any], name: str = "docker", run_uuid: str = "test-run"
) -> DockerBuilder:
    config = decode(DockerBuilder.Config, raw, render=lambda s: s)
    b = DockerBuilder(config, build_info(name, run_uuid))
    b.prepare()
    return b


def post_processor(cls: type[PostProcessor], raw: Mapping[str, Any], name: str = "docker") -> Any:
    config = decode(cls.Config, raw, render=lambda s: s)
    pp = cls(config, build_info(name))
    pp.prepare()
    return pp


@dataclass
class Outcome:
    result: RunResult
    output: str
    artifacts: list[Any] = field(default_factory=list)


def run_build(
    raw: Mapping[str, Any],
    steps: Sequence[Step | str] = (),
    chains: Sequence[Sequence[tuple[str, PostProcessor]]] = (),
    *,
    run_uuid: str = "test-run",
) -> Outcome:
    b = builder(raw, run_uuid=run_uuid)
    planned = PlannedBuild(
        name="docker",
        builder_type="docker",
        builder=b,
        info=b.info,
        provisioners=[PlannedProvisioner("commands", Commands(steps))] if steps else [],
        post_processors=[[PlannedPostProcessor(t, t, pp) for t, pp in chain] for chain in chains],
    )
    out = io.StringIO()
    console = Console(stream=out, color=False)
    result = asyncio.run(
        run_plan(Plan(builds=[planned], run_uuid=run_uuid), console, handle_signals=False)
    )
    return Outcome(result, out.getvalue())

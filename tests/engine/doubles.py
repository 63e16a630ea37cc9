"""Small test components for the engine: recording steps, provisioners, post-processors.

They stand in for components only to drive the engine's own logic (ordering,
cleanup, on-error policies, keep rules); every real component has its own tests.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from imagesmith.communicators.base import NoneCommunicator
from imagesmith.engine.artifact import Artifact
from imagesmith.engine.build import BuildRun
from imagesmith.engine.context import BuildInfo, ProvisionContext
from imagesmith.engine.plan import PlannedBuild, PlannedPostProcessor, PlannedProvisioner
from imagesmith.engine.step import Step
from imagesmith.errors import BuildError
from imagesmith.plugins import Builder, PostProcessor, Provisioner
from imagesmith.ui.base import Ui
from imagesmith.ui.console import Console


class PlainRenderer:
    def render(
        self,
        text: str,
        *,
        data: Mapping[str, Any] | None = None,
        generated: Mapping[str, Any] | None = None,
    ) -> str:
        return text


def info(name: str = "t", *, on_error: str = "cleanup", debug: bool = False) -> BuildInfo:
    return BuildInfo(
        name=name,
        builder_type="steps",
        run_uuid="run-uuid-1",
        renderer=PlainRenderer(),
        debug=debug,
        on_error=on_error,
    )


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(stream=out, color=False), out


@dataclass
class Recorder:
    events: list[str] = field(default_factory=list)

    def __call__(self, event: str) -> None:
        self.events.append(event)


class RecordingStep(Step[Recorder]):
    """Logs ``run:<name>`` and ``cleanup:<name>``; can fail, hang, or be slow to clean."""

    def __init__(
        self,
        name: str,
        *,
        fail: str | None = None,
        fail_times: int | None = None,
        hang: bool = False,
        slow_cleanup: float = 0.0,
        cleanup_raises: bool = False,
        say: bool = False,
    ) -> None:
        self.name = name
        self.fail = fail
        self.fail_times = fail_times
        self.hang = hang
        self.slow_cleanup = slow_cleanup
        self.cleanup_raises = cleanup_raises
        self.say = say
        self.started = asyncio.Event()

    async def run(self, state: Recorder, build: BuildRun) -> None:
        state(f"run:{self.name}")
        if self.say:
            build.ui.say(f"running {self.name}")
        self.started.set()
        if self.hang:
            await asyncio.sleep(3600)
        if self.fail is not None and (self.fail_times is None or self.fail_times > 0):
            if self.fail_times is not None:
                self.fail_times -= 1
            raise BuildError(self.fail)

    async def cleanup(self, state: Recorder, build: BuildRun) -> None:
        state(f"cleanup:{self.name}" + (":cancelled" if build.cancelled else ""))
        if self.slow_cleanup:
            await asyncio.sleep(self.slow_cleanup)
            state(f"cleaned:{self.name}")
        if self.cleanup_raises:
            raise RuntimeError(f"cannot remove {self.name}")


class RecordingProvisioner(Provisioner):
    """Logs each call; fails its first ``fail_times`` calls (-1: always); can be slow."""

    type_name = "recording"

    def __init__(
        self,
        recorder: Recorder,
        name: str,
        *,
        fail_times: int = 0,
        errors: Sequence[str] = (),
        sleep: float = 0.0,
    ) -> None:
        self.recorder = recorder
        self.name = name
        self.fail_times = fail_times
        self.errors = list(errors)
        self.sleep = sleep
        self.calls = 0
        self.seen: list[ProvisionContext] = []

    async def provision(self, ctx: ProvisionContext) -> None:
        self.calls += 1
        self.seen.append(ctx)
        self.recorder(f"provision:{self.name}")
        if self.sleep:
            await asyncio.sleep(self.sleep)
        if self.fail_times < 0 or self.calls <= self.fail_times:
            error = self.errors[self.calls - 1] if self.calls <= len(self.errors) else "boom"
            raise BuildError(error)


def planned_prov(prov: Provisioner, **kwargs: Any) -> PlannedProvisioner:
    return PlannedProvisioner(type_name=prov.type_name, instance=prov, **kwargs)


class StepsBuilder(Builder):
    """Runs the given steps with a provision step after the named one."""

    type_name = "steps"
    builder_id = "test.steps"

    def __init__(
        self,
        steps: Sequence[Step[Recorder]],
        recorder: Recorder,
        *,
        provision_after: str | None = None,
        with_comm: bool = True,
        artifact: Artifact | None = None,
    ) -> None:
        self.steps = list(steps)
        self.recorder = recorder
        self.provision_after = provision_after
        self.with_comm = with_comm
        self.artifact = artifact or Artifact(builder_id="test.steps", id="ID1", text="made it")

    async def run(self, build: BuildRun) -> Artifact | None:
        steps = list(self.steps)
        comm = NoneCommunicator() if self.with_comm else None
        if self.provision_after is not None:
            at = [s.name for s in steps].index(self.provision_after) + 1
            steps.insert(at, build.provision_step(lambda _state: comm))
        await build.run_steps(steps, self.recorder)
        return self.artifact


class RecordingArtifact(Artifact):
    """An artifact whose destroy is recorded."""

    def __init__(self, recorder: Recorder, name: str, files: list[str] | None = None) -> None:
        super().__init__(builder_id=f"test.{name}", id=name, text=f"artifact {name}")
        self.files = files or []
        self.recorder = recorder
        self.fail_destroy = False

    async def destroy(self) -> None:
        self.recorder(f"destroy:{self.id}")
        if self.fail_destroy:
            raise OSError(f"cannot delete {self.id}")


class RecordingPostProcessor(PostProcessor):
    """Produces ``artifact <out>`` (or passes its input through, or fails, or None)."""

    type_name = "rec-pp"

    def __init__(
        self,
        recorder: Recorder,
        out: str | None,
        *,
        keep_default: bool = True,
        force_keep: bool = False,
        fail: str | None = None,
        passthrough: bool = False,
    ) -> None:
        self.recorder = recorder
        self.out = out
        self.keep_default = keep_default  # type: ignore[misc]
        self.force_keep = force_keep  # type: ignore[misc]
        self.fail = fail
        self.passthrough = passthrough

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        self.recorder(f"pp:{self.out}<-{artifact.id}")
        ui.say(f"processing {artifact.id}")
        if self.fail is not None:
            raise BuildError(self.fail)
        if self.passthrough:
            return artifact
        if self.out is None:
            return None
        return RecordingArtifact(self.recorder, self.out)


def planned_pp(
    pp: PostProcessor,
    *,
    name: str | None = None,
    type_name: str = "rec-pp",
    keep: bool | None = None,
) -> PlannedPostProcessor:
    return PlannedPostProcessor(
        type_name=type_name, name=name or type_name, instance=pp, keep_input_artifact=keep
    )


def planned_build(
    builder: Builder,
    name: str = "t",
    *,
    provisioners: Sequence[PlannedProvisioner] = (),
    cleanup_provisioner: PlannedProvisioner | None = None,
    post_processors: Sequence[Sequence[PlannedPostProcessor]] = (),
    on_error: str = "cleanup",
    debug: bool = False,
) -> PlannedBuild:
    return PlannedBuild(
        name=name,
        builder_type=builder.type_name,
        builder=builder,
        info=info(name, on_error=on_error, debug=debug),
        provisioners=list(provisioners),
        cleanup_provisioner=cleanup_provisioner,
        post_processors=[list(c) for c in post_processors],
    )


@contextmanager
def fake_tty(monkeypatch: Any, answers: Sequence[str]) -> Iterator[list[str]]:
    """Make each terminal question read the next of ``answers`` (a line each).

    Replaces only the opening of /dev/tty: the real non-blocking read path is used on
    a pipe that holds the answer. Yields the list of answers not consumed yet.
    """
    pending = list(answers)

    def open_tty() -> int | None:
        if not pending:
            return None
        read_fd, write_fd = os.pipe()
        os.write(write_fd, (pending.pop(0) + "\n").encode())
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        return read_fd

    monkeypatch.setattr("imagesmith.ui.progress.open_tty", open_tty)
    yield pending


@contextmanager
def no_tty(monkeypatch: Any) -> Iterator[None]:
    monkeypatch.setattr("imagesmith.ui.progress.open_tty", lambda: None)
    yield

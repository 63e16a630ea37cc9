"""A test builder for driving `imagesmith build` in a subprocess (see ``run_with_doubles``).

``test-steps`` runs the steps its template config lists, each printing what it does,
so the CLI tests can watch run and cleanup order, failures, and interrupts (a step that
hangs; a cleanup that is slow). It stands in for a builder only to exercise the engine
and the CLI; the real builders have their own tests.

Step specs: ``Name``, ``Name:fail=<message>``, ``Name:hang``, ``Name:slowclean=<secs>``,
and ``Provision`` for the engine's provision step (run with ``communicator: none``).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field

from imagesmith.communicators.base import NoneCommunicator
from imagesmith.config.fields import opt
from imagesmith.engine.artifact import Artifact
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step
from imagesmith.errors import BuildError
from imagesmith.plugins import Builder, registry


@dataclass
class StepsConfig:
    steps: list[str] = opt(default_factory=list)
    artifact: str = "test artifact"


@dataclass
class State:
    comm: NoneCommunicator = field(default_factory=NoneCommunicator)


class SpecStep(Step[State]):
    def __init__(self, spec: str) -> None:
        name, _, option = spec.partition(":")
        self.name = name
        key, _, value = option.partition("=")
        self.fail = value if key == "fail" else None
        self.hang = key == "hang"
        self.slow_cleanup = float(value) if key == "slowclean" else 0.0

    async def run(self, state: State, build: BuildRun) -> None:
        build.ui.say(f"run {self.name}")
        if self.hang:
            build.ui.message("hanging")
            await asyncio.sleep(3600)
        if self.fail is not None:
            raise BuildError(self.fail)

    async def cleanup(self, state: State, build: BuildRun) -> None:
        how = " (cancelled)" if build.cancelled else " (halted)" if build.halted else ""
        build.ui.say(f"cleanup {self.name}{how}")
        if self.slow_cleanup:
            await asyncio.sleep(self.slow_cleanup)
            build.ui.say(f"cleaned {self.name}")


class StepsBuilder(Builder):
    type_name = "test-steps"
    builder_id = "test.steps"
    Config = StepsConfig

    async def run(self, build: BuildRun) -> Artifact | None:
        steps: list[Step[State]] = []
        for spec in self.config.steps:
            if spec == "Provision":
                steps.append(build.provision_step(lambda state: state.comm))
            else:
                steps.append(SpecStep(spec))
        await build.run_steps(steps, State())
        return Artifact(builder_id=self.builder_id, id="steps", text=self.config.artifact)


def register() -> None:
    registry.register("builder", "test-steps", StepsBuilder)


if __name__ == "__main__":
    register()
    from imagesmith.cli.main import main

    sys.exit(main())

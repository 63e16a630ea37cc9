"""Run a Plan: every build, in parallel, then the summary Packer prints.

Builds start in name order, all at once unless ``-parallel-builds`` limits them
(``-debug`` and ``-parallel-builds=1`` run one after the other). Each build's outcome
is a line in its colour (``Build 'x' finished after ...`` or ``... errored after ...``);
then comes the summary block: the wait time, the errors, the artifacts, each sorted by
build name, with their machine-readable records.

Exit code: 0 when every selected build succeeded (or none was selected); 1 when a build
errored, the plan had an error diagnostic, or the run was interrupted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imagesmith.engine.build import BuildRun
from imagesmith.engine.hook import error_text
from imagesmith.engine.interrupt import InterruptHandler
from imagesmith.engine.postprocess import run_chains
from imagesmith.errors import ImagesmithError
from imagesmith.ui.durafmt import durafmt

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.engine.plan import Plan, PlannedBuild
    from imagesmith.ui.console import BuildUi, Console

log = logging.getLogger(__name__)


@dataclass
class BuildOutcome:
    name: str
    #: None when the builder produced nothing (or the build was cancelled).
    artifacts: list[Artifact] | None = None
    error: str | None = None


@dataclass
class RunResult:
    exit_code: int
    outcomes: dict[str, BuildOutcome] = field(default_factory=dict)
    interrupted: bool = False
    #: Set when the user made the run abandon cleanups still in progress.
    abandoned: bool = False


class Runner:
    """Executes a plan's builds and prints their outcome and the run's summary."""

    def __init__(
        self,
        plan: Plan,
        console: Console,
        *,
        parallel_builds: int = 0,
        debug: bool = False,
        handle_signals: bool = True,
    ) -> None:
        self.plan = plan
        self.console = console
        self.debug = debug
        self.limit = parallel_builds if parallel_builds > 0 else len(plan.builds) or 1
        self.handle_signals = handle_signals
        self.runs: dict[str, BuildRun] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.outcomes: dict[str, BuildOutcome] = {}
        self.interrupts = InterruptHandler(console, self)
        self._stop_starting = asyncio.Event()

    # -- called by the interrupt handler ----------------------------------------------

    def cancel_builds(self) -> None:
        """Cancel every running build and start no more (cleanups still run)."""
        self._stop_starting.set()
        for name, run in self.runs.items():
            run.mark_cancelled()
            task = self.tasks.get(name)
            if task is not None and not task.done():
                task.cancel()

    def busy_builds(self) -> list[tuple[str, str]]:
        """(build, what it is doing) for each build that has not ended yet."""
        busy = []
        for name, task in sorted(self.tasks.items()):
            if not task.done():
                busy.append((name, self.runs[name].activity or "finishing"))
        return busy

    def abandon_cleanups(self) -> None:
        for run in self.runs.values():
            run.abandon_cleanup()

    # -- the run ---------------------------------------------------------------------

    async def run(self) -> RunResult:
        console = self.console
        console.add_secrets(self.plan.secrets)
        console.diagnostics(self.plan.diagnostics)
        exit_code = 1 if self.plan.has_errors else 0

        sequential = self.debug or self.limit == 1
        if self.debug:
            console.say("Debug mode enabled. Builds will not be parallelized.")
        console.announce_colors([b.name for b in self.plan.builds])
        # Signals stay handled until the summary is out: a late Ctrl-C then still
        # reports a cancelled run instead of a Python traceback.
        if self.handle_signals:
            self.interrupts.install()
        try:
            return self._summarise(await self._timed_builds(sequential), exit_code)
        finally:
            if self.handle_signals:
                self.interrupts.uninstall()

    async def _timed_builds(self, sequential: bool) -> float:
        started = time.monotonic()
        await self._run_builds(sequential)
        return time.monotonic() - started

    def _summarise(self, waited: float, exit_code: int) -> RunResult:
        console = self.console
        console.say(f"\n==> Wait completed after {durafmt(waited)}")
        if self.interrupts.interrupted:
            console.say("Cleanly cancelled builds after being interrupted.")
            return self._result(1)

        errors = {n: o.error for n, o in sorted(self.outcomes.items()) if o.error is not None}
        if errors:
            exit_code = 1
            self._print_errors(errors)
        with_artifacts = {
            n: o.artifacts
            for n, o in sorted(self.outcomes.items())
            if o.error is None and o.artifacts is not None
        }
        if with_artifacts:
            self._print_artifacts(with_artifacts)
        else:
            console.say("\n==> Builds finished but no artifacts were created.")
        return self._result(exit_code)

    def _result(self, exit_code: int) -> RunResult:
        return RunResult(
            exit_code=exit_code,
            outcomes=self.outcomes,
            interrupted=self.interrupts.interrupted,
            abandoned=self.interrupts.abandoned,
        )

    async def _run_builds(self, sequential: bool) -> None:
        slots = asyncio.Semaphore(1 if sequential else self.limit)
        for index, planned in enumerate(self.plan.builds):
            if self._stop_starting.is_set():
                break
            ui = self.console.build_ui(planned.name, index)
            if not await self._acquire(slots):
                ui.plain_error(
                    f"Build '{planned.name}' failed to acquire semaphore: context canceled"
                )
                break
            run = BuildRun.for_plan(planned, ui)
            self.runs[planned.name] = run
            task = asyncio.create_task(self._run_one(planned, run, ui, index), name=planned.name)
            task.add_done_callback(lambda _t: slots.release())
            self.tasks[planned.name] = task
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()))

    async def _acquire(self, slots: asyncio.Semaphore) -> bool:
        """Wait for a free slot; False when the run is interrupted meanwhile."""
        if not slots.locked():
            await slots.acquire()
            return True
        acquire = asyncio.ensure_future(slots.acquire())
        stop = asyncio.ensure_future(self._stop_starting.wait())
        await asyncio.wait({acquire, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if acquire.done() and not acquire.cancelled():
            if self._stop_starting.is_set():
                slots.release()
                return False
            return True
        acquire.cancel()
        return False

    async def _run_one(self, planned: PlannedBuild, run: BuildRun, ui: BuildUi, index: int) -> None:
        name = planned.name
        outcome = BuildOutcome(name)
        self.outcomes[name] = outcome
        started = time.monotonic()
        try:
            outcome.artifacts = await self._execute(planned, run, ui, index)
        except asyncio.CancelledError:
            # Interrupted: Packer's builders report such a build as finished, with
            # nothing to list (the summary stops at "Cleanly cancelled builds").
            outcome.artifacts = None
        except ImagesmithError as exc:
            log.debug("build %s failed", name, exc_info=True)
            outcome.error = error_text(exc)
        except Exception as exc:
            # Not an error a component meant to report: a bug. Say so, and keep the
            # traceback for IMAGESMITH_DEBUG (the other builds carry on).
            outcome.error = f"internal error (this is a bug): {type(exc).__name__}: {exc}"
            if os.environ.get("IMAGESMITH_DEBUG"):
                traceback.print_exc()
        took = durafmt(time.monotonic() - started)
        if outcome.error is not None:
            ui.plain_error(f"Build '{name}' errored after {took}: {outcome.error}")
        else:
            ui.plain_say(f"Build '{name}' finished after {took}.")

    async def _execute(
        self, planned: PlannedBuild, run: BuildRun, ui: BuildUi, index: int
    ) -> list[Artifact] | None:
        artifact = await planned.builder.run(run)
        if artifact is None or run.cancelled:
            return None
        run.activity = "post-processors"
        result = await run_chains(
            planned.post_processors,
            artifact,
            ui=ui,
            ui_for=lambda type_name: self.console.build_ui(f"{planned.name} ({type_name})", index),
        )
        run.activity = None
        result.raise_for_errors()
        return result.artifacts

    # -- summary ---------------------------------------------------------------------

    def _print_errors(self, errors: dict[str, str]) -> None:
        console = self.console
        console.machine("", "error-count", str(len(errors)))
        console.error("\n==> Some builds didn't complete successfully and had errors:")
        for name, error in errors.items():
            console.machine(name, "error", error)
            console.error(f"--> {name}: {error}")

    def _print_artifacts(self, builds: dict[str, list[Artifact]]) -> None:
        console = self.console
        console.say("\n==> Builds finished. The artifacts of successful builds are:")
        for name, artifacts in builds.items():
            console.machine(name, "artifact-count", str(len(artifacts)))
            for i, artifact in enumerate(artifacts):
                self._print_artifact(name, str(i), artifact)

    def _print_artifact(self, name: str, i: str, artifact: Artifact | None) -> None:
        console = self.console
        if artifact is None:
            console.machine(name, "artifact", i, "nil")
            console.machine(name, "artifact", i, "end")
            console.say(f"--> {name}: <nothing>")
            return
        text = artifact.string()
        console.machine(name, "artifact", i, "builder-id", artifact.builder_id)
        console.machine(name, "artifact", i, "id", artifact.id)
        console.machine(name, "artifact", i, "string", text)
        console.machine(name, "artifact", i, "files-count", str(len(artifact.files)))
        for j, path in enumerate(artifact.files):
            console.machine(name, "artifact", i, "file", str(j), path)
        console.machine(name, "artifact", i, "end")
        console.say(f"--> {name}: {text}")


async def run_plan(
    plan: Plan,
    console: Console,
    *,
    parallel_builds: int = 0,
    debug: bool = False,
    handle_signals: bool = True,
) -> RunResult:
    """Run ``plan`` and print its summary; the exit code is ``result.exit_code``.

    With ``handle_signals``, SIGINT/SIGTERM are handled as described in
    ``imagesmith.engine.interrupt``. When ``result.abandoned`` is set the user gave up
    on cleanups that may still hold worker threads: the caller should end the process
    without waiting for them (``os._exit``), as the ``build`` command does.
    """
    runner = Runner(
        plan,
        console,
        parallel_builds=parallel_builds,
        debug=debug,
        handle_signals=handle_signals,
    )
    return await runner.run()

"""One build: a builder, its provisioners and post-processor chains, as it runs.

``BuildRun`` is what a builder sees. Its ``run_steps`` is the step runner: every step
whose ``run`` started has its ``cleanup`` called, in reverse order, whether the build
succeeded, failed or was interrupted. The ``-on-error`` modes decide what "failed"
means for cleanups, as in Packer 1.6.6:

- ``cleanup``: clean up everything (the default);
- ``abort``: clean up nothing after a failure or an interrupt, saying so per step;
- ``run-cleanup-provisioner``: like abort, except the provision step's cleanup (the
  ``error-cleanup-provisioner``) still runs;
- ``ask``: on a failure, ask whether to clean up, abort or retry the step. Unlike
  Packer, a retry that succeeds clears the failure, so the build can still succeed.

Cleanups run in a task of their own, shielded from the build task's cancellation, so an
interrupt never cuts one short. Only the interrupt handler's explicit "abandon"
(``abandon_cleanup``, after the user insisted) stops them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from imagesmith.engine.context import ProvisionContext
from imagesmith.engine.hook import error_text, run_provisioners
from imagesmith.engine.step import Step
from imagesmith.errors import BuildError
from imagesmith.golang import quote

if TYPE_CHECKING:
    from imagesmith.communicators.base import Communicator
    from imagesmith.engine.context import BuildInfo
    from imagesmith.engine.plan import PlannedBuild, PlannedProvisioner
    from imagesmith.ui.base import Ui

S = TypeVar("S")
log = logging.getLogger(__name__)

ASK_PROMPT = (
    "[c] Clean up and exit, [a] abort without cleanup, or [r] retry step "
    "(build may fail even if retry succeeds)?"
)
PROVISION_STEP_NAME = "StepProvision"


def initial_generated_data(run_uuid: str) -> dict[str, Any]:
    """Build data every build starts with; builders overwrite what they know."""
    return {
        "ID": "ERR_ID_NOT_IMPLEMENTED_BY_BUILDER",
        "PackerRunUUID": run_uuid,
        "PackerHTTPIP": "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER",
        "PackerHTTPPort": "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER",
        "PackerHTTPAddr": "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER",
    }


class BuildRun:
    """The running build as a builder sees it."""

    info: BuildInfo
    ui: Ui
    #: Build data for ``{{build `X`}}``: the engine fills PackerRunUUID and the HTTP
    #: placeholders; builders add ID, Host, Port, User, ConnType, SSHPublicKey, ...
    generated_data: dict[str, Any]
    #: Set once a step failed (``halted``) or the run was interrupted (``cancelled``).
    halted: bool
    cancelled: bool

    def __init__(
        self,
        info: BuildInfo,
        ui: Ui,
        *,
        provisioners: Sequence[PlannedProvisioner] = (),
        cleanup_provisioner: PlannedProvisioner | None = None,
    ) -> None:
        self.info = info
        self.ui = ui
        self.provisioners = list(provisioners)
        self.cleanup_provisioner = cleanup_provisioner
        self.generated_data = initial_generated_data(info.run_uuid)
        self.halted = False
        self.cancelled = False
        #: The first failing step's error; the provision step's cleanup may replace it.
        self.error: BuildError | None = None
        #: What the build is doing now, for the interrupt handler's status line.
        self.activity: str | None = None
        self._aborted = False  # "abort" answered to the -on-error=ask prompt
        self._abort_logged = False
        self._cancel_event = asyncio.Event()
        self._cleanups: set[asyncio.Task[None]] = set()
        self._abandoned = False

    @classmethod
    def for_plan(cls, planned: PlannedBuild, ui: Ui) -> BuildRun:
        return cls(
            planned.info,
            ui,
            provisioners=planned.provisioners,
            cleanup_provisioner=planned.cleanup_provisioner,
        )

    # -- interrupts ----------------------------------------------------------------

    def mark_cancelled(self) -> None:
        """Record an interrupt: prompts return at once, cleanups know why they run."""
        self.cancelled = True
        self._cancel_event.set()

    @property
    def cleaning_up(self) -> bool:
        return any(not task.done() for task in self._cleanups)

    def abandon_cleanup(self) -> None:
        """Stop running cleanups now (the user insisted); what is left is reported."""
        self._abandoned = True
        for task in self._cleanups:
            task.cancel()

    # -- the step runner -------------------------------------------------------------

    async def run_steps(self, steps: Sequence[Step[S]], state: S) -> None:
        """Run ``steps`` in order, then clean up every started step in reverse order.

        Honours ``-on-error`` and ``-debug``. Raises ``BuildError`` with the first
        failing step's error after the cleanups ran; re-raises cancellation.
        """
        started: list[Step[S]] = []
        paused_after: set[int] = set()
        try:
            for step in steps:
                if self.cancelled:
                    break
                started.append(step)
                self.activity = step.name
                if not await self._run_step(step, state):
                    break
                if self.info.debug:
                    paused_after.add(id(step))
                    await self._pause(f"Pausing after run of step '{step.name}'.")
        except asyncio.CancelledError:
            self.mark_cancelled()
            raise
        finally:
            await self._run_cleanups(started, paused_after, state)
            self.activity = None

        if self.error is not None:
            raise self.error

    async def _run_step(self, step: Step[S], state: S) -> bool:
        """Run one step; False when it failed (the error is recorded)."""
        while True:
            try:
                await step.run(state, self)
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("step %s failed", step.name, exc_info=not isinstance(exc, BuildError))
                error = _as_build_error(exc)

            if self.info.on_error != "ask":
                self._fail(error)
                return False
            self.ui.error(str(error))
            answer = await self._ask_on_error(step.name)
            if answer == "retry":
                continue
            self._fail(error)
            self._aborted = answer == "abort"
            return False

    def _fail(self, error: BuildError) -> None:
        self.halted = True
        if self.error is None:
            self.error = error

    async def _ask_on_error(self, name: str) -> str:
        self.ui.say(f"Step {quote(name)} failed")
        while True:
            line = await self._ask(ASK_PROMPT)
            if line is None:  # interrupted while asking
                return "cleanup"
            choice = (line.lower() + "c")[0]
            if choice in "car":
                return {"c": "cleanup", "a": "abort", "r": "retry"}[choice]
            self.ui.say(f"Incorrect input: {quote(line)}")

    async def _pause(self, what: str) -> None:
        await self._ask(f"{what} Press enter to continue.")

    async def _prompt(self, prompt: str) -> None:
        await self._ask(prompt)

    async def _ask(self, prompt: str) -> str | None:
        """Ask on the terminal; None when the build is interrupted meanwhile."""
        if self.cancelled:
            return None
        answer = asyncio.ensure_future(self.ui.ask(prompt))
        interrupted = asyncio.ensure_future(self._cancel_event.wait())
        try:
            await asyncio.wait({answer, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            answer.cancel()
            interrupted.cancel()
        if answer.done() and not answer.cancelled() and answer.exception() is None:
            return answer.result()
        return None

    # -- cleanups --------------------------------------------------------------------

    async def _run_cleanups(self, started: list[Step[S]], paused: set[int], state: S) -> None:
        """Clean up ``started`` in reverse, shielded from cancellation of the build."""
        if not started:
            return
        task = asyncio.ensure_future(self._cleanup_all(started, paused, state))
        self._cleanups.add(task)
        try:
            while not task.done():
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    # The build task was cancelled (an interrupt) while cleaning up:
                    # keep waiting. Only abandon_cleanup() stops the cleanups.
                    self.mark_cancelled()
                    if task.done():
                        break
        finally:
            self._cleanups.discard(task)

    async def _cleanup_all(self, started: list[Step[S]], paused: set[int], state: S) -> None:
        remaining = list(reversed(started))
        while remaining:
            step = remaining[0]
            self.activity = f"{step.name} (cleanup)"
            try:
                if self._abandoned:
                    raise asyncio.CancelledError
                if id(step) in paused:
                    await self._pause(f"Pausing before cleanup of step '{step.name}'.")
                if self._should_clean_up(step):
                    await step.cleanup(state, self)
            except asyncio.CancelledError:
                if not self._abandoned:
                    raise
                for left in remaining:
                    self.ui.error(
                        f"Abandoned cleanup of step {quote(left.name)}: "
                        "what it created may be left behind."
                    )
                return
            except Exception as exc:
                # A cleanup must not raise; if one does, the others still run.
                log.debug("cleanup of %s raised", step.name, exc_info=True)
                self.ui.error(f"Cleanup of step {quote(step.name)} failed: {error_text(exc)}")
            remaining.pop(0)

    def _should_clean_up(self, step: Step[Any]) -> bool:
        mode = self.info.on_error
        if mode == "run-cleanup-provisioner" and step.name == PROVISION_STEP_NAME:
            return True
        if mode in ("abort", "run-cleanup-provisioner") or (mode == "ask" and self._aborted):
            return self._skip_after_abort(step.name)
        return True

    def _skip_after_abort(self, name: str) -> bool:
        """Packer's abort bookkeeping: say why the first cleanup is skipped, then list
        each further skipped step. Returns True when the cleanup should run anyway."""
        logged = self._abort_logged
        if self.error is not None and not logged:
            self.ui.error(str(self.error))
            self._abort_logged = True
        if self.cancelled:
            if not logged:
                self.ui.error("Interrupted, aborting...")
                self._abort_logged = True
            else:
                self.ui.error(f"aborted: skipping cleanup of step {quote(name)}")
            return False
        if self.halted:
            if not logged:
                self.ui.error(f"Step {quote(name)} failed, aborting...")
                self._abort_logged = True
            else:
                self.ui.error(f"aborted: skipping cleanup of step {quote(name)}")
            return False
        return True

    # -- provisioning ----------------------------------------------------------------

    def provision_step(self, comm: Callable[[S], Communicator | None]) -> Step[S]:
        """The ``StepProvision`` step: runs the provisioners with the communicator that
        ``comm(state)`` returns, and the error-cleanup-provisioner if they fail."""
        return _ProvisionStep(comm)

    def provision_context(self, comm: Communicator | None) -> ProvisionContext:
        return ProvisionContext(
            info=self.info,
            ui=self.ui,
            comm=comm,
            generated_data=dict(self.generated_data),
        )

    async def provision(self, comm: Communicator | None) -> None:
        """Run the provisioners (builders that do not use ``provision_step`` call this)."""
        pause = self._prompt if self.info.debug else None
        await run_provisioners(self.provisioners, self.provision_context(comm), debug_pause=pause)

    async def provision_cleanup(self, comm: Communicator | None) -> None:
        """The error-cleanup-provisioner, after provisioning failed."""
        self.ui.say("Provisioning step had errors: Running the cleanup provisioner, if present...")
        cleanup = [self.cleanup_provisioner] if self.cleanup_provisioner else []
        try:
            await run_provisioners(cleanup, self.provision_context(comm))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error = BuildError(
                f"Cleanup failed: {error_text(exc)}. Original Provisioning error: {self.error}"
            )


class _ProvisionStep(Step[S]):
    name = PROVISION_STEP_NAME

    def __init__(self, comm: Callable[[S], Communicator | None]) -> None:
        self._comm = comm

    async def run(self, state: S, build: BuildRun) -> None:
        try:
            await build.provision(self._comm(state))
        except Exception:
            # As Packer's StepProvision: once the build is interrupted, how provisioning
            # ended is moot (a killed script "failing" is the interrupt, not an error).
            if build.cancelled:
                raise asyncio.CancelledError from None
            raise

    async def cleanup(self, state: S, build: BuildRun) -> None:
        # As in Packer, any error of the build so far (not only a provisioning one)
        # triggers the cleanup provisioner; an interrupt alone does not.
        if build.error is not None:
            await build.provision_cleanup(self._comm(state))


def _as_build_error(exc: Exception) -> BuildError:
    if isinstance(exc, BuildError):
        return exc
    return BuildError(error_text(exc))

"""The provision hook: a build's provisioners, run in order with their common options.

Each provisioner is wrapped the way Packer 1.6.6 wraps it, from the inside out:

- ``pause_before`` *or* ``timeout`` (a quirk kept from Packer: when ``pause_before`` is
  set, ``timeout`` is ignored);
- ``max_retries``, so a retry repeats the pause and gets a fresh timeout;
- under ``-debug``, a prompt before each provisioner.

A provisioner fails by raising. The first error of a provisioner that is retried is the
one reported, as in Packer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from imagesmith.engine.context import ProvisionContext
from imagesmith.errors import BuildError
from imagesmith.golang import format_duration, quote

if TYPE_CHECKING:
    from imagesmith.engine.plan import PlannedProvisioner

log = logging.getLogger(__name__)

NO_COMMUNICATOR = (
    "No communicator found for provisioners! This is usually because the\n"
    '`communicator` config was set to "none". If you have any provisioners\n'
    "then a communicator is required. Please fix this to continue."
)
DEBUG_PROMPT = "Pausing before the next provisioner . Press enter to continue."
#: Go's text for an expired context, which is what a timed-out provisioner reports.
DEADLINE_EXCEEDED = "context deadline exceeded"

Attempt = Callable[[], Awaitable[None]]
Pause = Callable[[str], Awaitable[None]]


def error_text(exc: BaseException) -> str:
    """The text a user sees for a failure: the message, or the type for a bare one."""
    text = str(exc)
    return text if text else type(exc).__name__


async def run_provisioners(
    provisioners: Sequence[PlannedProvisioner],
    ctx: ProvisionContext,
    *,
    debug_pause: Pause | None = None,
) -> None:
    """Run ``provisioners`` in order; the first failure stops the hook and is raised.

    ``debug_pause`` (given under ``-debug``) asks before each provisioner.
    """
    if not provisioners:
        return
    if ctx.comm is None:
        raise BuildError(NO_COMMUNICATOR)
    for planned in provisioners:
        if debug_pause is not None:
            await debug_pause(DEBUG_PROMPT)
        log.debug("running provisioner %s", planned.type_name)
        await _with_retries(planned, ctx)


async def _with_retries(planned: PlannedProvisioner, ctx: ProvisionContext) -> None:
    attempt = _attempt(planned, ctx)
    try:
        await attempt()
        return
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if planned.max_retries <= 0 or _interrupted():
            raise
        first = exc

    for left in range(planned.max_retries, 0, -1):
        ctx.ui.say(
            f"Provisioner failed with {quote(error_text(first))}, retrying with {left} trie(s) left"
        )
        try:
            await attempt()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _interrupted():
                raise first from exc
            log.debug("provisioner %s failed again: %s", planned.type_name, exc)
    ctx.ui.say("retry limit reached.")
    raise first


def _interrupted() -> bool:
    """True when the build is being cancelled.

    A provisioner may turn the cancellation of its work into its own error (shell-local
    reports the killed script); such a failure must not be retried.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _attempt(planned: PlannedProvisioner, ctx: ProvisionContext) -> Attempt:
    """One try of the provisioner, with its pause or its timeout."""

    async def provision() -> None:
        await planned.instance.provision(ctx)

    if planned.pause_before:
        pause = planned.pause_before

        async def paused() -> None:
            ctx.ui.say(f"Pausing {format_duration(pause)} before the next provisioner...")
            await asyncio.sleep(pause)
            await provision()

        return paused

    if planned.timeout:
        limit = planned.timeout

        async def limited() -> None:
            ctx.ui.say(f"Setting a {format_duration(limit)} timeout for the next provisioner...")
            await _with_timeout(provision, limit, ctx)

        return limited

    return provision


async def _with_timeout(attempt: Attempt, seconds: float, ctx: ProvisionContext) -> None:
    """Run ``attempt``, cancelling it after ``seconds``.

    The provisioner sees an ordinary cancellation; if it lets it through, the timeout
    becomes Go's ``context deadline exceeded`` error. A provisioner that turns the
    cancellation into its own error (e.g. "Error executing script") has that error
    reported instead, as in Packer. An interrupt arriving at the same time still
    cancels the build.
    """
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        ctx.ui.error("Cancelling provisioner after a timeout...")
        task.cancel()

    handle = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        await attempt()
    except asyncio.CancelledError:
        if expired and task.uncancel() == 0:
            raise BuildError(DEADLINE_EXCEEDED) from None
        raise
    except BaseException:
        if expired:
            task.uncancel()
        raise
    else:
        if expired:
            task.uncancel()
    finally:
        handle.cancel()

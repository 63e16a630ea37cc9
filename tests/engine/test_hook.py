"""The provision hook: order, pause_before, timeout, max_retries, Packer's texts."""

from __future__ import annotations

import asyncio

import pytest

from engine.doubles import Recorder, RecordingProvisioner, console, info, planned_prov
from imagesmith.communicators.base import NoneCommunicator
from imagesmith.engine.context import ProvisionContext
from imagesmith.engine.hook import NO_COMMUNICATOR, run_provisioners
from imagesmith.engine.plan import PlannedProvisioner
from imagesmith.errors import BuildError


def context(comm: NoneCommunicator | None = None):  # type: ignore[no-untyped-def]
    con, out = console()
    ctx = ProvisionContext(
        info=info("b"),
        ui=con.build_ui("b", 0),
        comm=comm if comm is not None else NoneCommunicator(),
        generated_data={},
    )
    return ctx, out


def run(provs: list[PlannedProvisioner], ctx: ProvisionContext) -> None:
    asyncio.run(run_provisioners(provs, ctx))


def test_provisioners_run_in_order_and_stop_at_the_first_failure() -> None:
    rec = Recorder()
    ctx, _ = context()
    provs = [
        planned_prov(RecordingProvisioner(rec, "one")),
        planned_prov(RecordingProvisioner(rec, "two", fail_times=-1, errors=["two broke"])),
        planned_prov(RecordingProvisioner(rec, "three")),
    ]
    with pytest.raises(BuildError, match="two broke"):
        run(provs, ctx)
    assert rec.events == ["provision:one", "provision:two"]


def test_no_communicator_fails_only_when_there_are_provisioners() -> None:
    ctx, _ = context()
    ctx.comm = None
    run([], ctx)  # nothing to do, no error
    with pytest.raises(BuildError) as caught:
        run([planned_prov(RecordingProvisioner(Recorder(), "p"))], ctx)
    assert str(caught.value) == NO_COMMUNICATOR
    assert str(caught.value).startswith(
        "No communicator found for provisioners! This is usually because the\n"
    )


def test_retries_count_down_and_report_the_first_error() -> None:
    rec = Recorder()
    ctx, out = context()
    prov = RecordingProvisioner(rec, "p", fail_times=-1, errors=['first "one"', "second", "third"])

    with pytest.raises(BuildError) as caught:
        run([planned_prov(prov, max_retries=2)], ctx)

    assert prov.calls == 3
    assert str(caught.value) == 'first "one"'
    assert out.getvalue() == (
        '==> b: Provisioner failed with "first \\"one\\"", retrying with 2 trie(s) left\n'
        '==> b: Provisioner failed with "first \\"one\\"", retrying with 1 trie(s) left\n'
        "==> b: retry limit reached.\n"
    )


def test_retry_that_succeeds_ends_quietly() -> None:
    rec = Recorder()
    ctx, out = context()
    prov = RecordingProvisioner(rec, "p", fail_times=1, errors=["flaky"])
    run([planned_prov(prov, max_retries=3)], ctx)
    assert prov.calls == 2
    assert (
        out.getvalue() == '==> b: Provisioner failed with "flaky", retrying with 3 trie(s) left\n'
    )


def test_pause_before_message_uses_go_durations() -> None:
    ctx, out = context()
    run([planned_prov(RecordingProvisioner(Recorder(), "p"), pause_before=0.05)], ctx)
    assert out.getvalue() == "==> b: Pausing 50ms before the next provisioner...\n"


def test_timeout_cancels_a_slow_provisioner() -> None:
    ctx, out = context()
    prov = RecordingProvisioner(Recorder(), "p", sleep=30)
    with pytest.raises(BuildError, match=r"^context deadline exceeded$"):
        run([planned_prov(prov, timeout=0.05)], ctx)
    assert out.getvalue() == (
        "==> b: Setting a 50ms timeout for the next provisioner...\n"
        "==> b: Cancelling provisioner after a timeout...\n"
    )


def test_timeout_reports_the_provisioners_own_error_when_it_gives_one() -> None:
    class Translating(RecordingProvisioner):
        async def provision(self, ctx: ProvisionContext) -> None:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                raise BuildError("Error executing script: /tmp/x") from None

    ctx, _ = context()
    with pytest.raises(BuildError, match="Error executing script"):
        run([planned_prov(Translating(Recorder(), "p"), timeout=0.05)], ctx)


def test_timeout_does_not_swallow_a_real_interrupt() -> None:
    ctx, _ = context()
    prov = RecordingProvisioner(Recorder(), "p", sleep=30)

    async def scenario() -> None:
        task = asyncio.create_task(run_provisioners([planned_prov(prov, timeout=60)], ctx))
        while not prov.calls:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_pause_before_hides_timeout_as_in_packer() -> None:
    ctx, out = context()
    prov = RecordingProvisioner(Recorder(), "p", sleep=0.2)
    run([planned_prov(prov, pause_before=0.01, timeout=0.05)], ctx)
    assert "timeout" not in out.getvalue()


def test_retries_repeat_the_pause() -> None:
    ctx, out = context()
    prov = RecordingProvisioner(Recorder(), "p", fail_times=1, errors=["e"])
    run([planned_prov(prov, pause_before=0.01, max_retries=1)], ctx)
    assert out.getvalue().count("Pausing 10ms before the next provisioner...") == 2

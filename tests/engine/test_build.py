"""BuildRun.run_steps: order, cleanups, -on-error modes, -debug pauses, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from engine.doubles import (
    Recorder,
    RecordingProvisioner,
    RecordingStep,
    console,
    fake_tty,
    info,
    no_tty,
    planned_prov,
)
from imagesmith.communicators.base import NoneCommunicator
from imagesmith.engine.build import BuildRun
from imagesmith.engine.context import ProvisionContext
from imagesmith.errors import BuildError


def make_run(on_error: str = "cleanup", debug: bool = False, **kwargs):  # type: ignore[no-untyped-def]
    con, out = console()
    run = BuildRun(info("t", on_error=on_error, debug=debug), con.build_ui("t", 0), **kwargs)
    return run, out


def steps(*specs: RecordingStep) -> list[RecordingStep]:
    return list(specs)


def test_success_runs_all_steps_then_cleans_up_in_reverse() -> None:
    run, out = make_run()
    rec = Recorder()
    asyncio.run(run.run_steps(steps(RecordingStep("A"), RecordingStep("B")), rec))

    assert rec.events == ["run:A", "run:B", "cleanup:B", "cleanup:A"]
    assert not run.halted and not run.cancelled
    assert out.getvalue() == ""


def test_failure_stops_and_cleans_up_started_steps_then_raises_first_error() -> None:
    run, out = make_run()
    rec = Recorder()
    seq = steps(RecordingStep("A"), RecordingStep("B", fail="no disk"), RecordingStep("C"))

    with pytest.raises(BuildError, match=r"^no disk$"):
        asyncio.run(run.run_steps(seq, rec))

    assert rec.events == ["run:A", "run:B", "cleanup:B", "cleanup:A"]
    assert run.halted
    # In cleanup mode the engine prints nothing: the summary reports the error.
    assert out.getvalue() == ""


def test_non_build_error_is_reported_with_its_text() -> None:
    class Broken(RecordingStep):
        async def run(self, state: Recorder, build: BuildRun) -> None:
            raise FileNotFoundError(2, "No such file or directory", "/nope")

    run, _ = make_run()
    with pytest.raises(BuildError, match=r"No such file or directory: '/nope'"):
        asyncio.run(run.run_steps([Broken("X")], Recorder()))


def test_cleanup_that_raises_is_reported_and_the_others_still_run() -> None:
    run, out = make_run()
    rec = Recorder()
    seq = steps(RecordingStep("A"), RecordingStep("B", cleanup_raises=True), RecordingStep("C"))

    asyncio.run(run.run_steps(seq, rec))

    assert rec.events[-3:] == ["cleanup:C", "cleanup:B", "cleanup:A"]
    assert out.getvalue() == '==> t: Cleanup of step "B" failed: cannot remove B\n'


def test_abort_skips_every_cleanup_and_says_so() -> None:
    run, out = make_run("abort")
    rec = Recorder()
    seq = steps(RecordingStep("A"), RecordingStep("B"), RecordingStep("C", fail="bad thing"))

    with pytest.raises(BuildError, match="bad thing"):
        asyncio.run(run.run_steps(seq, rec))

    assert rec.events == ["run:A", "run:B", "run:C"]
    assert out.getvalue() == (
        "==> t: bad thing\n"
        '==> t: Step "C" failed, aborting...\n'
        '==> t: aborted: skipping cleanup of step "B"\n'
        '==> t: aborted: skipping cleanup of step "A"\n'
    )


def test_abort_still_cleans_up_after_success() -> None:
    run, out = make_run("abort")
    rec = Recorder()
    asyncio.run(run.run_steps(steps(RecordingStep("A"), RecordingStep("B")), rec))
    assert rec.events == ["run:A", "run:B", "cleanup:B", "cleanup:A"]
    assert out.getvalue() == ""


def test_provision_failure_runs_cleanup_provisioner_in_cleanup_mode() -> None:
    rec = Recorder()
    prov = RecordingProvisioner(rec, "main", fail_times=-1, errors=["script failed"])
    fixer = RecordingProvisioner(rec, "fixer")
    run, out = make_run(provisioners=[planned_prov(prov)], cleanup_provisioner=planned_prov(fixer))
    comm = NoneCommunicator()
    seq = [RecordingStep("Connect"), run.provision_step(lambda _s: comm), RecordingStep("After")]

    with pytest.raises(BuildError, match=r"^script failed$"):
        asyncio.run(run.run_steps(seq, rec))

    assert rec.events == [
        "run:Connect",
        "provision:main",
        "provision:fixer",
        "cleanup:Connect",
    ]
    assert out.getvalue() == (
        "==> t: Provisioning step had errors: Running the cleanup provisioner, if present...\n"
    )


def test_failing_cleanup_provisioner_wraps_the_original_error() -> None:
    rec = Recorder()
    prov = RecordingProvisioner(rec, "main", fail_times=-1, errors=["first"])
    fixer = RecordingProvisioner(rec, "fixer", fail_times=-1, errors=["second"])
    run, _ = make_run(provisioners=[planned_prov(prov)], cleanup_provisioner=planned_prov(fixer))
    comm = NoneCommunicator()

    with pytest.raises(BuildError) as caught:
        asyncio.run(run.run_steps([run.provision_step(lambda _s: comm)], rec))

    assert str(caught.value) == "Cleanup failed: second. Original Provisioning error: first"


def test_provision_message_printed_even_without_cleanup_provisioner() -> None:
    rec = Recorder()
    prov = RecordingProvisioner(rec, "main", fail_times=-1)
    run, out = make_run(provisioners=[planned_prov(prov)])
    comm = NoneCommunicator()
    with pytest.raises(BuildError):
        asyncio.run(run.run_steps([run.provision_step(lambda _s: comm)], rec))
    assert "Running the cleanup provisioner, if present..." in out.getvalue()


def test_run_cleanup_provisioner_mode_runs_only_the_provision_cleanup() -> None:
    rec = Recorder()
    prov = RecordingProvisioner(rec, "main", fail_times=-1, errors=["exit 3"])
    fixer = RecordingProvisioner(rec, "fixer")
    run, out = make_run(
        "run-cleanup-provisioner",
        provisioners=[planned_prov(prov)],
        cleanup_provisioner=planned_prov(fixer),
    )
    comm = NoneCommunicator()
    seq = [RecordingStep("StepA"), RecordingStep("StepB"), run.provision_step(lambda _s: comm)]

    with pytest.raises(BuildError, match="exit 3"):
        asyncio.run(run.run_steps(seq, rec))

    assert rec.events == ["run:StepA", "run:StepB", "provision:main", "provision:fixer"]
    assert out.getvalue() == (
        "==> t: Provisioning step had errors: Running the cleanup provisioner, if present...\n"
        "==> t: exit 3\n"
        '==> t: Step "StepB" failed, aborting...\n'
        '==> t: aborted: skipping cleanup of step "StepA"\n'
    )


def test_abort_mode_does_not_run_cleanup_provisioner() -> None:
    rec = Recorder()
    prov = RecordingProvisioner(rec, "main", fail_times=-1, errors=["exit 3"])
    fixer = RecordingProvisioner(rec, "fixer")
    run, out = make_run(
        "abort", provisioners=[planned_prov(prov)], cleanup_provisioner=planned_prov(fixer)
    )
    comm = NoneCommunicator()
    seq = [RecordingStep("StepConnect"), run.provision_step(lambda _s: comm)]

    with pytest.raises(BuildError):
        asyncio.run(run.run_steps(seq, rec))

    assert rec.events == ["run:StepConnect", "provision:main"]
    assert out.getvalue() == (
        "==> t: exit 3\n"
        '==> t: Step "StepProvision" failed, aborting...\n'
        '==> t: aborted: skipping cleanup of step "StepConnect"\n'
    )


def test_ask_without_terminal_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    run, out = make_run("ask")
    rec = Recorder()
    with no_tty(monkeypatch), pytest.raises(BuildError, match="broke"):
        asyncio.run(run.run_steps([RecordingStep("A"), RecordingStep("B", fail="broke")], rec))

    assert rec.events == ["run:A", "run:B", "cleanup:B", "cleanup:A"]
    # No terminal: Packer prints no prompt and takes the default (clean up).
    assert out.getvalue() == '==> t: broke\n==> t: Step "B" failed\n'


def test_ask_retry_then_success_continues_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    run, out = make_run("ask")
    rec = Recorder()
    with fake_tty(monkeypatch, ["x", "retry"]) as pending:
        seq = [RecordingStep("A", fail="flaky", fail_times=1), RecordingStep("B")]
        asyncio.run(run.run_steps(seq, rec))

    assert pending == []
    assert rec.events == ["run:A", "run:A", "run:B", "cleanup:B", "cleanup:A"]
    prompt = (
        "==> t: [c] Clean up and exit, [a] abort without cleanup, or [r] retry step "
        "(build may fail even if retry succeeds)? "
    )
    assert out.getvalue() == (
        f'==> t: flaky\n==> t: Step "A" failed\n{prompt}==> t: Incorrect input: "x"\n{prompt}'
    )


def test_ask_abort_skips_cleanup(monkeypatch: pytest.MonkeyPatch) -> None:
    run, out = make_run("ask")
    rec = Recorder()
    with fake_tty(monkeypatch, ["A"]), pytest.raises(BuildError, match="broke"):
        asyncio.run(run.run_steps([RecordingStep("S1"), RecordingStep("S2", fail="broke")], rec))

    assert rec.events == ["run:S1", "run:S2"]
    assert out.getvalue().endswith(
        "==> t: broke\n"
        '==> t: Step "S2" failed, aborting...\n'
        '==> t: aborted: skipping cleanup of step "S1"\n'
    )


def test_ask_cleanup_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    run, _ = make_run("ask")
    rec = Recorder()
    with fake_tty(monkeypatch, ["c"]), pytest.raises(BuildError):
        asyncio.run(run.run_steps([RecordingStep("S1"), RecordingStep("S2", fail="x")], rec))
    assert rec.events == ["run:S1", "run:S2", "cleanup:S2", "cleanup:S1"]


def test_debug_pauses_after_each_step_and_before_its_cleanup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, out = make_run(debug=True)
    rec = Recorder()
    with fake_tty(monkeypatch, ["", "", "", ""]) as pending:
        asyncio.run(run.run_steps([RecordingStep("StepOne"), RecordingStep("StepTwo")], rec))

    assert pending == []
    assert out.getvalue() == (
        "==> t: Pausing after run of step 'StepOne'. Press enter to continue. "
        "==> t: Pausing after run of step 'StepTwo'. Press enter to continue. "
        "==> t: Pausing before cleanup of step 'StepTwo'. Press enter to continue. "
        "==> t: Pausing before cleanup of step 'StepOne'. Press enter to continue. "
    )


def test_debug_without_terminal_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    run, out = make_run(debug=True)
    with no_tty(monkeypatch):
        asyncio.run(run.run_steps([RecordingStep("StepOne")], Recorder()))
    assert out.getvalue() == ""


def test_debug_provisioner_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder()
    prov = RecordingProvisioner(rec, "p")
    run, out = make_run(debug=True, provisioners=[planned_prov(prov)])
    comm = NoneCommunicator()
    with fake_tty(monkeypatch, ["", "", ""]):
        asyncio.run(run.run_steps([run.provision_step(lambda _s: comm)], rec))
    assert out.getvalue() == (
        "==> t: Pausing before the next provisioner . Press enter to continue. "
        "==> t: Pausing after run of step 'StepProvision'. Press enter to continue. "
        "==> t: Pausing before cleanup of step 'StepProvision'. Press enter to continue. "
    )


async def _cancel_during(run: BuildRun, seq: list[RecordingStep], rec: Recorder, at: int) -> None:
    task = asyncio.create_task(run.run_steps(seq, rec))
    await seq[at].started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_cancel_runs_cleanups_of_started_steps_and_reraises() -> None:
    run, _ = make_run()
    rec = Recorder()
    seq = [RecordingStep("A"), RecordingStep("B", hang=True), RecordingStep("C")]

    asyncio.run(_cancel_during(run, seq, rec, 1))

    assert rec.events == ["run:A", "run:B", "cleanup:B:cancelled", "cleanup:A:cancelled"]
    assert run.cancelled


def test_second_cancel_does_not_cut_cleanup_short() -> None:
    run, _ = make_run()
    rec = Recorder()
    seq = [RecordingStep("A", slow_cleanup=0.2), RecordingStep("B", hang=True)]

    async def scenario() -> None:
        task = asyncio.create_task(run.run_steps(seq, rec))
        await seq[1].started.wait()
        task.cancel()
        while "cleanup:A:cancelled" not in rec.events:
            await asyncio.sleep(0.01)
        task.cancel()  # again, while A is cleaning up
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert rec.events[-1] == "cleaned:A"


def test_abandon_cleanup_reports_what_is_left() -> None:
    run, out = make_run()
    rec = Recorder()
    seq = [RecordingStep("A"), RecordingStep("B", slow_cleanup=30), RecordingStep("C", hang=True)]

    async def scenario() -> None:
        task = asyncio.create_task(run.run_steps(seq, rec))
        await seq[2].started.wait()
        task.cancel()
        while not run.cleaning_up or "cleanup:B:cancelled" not in rec.events:
            await asyncio.sleep(0.01)
        assert run.activity == "B (cleanup)"
        run.abandon_cleanup()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert "cleaned:B" not in rec.events and "cleanup:A:cancelled" not in rec.events
    assert out.getvalue() == (
        '==> t: Abandoned cleanup of step "B": what it created may be left behind.\n'
        '==> t: Abandoned cleanup of step "A": what it created may be left behind.\n'
    )


def test_abort_mode_on_interrupt_skips_cleanup() -> None:
    run, out = make_run("abort")
    rec = Recorder()
    seq = [RecordingStep("A"), RecordingStep("B", hang=True)]
    asyncio.run(_cancel_during(run, seq, rec, 1))
    assert rec.events == ["run:A", "run:B"]
    assert out.getvalue() == (
        '==> t: Interrupted, aborting...\n==> t: aborted: skipping cleanup of step "A"\n'
    )


def test_cancel_while_asking_cleans_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupt during the -on-error=ask prompt means "clean up", as in Packer."""
    read_fd_holder: list[int] = []

    def open_tty() -> int:
        import os

        read_fd, write_fd = os.pipe()  # nothing is ever written: the prompt waits
        os.set_blocking(read_fd, False)
        read_fd_holder.append(write_fd)
        return read_fd

    monkeypatch.setattr("imagesmith.ui.progress.open_tty", open_tty)
    run, _ = make_run("ask")
    rec = Recorder()

    async def scenario() -> None:
        task = asyncio.create_task(run.run_steps([RecordingStep("A", fail="x")], rec))
        while not read_fd_holder:
            await asyncio.sleep(0.01)
        run.mark_cancelled()
        with pytest.raises(BuildError):
            await task

    asyncio.run(scenario())
    assert rec.events == ["run:A", "cleanup:A:cancelled"]


def test_generated_data_is_prefilled() -> None:
    run, _ = make_run()
    assert run.generated_data == {
        "ID": "ERR_ID_NOT_IMPLEMENTED_BY_BUILDER",
        "PackerRunUUID": "run-uuid-1",
        "PackerHTTPIP": "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER",
        "PackerHTTPPort": "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER",
        "PackerHTTPAddr": "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER",
    }


def test_provisioners_get_build_ui_comm_and_a_copy_of_generated_data() -> None:
    rec = Recorder()
    prov = RecordingProvisioner(rec, "p")
    run, _out = make_run(provisioners=[planned_prov(prov)])
    run.generated_data["ID"] = "i-123"
    comm = NoneCommunicator()
    asyncio.run(run.run_steps([run.provision_step(lambda _s: comm)], rec))

    ctx = prov.seen[0]
    assert ctx.comm is comm and ctx.info is run.info and ctx.ui is run.ui
    assert ctx.generated_data["ID"] == "i-123"
    ctx.generated_data["ID"] = "changed"
    assert run.generated_data["ID"] == "i-123"


def test_provisioner_error_caused_by_an_interrupt_is_a_cancellation() -> None:
    """A script killed by the interrupt fails; like Packer's StepProvision, that is
    reported as the cancellation, not as a provisioning error."""

    class KilledScript(RecordingProvisioner):
        async def provision(self, ctx: ProvisionContext) -> None:
            self.recorder("provision:script")
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                raise BuildError("Error executing script: /tmp/x") from None

    rec = Recorder()
    run, out = make_run(
        provisioners=[planned_prov(KilledScript(rec, "s"))],
        cleanup_provisioner=planned_prov(RecordingProvisioner(rec, "fixer")),
    )
    comm = NoneCommunicator()

    async def scenario() -> None:
        task = asyncio.create_task(run.run_steps([run.provision_step(lambda _s: comm)], rec))
        while not rec.events:
            await asyncio.sleep(0.01)
        run.mark_cancelled()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert run.error is None
    assert "provision:fixer" not in rec.events
    assert out.getvalue() == ""

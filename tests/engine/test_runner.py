"""The runner: build outcome lines, summary, machine-readable records, exit codes,
parallelism and interrupts (driven through the handler; real signals are covered by
the CLI tests)."""

from __future__ import annotations

import asyncio
import io
import re
import signal

import pytest

from engine.doubles import (
    Recorder,
    RecordingArtifact,
    RecordingPostProcessor,
    RecordingStep,
    StepsBuilder,
    planned_build,
    planned_pp,
)
from imagesmith.engine.artifact import Artifact
from imagesmith.engine.build import BuildRun
from imagesmith.engine.plan import Diagnostic, Plan, PlannedBuild
from imagesmith.engine.runner import Runner, RunResult
from imagesmith.ui.console import Console

DURATION = re.compile(
    r"\d+ (?:year|week|day|hour|minute|second|millisecond|microsecond)s?"
    r"(?: \d+ (?:year|week|day|hour|minute|second|millisecond|microsecond)s?)?"
)


def normalise(text: str) -> str:
    text = DURATION.sub("<d>", text)
    return re.sub(r"^\d{10},", "<ts>,", text, flags=re.M)


def execute(
    builds: list[PlannedBuild],
    *,
    machine_readable: bool = False,
    diagnostics: list[Diagnostic] | None = None,
    secrets: list[str] | None = None,
    **kwargs: object,
) -> tuple[RunResult, str]:
    out = io.StringIO()
    con = Console(stream=out, color=False, machine_readable=machine_readable)
    plan = Plan(builds=builds, diagnostics=diagnostics or [], secrets=secrets or [])
    runner = Runner(plan, con, handle_signals=False, **kwargs)  # type: ignore[arg-type]
    result = asyncio.run(runner.run())
    return result, normalise(out.getvalue())


def simple(name: str, rec: Recorder, **kwargs: object) -> PlannedBuild:
    fail = kwargs.pop("fail", None)
    builder = StepsBuilder(
        [RecordingStep(f"{name}-A", say=True), RecordingStep(f"{name}-B", fail=fail)],  # type: ignore[arg-type]
        rec,
        artifact=Artifact(builder_id="test.steps", id=f"id-{name}", text=f"made {name}"),
    )
    return planned_build(builder, name, **kwargs)  # type: ignore[arg-type]


def test_successful_builds_and_summary_sorted_by_name() -> None:
    rec = Recorder()
    result, out = execute([simple("a", rec), simple("b", rec)])
    assert result.exit_code == 0
    lines = out.splitlines()
    assert sorted(lines[:2]) == ["==> a: running a-A", "==> b: running b-A"]
    assert sorted(lines[2:4]) == ["Build 'a' finished after <d>.", "Build 'b' finished after <d>."]
    assert lines[4:] == [
        "",
        "==> Wait completed after <d>",
        "",
        "==> Builds finished. The artifacts of successful builds are:",
        "--> a: made a",
        "--> b: made b",
    ]


def test_failed_build_summary_and_exit_code() -> None:
    rec = Recorder()
    result, out = execute([simple("ok", rec), simple("bad", rec, fail="it broke")])
    assert result.exit_code == 1
    assert "Build 'bad' errored after <d>: it broke\n" in out
    assert out.endswith(
        "\n==> Wait completed after <d>\n"
        "\n==> Some builds didn't complete successfully and had errors:\n"
        "--> bad: it broke\n"
        "\n==> Builds finished. The artifacts of successful builds are:\n"
        "--> ok: made ok\n"
    )


def test_no_builds_is_success_without_artifacts() -> None:
    result, out = execute([])
    assert result.exit_code == 0
    assert out == (
        "\n==> Wait completed after <d>\n\n==> Builds finished but no artifacts were created.\n"
    )


def test_builder_without_artifact_finishes_with_nothing_to_list() -> None:
    class Empty(StepsBuilder):
        async def run(self, build: BuildRun) -> Artifact | None:
            return None

    result, out = execute([planned_build(Empty([], Recorder()), "e")])
    assert result.exit_code == 0
    assert "Build 'e' finished after <d>." in out
    assert out.endswith("==> Builds finished but no artifacts were created.\n")


def test_diagnostics_come_first_and_an_error_fails_the_run() -> None:
    diag = Diagnostic("error", 'Failed to prepare build: "x"', "1 error(s) occurred:\n\n* nope")
    result, out = execute([simple("a", Recorder())], diagnostics=[diag])
    assert result.exit_code == 1
    assert out.startswith(
        'Error: Failed to prepare build: "x"\n\n1 error(s) occurred:\n\n* nope\n\n\n==> a:'
    )


def test_warning_diagnostic_keeps_exit_code_zero() -> None:
    diag = Diagnostic("warning", 'Warning when preparing build: "a"', "careful")
    result, out = execute([simple("a", Recorder())], diagnostics=[diag])
    assert result.exit_code == 0
    assert out.startswith('Warning: Warning when preparing build: "a"\n\ncareful\n\n\n')


def test_debug_announces_sequential_builds() -> None:
    rec = Recorder()
    _result, out = execute([simple("a", rec), simple("b", rec)], debug=True)
    assert out.startswith("Debug mode enabled. Builds will not be parallelized.\n")
    assert rec.events.index("cleanup:a-A") < rec.events.index("run:b-A")


def test_parallel_builds_one_runs_builds_one_after_another() -> None:
    rec = Recorder()
    execute([simple("a", rec), simple("b", rec), simple("c", rec)], parallel_builds=1)
    order = [e.split(":")[1][0] for e in rec.events]
    assert order == sorted(order)


class Meeting(RecordingStep):
    """Waits until every build reached this step: deadlocks unless builds run together."""

    def __init__(self, name: str, everyone: int, arrived: list[str], gate: asyncio.Event) -> None:
        super().__init__(name)
        self.everyone, self.arrived, self.gate = everyone, arrived, gate

    async def run(self, state: Recorder, build: BuildRun) -> None:
        self.arrived.append(self.name)
        if len(self.arrived) == self.everyone:
            self.gate.set()
        await asyncio.wait_for(self.gate.wait(), 20)


def test_builds_run_in_parallel_by_default() -> None:
    arrived: list[str] = []
    gate = asyncio.Event()
    builds = [
        planned_build(StepsBuilder([Meeting(n, 3, arrived, gate)], Recorder()), n) for n in "xyz"
    ]
    result, _ = execute(builds)
    assert result.exit_code == 0
    assert sorted(arrived) == ["x", "y", "z"]


def test_parallel_limit_two_of_three() -> None:
    arrived: list[str] = []
    gate = asyncio.Event()
    builds = [
        planned_build(StepsBuilder([Meeting(n, 2, arrived, gate)], Recorder()), n) for n in "xyz"
    ]
    result, _ = execute(builds, parallel_builds=2)
    assert result.exit_code == 0
    assert arrived[:2] == ["x", "y"]


def test_post_processor_failure_fails_build_and_lists_no_artifact() -> None:
    rec = Recorder()
    builder = StepsBuilder([], rec, artifact=RecordingArtifact(rec, "B"))
    chains = [[planned_pp(RecordingPostProcessor(rec, "X", fail="cannot write"))]]
    build = planned_build(builder, "p", post_processors=chains)
    result, out = execute([build])
    assert result.exit_code == 1
    error = "1 error(s) occurred:\n\n* Post-processor failed: cannot write"
    assert f"Build 'p' errored after <d>: {error}\n" in out
    assert out.endswith(f"--> p: {error}\n\n==> Builds finished but no artifacts were created.\n")


def test_machine_readable_records() -> None:
    rec = Recorder()
    builder = StepsBuilder(
        [],
        rec,
        artifact=Artifact(
            builder_id="packer.file", id="File", text="Stored file: a,b", files=["x.txt", "y"]
        ),
    )
    ok = planned_build(builder, "f")
    bad = simple("z", rec, fail="line1\nline2")
    result, out = execute([ok, bad], machine_readable=True)
    assert result.exit_code == 1
    tail = out.split("<ts>,,ui,say,\\n==> Wait completed after <d>\n")[1]
    assert tail == (
        "<ts>,,error-count,1\n"
        "<ts>,,ui,error,\\n==> Some builds didn't complete successfully and had errors:\n"
        "<ts>,z,error,line1\\nline2\n"
        "<ts>,,ui,error,--> z: line1\\nline2\n"
        "<ts>,,ui,say,\\n==> Builds finished. The artifacts of successful builds are:\n"
        "<ts>,f,artifact-count,1\n"
        "<ts>,f,artifact,0,builder-id,packer.file\n"
        "<ts>,f,artifact,0,id,File\n"
        "<ts>,f,artifact,0,string,Stored file: a%!(PACKER_COMMA)b\n"
        "<ts>,f,artifact,0,files-count,2\n"
        "<ts>,f,artifact,0,file,0,x.txt\n"
        "<ts>,f,artifact,0,file,1,y\n"
        "<ts>,f,artifact,0,end\n"
        "<ts>,,ui,say,--> f: Stored file: a%!(PACKER_COMMA)b\n"
    )


def test_secrets_are_redacted_in_the_summary_and_records() -> None:
    rec = Recorder()
    _result, out = execute([simple("a", rec, fail="password hunter2 refused")], secrets=["hunter2"])
    assert "hunter2" not in out
    assert "--> a: password <sensitive> refused" in out
    _, mr = execute(
        [simple("a", rec, fail="password hunter2 refused")],
        secrets=["hunter2"],
        machine_readable=True,
    )
    assert "hunter2" not in mr and "<ts>,a,error,password <sensitive> refused" in mr


# -- interrupts -------------------------------------------------------------------------


async def _interrupt_when(runner: Runner, ready: asyncio.Event, *signals: signal.Signals) -> None:
    await ready.wait()
    for sig in signals:
        runner.interrupts.on_signal(sig)


def run_interrupted(
    builds: list[PlannedBuild], ready: asyncio.Event, *signals: signal.Signals, **kwargs: object
) -> tuple[RunResult, str]:
    out = io.StringIO()
    con = Console(stream=out, color=False)
    runner = Runner(Plan(builds=builds), con, handle_signals=False, **kwargs)  # type: ignore[arg-type]

    async def main() -> RunResult:
        poke = asyncio.create_task(_interrupt_when(runner, ready, *signals))
        result = await runner.run()
        await poke
        return result

    return asyncio.run(main()), normalise(out.getvalue())


def test_interrupt_cancels_cleans_up_and_exits_1() -> None:
    rec = Recorder()
    hang = RecordingStep("Hang", hang=True)
    build = planned_build(StepsBuilder([RecordingStep("A"), hang], rec), "h")
    result, out = run_interrupted([build], hang.started, signal.SIGTERM)

    assert result.exit_code == 1 and result.interrupted and not result.abandoned
    assert rec.events == ["run:A", "run:Hang", "cleanup:Hang:cancelled", "cleanup:A:cancelled"]
    assert out == (
        "Cancelling build after receiving terminated\n"
        "Build 'h' finished after <d>.\n"
        "\n==> Wait completed after <d>\n"
        "Cleanly cancelled builds after being interrupted.\n"
    )


def test_second_interrupt_reports_cleanups_and_lets_them_finish() -> None:
    rec = Recorder()
    hang = RecordingStep("Hang", hang=True)
    steps = [RecordingStep("StepKeyPair", slow_cleanup=0.3), hang]
    build = planned_build(StepsBuilder(steps, rec), "b1")

    out = io.StringIO()
    runner = Runner(Plan(builds=[build]), Console(stream=out, color=False), handle_signals=False)

    async def main() -> RunResult:
        async def poke() -> None:
            await hang.started.wait()
            runner.interrupts.on_signal(signal.SIGINT)
            while "cleanup:StepKeyPair:cancelled" not in rec.events:
                await asyncio.sleep(0.01)
            runner.interrupts.on_signal(signal.SIGINT)

        task = asyncio.create_task(poke())
        result = await runner.run()
        await task
        return result

    result = asyncio.run(main())
    assert not result.abandoned and result.exit_code == 1
    assert rec.events[-1] == "cleaned:StepKeyPair"
    assert normalise(out.getvalue()).startswith(
        "Cancelling build after receiving interrupt\n"
        "Still cleaning up: b1: StepKeyPair (cleanup); interrupt again within 3 s "
        "to abandon cleanup (resources may be left behind)\n"
        "Build 'b1' finished after <d>.\n"
    )


def test_third_interrupt_in_time_abandons_cleanup() -> None:
    rec = Recorder()
    hang = RecordingStep("Hang", hang=True)
    steps = [RecordingStep("Net"), RecordingStep("StepKeyPair", slow_cleanup=60), hang]
    build = planned_build(StepsBuilder(steps, rec), "b1")

    out = io.StringIO()
    runner = Runner(Plan(builds=[build]), Console(stream=out, color=False), handle_signals=False)

    async def main() -> RunResult:
        async def poke() -> None:
            await hang.started.wait()
            runner.interrupts.on_signal(signal.SIGINT)
            while "cleanup:StepKeyPair:cancelled" not in rec.events:
                await asyncio.sleep(0.01)
            runner.interrupts.on_signal(signal.SIGINT)
            runner.interrupts.on_signal(signal.SIGINT)

        task = asyncio.create_task(poke())
        result = await runner.run()
        await task
        return result

    result = asyncio.run(main())
    assert result.abandoned and result.exit_code == 1
    assert "cleaned:StepKeyPair" not in rec.events
    assert normalise(out.getvalue()) == (
        "Cancelling build after receiving interrupt\n"
        "Still cleaning up: b1: StepKeyPair (cleanup); interrupt again within 3 s "
        "to abandon cleanup (resources may be left behind)\n"
        "Abandoning cleanup of: b1: StepKeyPair (cleanup)\n"
        '==> b1: Abandoned cleanup of step "StepKeyPair": what it created may be left behind.\n'
        '==> b1: Abandoned cleanup of step "Net": what it created may be left behind.\n'
        "Build 'b1' finished after <d>.\n"
        "\n==> Wait completed after <d>\n"
        "Cleanly cancelled builds after being interrupted.\n"
    )


def test_late_third_interrupt_only_repeats_the_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagesmith.engine import interrupt

    monkeypatch.setattr(interrupt, "CONFIRM_WINDOW", 0.0)
    rec = Recorder()
    hang = RecordingStep("Hang", hang=True)
    steps = [RecordingStep("Slow", slow_cleanup=0.3), hang]
    build = planned_build(StepsBuilder(steps, rec), "b1")
    out = io.StringIO()
    runner = Runner(Plan(builds=[build]), Console(stream=out, color=False), handle_signals=False)

    async def main() -> RunResult:
        async def poke() -> None:
            await hang.started.wait()
            runner.interrupts.on_signal(signal.SIGINT)
            while "cleanup:Slow:cancelled" not in rec.events:
                await asyncio.sleep(0.01)
            runner.interrupts.on_signal(signal.SIGINT)
            await asyncio.sleep(0.01)  # the (zero-length) window has passed
            runner.interrupts.on_signal(signal.SIGINT)

        task = asyncio.create_task(poke())
        result = await runner.run()
        await task
        return result

    result = asyncio.run(main())
    assert not result.abandoned
    assert rec.events[-1] == "cleaned:Slow"
    assert out.getvalue().count("Still cleaning up: b1: Slow (cleanup)") == 2


def test_interrupt_stops_builds_waiting_for_a_slot() -> None:
    rec = Recorder()
    hang = RecordingStep("Hang", hang=True)
    first = planned_build(StepsBuilder([hang], rec), "a")
    second = simple("b", rec)
    result, out = run_interrupted([first, second], hang.started, signal.SIGINT, parallel_builds=1)
    assert result.exit_code == 1
    assert "run:b-A" not in rec.events
    assert "Build 'b' failed to acquire semaphore: context canceled\n" in out


def test_unexpected_exception_in_a_builder_is_reported_as_a_bug() -> None:
    class Buggy(StepsBuilder):
        async def run(self, build: BuildRun) -> Artifact | None:
            return {}["missing"]  # type: ignore[no-any-return]

    result, out = execute([planned_build(Buggy([], Recorder()), "x"), simple("y", Recorder())])
    assert result.exit_code == 1
    assert "--> x: internal error (this is a bug): KeyError: 'missing'\n" in out
    assert "--> y: made y\n" in out

"""`imagesmith build` as a user runs it: a subprocess, real signals, real output.

Tests here use the ``test-steps`` builder from ``cli_doubles`` (registered in the child
process) to make run/cleanup order and interrupts observable; the differential tests
against packer 1.6.6 are in ``test_packer_diff.py``.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine.clirun import (
    Live,
    base_env,
    imagesmith_cmd,
    normalise,
    run,
    run_interactive,
    write_template,
)


def steps_template(*builds: tuple[str, list[str]], **extra: Any) -> dict[str, Any]:
    return {
        "builders": [{"type": "test-steps", "name": n, "steps": s} for n, s in builds],
        **extra,
    }


def build(tmp_path: Path, template: dict[str, Any], *args: str):  # type: ignore[no-untyped-def]
    write_template(tmp_path, template)
    result = run(imagesmith_cmd(*args, "t.json", doubles=True), tmp_path)
    result.out = normalise(result.out, tmp=tmp_path)
    return result


def test_success_runs_steps_then_cleans_up_in_reverse(tmp_path: Path) -> None:
    result = build(tmp_path, steps_template(("b", ["A", "B"])), "-color=false")
    assert result.rc == 0, result.out + result.err
    assert result.out == (
        "==> b: run A\n"
        "==> b: run B\n"
        "==> b: cleanup B\n"
        "==> b: cleanup A\n"
        "Build 'b' finished after <d>.\n"
        "\n==> Wait completed after <d>\n"
        "\n==> Builds finished. The artifacts of successful builds are:\n"
        "--> b: test artifact\n"
    )
    assert result.err == ""


def test_failure_in_cleanup_mode(tmp_path: Path) -> None:
    template = steps_template(("b", ["A", "B:fail=disk is full", "C"]))
    result = build(tmp_path, template, "-color=false")
    assert result.rc == 1
    assert result.out == (
        "==> b: run A\n"
        "==> b: run B\n"
        "==> b: cleanup B (halted)\n"
        "==> b: cleanup A (halted)\n"
        "Build 'b' errored after <d>: disk is full\n"
        "\n==> Wait completed after <d>\n"
        "\n==> Some builds didn't complete successfully and had errors:\n"
        "--> b: disk is full\n"
        "\n==> Builds finished but no artifacts were created.\n"
    )


def test_on_error_abort(tmp_path: Path) -> None:
    template = steps_template(("b", ["StepA", "StepB", "StepC:fail=nope"]))
    result = build(tmp_path, template, "-color=false", "-on-error=abort")
    assert result.rc == 1
    assert result.out.startswith(
        "==> b: run StepA\n"
        "==> b: run StepB\n"
        "==> b: run StepC\n"
        "==> b: nope\n"
        '==> b: Step "StepC" failed, aborting...\n'
        '==> b: aborted: skipping cleanup of step "StepB"\n'
        '==> b: aborted: skipping cleanup of step "StepA"\n'
        "Build 'b' errored after <d>: nope\n"
    )


def test_on_error_ask_without_terminal_cleans_up(tmp_path: Path) -> None:
    template = steps_template(("b", ["StepA", "StepB:fail=nope"]))
    result = build(tmp_path, template, "-color=false", "-on-error=ask")
    assert result.rc == 1
    assert result.out.startswith(
        "==> b: run StepA\n"
        "==> b: run StepB\n"
        "==> b: nope\n"
        '==> b: Step "StepB" failed\n'
        "==> b: cleanup StepB (halted)\n"
        "==> b: cleanup StepA (halted)\n"
    )


def test_parallel_builds_one_runs_in_name_order(tmp_path: Path) -> None:
    template = steps_template(("c", ["X"]), ("a", ["X"]), ("b", ["X"]))
    result = build(tmp_path, template, "-color=false", "-parallel-builds=1")
    assert result.rc == 0
    starts = [line for line in result.out.splitlines() if line.endswith("run X")]
    assert starts == ["==> a: run X", "==> b: run X", "==> c: run X"]


def test_parallel_output_keeps_each_message_whole(tmp_path: Path) -> None:
    names = [f"b{i}" for i in range(6)]
    template = steps_template(*[(n, [f"S{k}" for k in range(20)]) for n in names])
    result = build(tmp_path, template, "-color=false")
    assert result.rc == 0
    for name in names:
        mine = [line for line in result.out.splitlines() if line.startswith(f"==> {name}:")]
        expected = [f"==> {name}: run S{k}" for k in range(20)]
        expected += [f"==> {name}: cleanup S{k}" for k in reversed(range(20))]
        assert mine == expected
    artifacts = result.out.split("are:\n")[1].splitlines()
    assert artifacts == [f"--> {n}: test artifact" for n in names]


def test_debug_mode_is_sequential_and_announced(tmp_path: Path) -> None:
    template = steps_template(("b", ["X"]), ("a", ["X"]))
    result = build(tmp_path, template, "-color=false", "-debug")
    assert result.rc == 0
    assert result.out.startswith(
        "Debug mode enabled. Builds will not be parallelized.\n"
        "==> a: run X\n==> a: cleanup X\nBuild 'a' finished after <d>.\n"
        "==> b: run X\n"
    )


def test_machine_readable(tmp_path: Path) -> None:
    template = steps_template(("b", ["A"]), ("a", ["A:fail=x,y"]))
    result = build(tmp_path, template, "-machine-readable")
    assert result.rc == 1
    lines = result.out.splitlines()
    assert "<ts>,,ui,say,==> b: run A" in lines
    assert not any("output will be in this color" in line for line in lines)
    assert lines[-13:] == [
        "<ts>,,ui,say,\\n==> Wait completed after <d>",
        "<ts>,,error-count,1",
        "<ts>,,ui,error,\\n==> Some builds didn't complete successfully and had errors:",
        "<ts>,a,error,x%!(PACKER_COMMA)y",
        "<ts>,,ui,error,--> a: x%!(PACKER_COMMA)y",
        "<ts>,,ui,say,\\n==> Builds finished. The artifacts of successful builds are:",
        "<ts>,b,artifact-count,1",
        "<ts>,b,artifact,0,builder-id,test.steps",
        "<ts>,b,artifact,0,id,steps",
        "<ts>,b,artifact,0,string,test artifact",
        "<ts>,b,artifact,0,files-count,0",
        "<ts>,b,artifact,0,end",
        "<ts>,,ui,say,--> b: test artifact",
    ]


def test_timestamp_ui(tmp_path: Path) -> None:
    result = build(tmp_path, steps_template(("b", ["A"])), "-color=false", "-timestamp-ui")
    assert result.rc == 0
    assert result.out.startswith(
        "<time>: ==> b: run A\n<time>: ==> b: cleanup A\n<time>: Build 'b' finished after <d>.\n"
        "\n==> Wait completed after <d>\n"
    )


def test_colour_on_a_terminal(tmp_path: Path) -> None:
    write_template(tmp_path, steps_template(("b", ["A:fail=bad"]), ("a", ["A"])))
    out = run_on_pty(imagesmith_cmd("t.json", doubles=True), tmp_path)
    assert "\x1b[1;32ma: output will be in this color.\x1b[0m\r\n" in out
    assert "\x1b[1;36mb: output will be in this color.\x1b[0m\r\n\r\n" in out
    assert "\x1b[1;32m==> a: run A\x1b[0m" in out
    assert "\x1b[1;31m==> b: bad\x1b[0m" not in out  # cleanup mode prints no step error
    assert "\x1b[1;31mBuild 'b' errored after " in out
    assert "\r\n==> Wait completed after " in out  # the summary is not coloured


def test_packer_no_color_and_color_false_on_a_terminal(tmp_path: Path) -> None:
    write_template(tmp_path, steps_template(("a", ["A"])))
    out = run_on_pty(
        imagesmith_cmd("t.json", doubles=True), tmp_path, env=base_env(PACKER_NO_COLOR="1")
    )
    assert "\x1b[" not in out and "a: output will be in this color." in out
    out = run_on_pty(imagesmith_cmd("-color=false", "t.json", doubles=True), tmp_path)
    assert "\x1b[" not in out and "output will be in this color" not in out


def run_on_pty(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env or base_env(),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            proc.kill()
            pytest.fail("no output on the terminal for 60 s")
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


# -- interrupts ----------------------------------------------------------------------------


def live(tmp_path: Path, template: dict[str, Any], *args: str) -> Live:
    write_template(tmp_path, template)
    return Live(imagesmith_cmd("-color=false", *args, "t.json", doubles=True), tmp_path)


@pytest.mark.parametrize(
    ("sig", "name"), [(signal.SIGINT, "interrupt"), (signal.SIGTERM, "terminated")]
)
def test_signal_to_the_process_group_cancels_and_cleans_up(
    tmp_path: Path, sig: signal.Signals, name: str
) -> None:
    proc = live(tmp_path, steps_template(("b", ["StepA", "StepB:hang", "StepC"])))
    try:
        proc.wait_for("hanging")
        proc.signal_group(sig)
        result = proc.finish()
    finally:
        proc.kill()
    assert result.rc == 1
    assert normalise(result.out) == (
        "==> b: run StepA\n"
        "==> b: run StepB\n"
        "    b: hanging\n"
        f"Cancelling build after receiving {name}\n"
        "==> b: cleanup StepB (cancelled)\n"
        "==> b: cleanup StepA (cancelled)\n"
        "Build 'b' finished after <d>.\n"
        "\n==> Wait completed after <d>\n"
        "Cleanly cancelled builds after being interrupted.\n"
    )
    assert "Traceback" not in result.err


def test_sigterm_to_the_process_only(tmp_path: Path) -> None:
    proc = live(tmp_path, steps_template(("b", ["StepA:hang"]), ("c", ["StepA:hang"])))
    try:
        proc.wait_for("hanging")
        proc.wait_for("hanging")
        proc.signal_process(signal.SIGTERM)
        result = proc.finish()
    finally:
        proc.kill()
    assert result.rc == 1
    assert "Cancelling build after receiving terminated\n" in result.out
    assert "==> b: cleanup StepA (cancelled)\n" in result.out
    assert "==> c: cleanup StepA (cancelled)\n" in result.out


def test_second_interrupt_reports_and_cleanup_completes(tmp_path: Path) -> None:
    proc = live(tmp_path, steps_template(("b", ["StepKeyPair:slowclean=1.5", "StepRun:hang"])))
    try:
        proc.wait_for("hanging")
        proc.signal_group(signal.SIGINT)
        proc.wait_for("cleanup StepKeyPair")
        proc.signal_group(signal.SIGINT)
        result = proc.finish()
    finally:
        proc.kill()
    assert result.rc == 1
    out = normalise(result.out)
    assert (
        "Still cleaning up: b: StepKeyPair (cleanup); interrupt again within 3 s to abandon "
        "cleanup (resources may be left behind)\n"
    ) in out
    assert "==> b: cleaned StepKeyPair\n" in out
    assert out.endswith("Cleanly cancelled builds after being interrupted.\n")


def test_confirmed_interrupt_abandons_cleanup(tmp_path: Path) -> None:
    template = steps_template(("b", ["StepNet", "StepKeyPair:slowclean=120", "StepRun:hang"]))
    proc = live(tmp_path, template)
    try:
        proc.wait_for("hanging")
        proc.signal_group(signal.SIGINT)
        proc.wait_for("cleanup StepKeyPair")
        proc.signal_group(signal.SIGINT)
        proc.wait_for("Still cleaning up")
        proc.signal_group(signal.SIGINT)
        result = proc.finish(timeout=30)
    finally:
        proc.kill()
    assert result.rc == 1
    out = normalise(result.out)
    assert "Abandoning cleanup of: b: StepKeyPair (cleanup)\n" in out
    assert '==> b: Abandoned cleanup of step "StepKeyPair"' in out
    assert '==> b: Abandoned cleanup of step "StepNet"' in out
    assert "cleaned StepKeyPair" not in out
    assert out.endswith("Cleanly cancelled builds after being interrupted.\n")


# -- arguments ------------------------------------------------------------------------------


def test_help(tmp_path: Path) -> None:
    result = run(imagesmith_cmd("-h"), tmp_path)
    assert result.rc == 0
    assert result.out.startswith("Usage: imagesmith build [options] TEMPLATE\n")
    assert "-var-file=path" in result.out and result.out.endswith("(implies -rehearse).\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), None),
        (("a.json", "b.json"), None),
        (
            ("-on-error=bogus", "t.json"),
            'invalid value "bogus" for flag -on-error: expected one of '
            '["cleanup" "abort" "ask" "run-cleanup-provisioner"]',
        ),
        (
            ("-var", "novalue", "t.json"),
            "invalid value \"novalue\" for flag -var: No '=' value in arg: novalue",
        ),
    ],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...], message: str | None) -> None:
    result = run(imagesmith_cmd(*args), tmp_path)
    assert result.rc == 1
    assert result.out.startswith("Usage: imagesmith build [options] TEMPLATE\n")
    if message is not None:
        assert result.out.endswith(message + "\n")


def test_template_error(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text('{"builders": [{"type": "null",}]}')
    result = run(imagesmith_cmd("t.json"), tmp_path)
    assert result.rc == 1
    assert result.out.startswith("Failed to parse template: ")
    assert "Traceback" not in result.out + result.err


def test_only_matching_nothing_is_success(tmp_path: Path) -> None:
    result = build(tmp_path, steps_template(("b", ["A"])), "-only=zzz")
    assert result.rc == 0
    assert re.fullmatch(
        r"\n==> Wait completed after <d>\n\n==> Builds finished but no artifacts were created.\n",
        result.out,
    )


def test_debug_pauses_on_a_terminal(tmp_path: Path) -> None:
    write_template(tmp_path, steps_template(("b", ["StepOne", "StepTwo"])))
    cmd = imagesmith_cmd("-debug", "-color=false", "t.json", doubles=True)
    result = run_interactive(cmd, tmp_path, [])
    assert result.rc == 0
    pause = "Press enter to continue. \r\n"
    assert normalise(result.out).startswith(
        "Debug mode enabled. Builds will not be parallelized.\r\n"
        "==> b: run StepOne\r\n"
        f"==> b: Pausing after run of step 'StepOne'. {pause}"
        "==> b: run StepTwo\r\n"
        f"==> b: Pausing after run of step 'StepTwo'. {pause}"
        f"==> b: Pausing before cleanup of step 'StepTwo'. {pause}"
        "==> b: cleanup StepTwo\r\n"
        f"==> b: Pausing before cleanup of step 'StepOne'. {pause}"
        "==> b: cleanup StepOne\r\n"
        "Build 'b' finished after <d>.\r\n"
    )


def test_on_error_ask_on_a_terminal(tmp_path: Path) -> None:
    write_template(tmp_path, steps_template(("b", ["StepOne", "StepTwo:fail=broken"])))
    cmd = imagesmith_cmd("-on-error=ask", "-color=false", "t.json", doubles=True)
    result = run_interactive(cmd, tmp_path, ["what", "retry", "abort"])
    assert result.rc == 1
    prompt = (
        "==> b: [c] Clean up and exit, [a] abort without cleanup, or [r] retry step "
        "(build may fail even if retry succeeds)? "
    )
    assert normalise(result.out).startswith(
        "==> b: run StepOne\r\n"
        "==> b: run StepTwo\r\n"
        "==> b: broken\r\n"
        '==> b: Step "StepTwo" failed\r\n'
        f"{prompt}what\r\n"
        '==> b: Incorrect input: "what"\r\n'
        f"{prompt}retry\r\n"
        "==> b: run StepTwo\r\n"
        "==> b: broken\r\n"
        '==> b: Step "StepTwo" failed\r\n'
        f"{prompt}abort\r\n"
        "==> b: broken\r\n"
        '==> b: Step "StepTwo" failed, aborting...\r\n'
        '==> b: aborted: skipping cleanup of step "StepOne"\r\n'
        "Build 'b' errored after <d>: broken\r\n"
    )

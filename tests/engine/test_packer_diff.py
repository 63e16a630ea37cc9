"""Differential tests: `imagesmith build` and packer 1.6.6 on the same templates.

Output is compared after normalising what legitimately differs between two runs
(durations, timestamps, temp script paths, the working directory). Templates use the
real local components: the ``null`` builder with ``communicator: none``, the ``file``
builder, ``shell-local`` and ``manifest``.
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from engine.clirun import (
    PACKER,
    Live,
    Result,
    base_env,
    both,
    imagesmith_cmd,
    needs_packer,
    normalise,
    run_interactive,
    write_template,
)

pytestmark = [pytest.mark.packer, needs_packer]


def null(name: str = "null") -> dict[str, Any]:
    return {"type": "null", "communicator": "none", "name": name}


def shell_local(*lines: str, **extra: Any) -> dict[str, Any]:
    return {"type": "shell-local", "inline": list(lines), **extra}


def same(tmp_path: Path, template: dict[str, Any], *args: str, **kwargs: Any) -> str:
    mine, theirs = both(tmp_path, template, *args, **kwargs)
    assert mine.out == theirs.out
    assert mine.rc == theirs.rc
    return mine.out


def test_null_with_shell_local(tmp_path: Path) -> None:
    template = {
        "builders": [null("n1")],
        "provisioners": [shell_local("echo out  ", "echo $PACKER_BUILD_NAME")],
    }
    out = same(tmp_path, template, "-color=false")
    assert "    n1: out\n    n1: n1\n" in out


def test_stderr_lines_are_errors(tmp_path: Path) -> None:
    template = {
        "builders": [null("n1")],
        "provisioners": [shell_local("echo out", "echo err >&2")],
    }
    mine, theirs = both(tmp_path, template, "-color=false")
    # stdout and stderr are two pipes: their relative order is not deterministic.
    assert sorted(mine.out.splitlines()) == sorted(theirs.out.splitlines())
    assert "==> n1: err\n" in mine.out


def test_sequential_builds_with_default_colour_flag(tmp_path: Path) -> None:
    template = {
        "builders": [null("b"), null("a"), null("c")],
        "provisioners": [shell_local("echo hi from {{build_name}}")],
    }
    # Packer colours even a pipe; imagesmith only a terminal, so compare with escapes off.
    out = same(tmp_path, template, "-parallel-builds=1", env=base_env(PACKER_NO_COLOR="1"))
    assert out.startswith(
        "a: output will be in this color.\nb: output will be in this color.\n"
        "c: output will be in this color.\n\n"
    )


def test_parallel_builds_same_lines_per_build(tmp_path: Path) -> None:
    template = {
        "builders": [null(f"n{i}") for i in range(4)],
        "provisioners": [shell_local("echo one", "echo two")],
    }
    mine, theirs = both(tmp_path, template, "-color=false")
    assert mine.rc == theirs.rc == 0

    def per_build(text: str) -> dict[str, list[str]]:
        lines: dict[str, list[str]] = {}
        for line in text.splitlines():
            for i in range(4):
                if f" n{i}:" in line or f"'n{i}'" in line:
                    lines.setdefault(f"n{i}", []).append(line)
        return lines

    assert per_build(mine.out) == per_build(theirs.out)
    assert mine.out.split("\n\n==> Wait")[1] == theirs.out.split("\n\n==> Wait")[1]


def test_file_builder_with_manifest(tmp_path: Path) -> None:
    template = {
        "builders": [{"type": "file", "name": "f", "target": "{dir}/out.txt", "content": "x"}],
        "post-processors": [
            {"type": "manifest", "output": "{dir}/manifest.json", "strip_time": True}
        ],
    }
    out = same(tmp_path, template, "-color=false")
    assert out.endswith("--> f: Stored file: <tmp>/out.txt\n--> f: Stored file: <tmp>/out.txt\n")
    for tool in ("imagesmith", "packer"):
        assert (tmp_path / tool / "out.txt").read_text() == "x"
        manifest = json.loads((tmp_path / tool / "manifest.json").read_text())
        assert manifest["builds"][0]["name"] == "f"


def test_post_processor_chain_messages_and_targets(tmp_path: Path) -> None:
    template = {
        "builders": [null("n")],
        "post-processors": [
            [
                {"type": "shell-local", "name": "pp2", "inline": ["echo chain"]},
                {"type": "manifest", "output": "{dir}/m.json"},
            ]
        ],
    }
    out = same(tmp_path, template, "-color=false")
    assert "==> n: Running post-processor: pp2 (type shell-local)\n" in out
    assert "    n (shell-local): chain\n" in out


def failing_template(**extra: Any) -> dict[str, Any]:
    return {
        "builders": [null("b")],
        "provisioners": [shell_local("echo about to fail", "exit 3")],
        "error-cleanup-provisioner": shell_local("echo cleaning up after failure"),
        **extra,
    }


@pytest.mark.parametrize("mode", ["cleanup", "abort", "run-cleanup-provisioner", "ask"])
def test_on_error_modes(tmp_path: Path, mode: str) -> None:
    out = same(tmp_path, failing_template(), "-color=false", f"-on-error={mode}")
    assert "Build 'b' errored after <d>: Script exited with non-zero exit status: 3." in out


def test_cleanup_provisioner_failure_wraps_the_error(tmp_path: Path) -> None:
    template = failing_template()
    template["error-cleanup-provisioner"] = shell_local("exit 4")
    out = same(tmp_path, template, "-color=false")
    assert "Cleanup failed: Script exited with non-zero exit status: 4." in out


def test_max_retries_and_pause_before(tmp_path: Path) -> None:
    template = {
        "builders": [null("r")],
        "provisioners": [
            shell_local("echo try", "exit 3", max_retries=2),
        ],
    }
    out = same(tmp_path, template, "-color=false")
    assert "retrying with 2 trie(s) left" in out and "retry limit reached." in out
    template = {
        "builders": [null("p")],
        "provisioners": [shell_local("echo p", pause_before="100ms", timeout="1s")],
    }
    out = same(tmp_path, template, "-color=false")
    assert "Pausing 100ms before the next provisioner..." in out and "timeout" not in out


def test_timeout_expiry(tmp_path: Path) -> None:
    template = {
        "builders": [null("t")],
        "provisioners": [shell_local("sleep 5", timeout="500ms")],
    }
    mine, theirs = both(tmp_path, template, "-color=false")
    assert mine.rc == theirs.rc == 1
    # Packer prints the timeout notice from a goroutine racing with the provisioner's
    # end: it comes late or not at all. imagesmith prints it when the timeout expires.
    notice = "==> t: Cancelling provisioner after a timeout...\n"
    assert mine.out.replace(notice, "") == theirs.out.replace(notice, "")
    assert mine.out.startswith(
        "==> t: Setting a 500ms timeout for the next provisioner...\n"
        "==> t: Running local shell script: <script>\n"
        "==> t: Cancelling provisioner after a timeout...\n"
    )


def test_machine_readable(tmp_path: Path) -> None:
    template = {
        "builders": [{"type": "file", "name": "f", "target": "{dir}/a,b.txt", "content": "x"}],
        "provisioners": [shell_local("echo 'x,y'")],
    }
    out = same(tmp_path, template, "-machine-readable")
    assert "<ts>,f,artifact,0,file,0,<tmp>/a%!(PACKER_COMMA)b.txt\n" in out


def test_timestamp_ui(tmp_path: Path) -> None:
    template = {"builders": [null("n")], "provisioners": [shell_local("echo x")]}
    out = same(tmp_path, template, "-color=false", "-timestamp-ui")
    assert "<time>:     n: x\n" in out


def test_prepare_failure_other_builds_run_exit_1(tmp_path: Path) -> None:
    template = {"builders": [null("ok"), {"type": "file", "name": "f"}]}
    mine, theirs = both(tmp_path, template, "-color=false")
    # imagesmith adds where the build is declared to the summary; otherwise the same.
    assert re.sub(r" \(t\.json line \d+\)", "", mine.out) == theirs.out
    assert mine.rc == theirs.rc == 1
    assert theirs.out.startswith('Error: Failed to prepare build: "f"\n\n1 error(s) occurred:\n\n')


def test_only_matches_nothing(tmp_path: Path) -> None:
    same(tmp_path, {"builders": [null("n")]}, "-only=zzz")


def test_sensitive_variable_redacted(tmp_path: Path) -> None:
    template = {
        "variables": {"pw": "s3cr3t-value"},
        "sensitive-variables": ["pw"],
        "builders": [null("n")],
        "provisioners": [shell_local("echo pw={{user `pw`}}")],
    }
    out = same(tmp_path, template, "-color=false")
    assert "pw=<sensitive>" in out and "s3cr3t-value" not in out


@pytest.mark.parametrize(
    ("sig", "whole_group", "sleep"),
    [(signal.SIGINT, True, 30), (signal.SIGTERM, False, 2)],
    ids=["sigint-group", "sigterm-process"],
)
def test_interrupt_output_is_the_same(
    tmp_path: Path, sig: signal.Signals, whole_group: bool, sleep: int
) -> None:
    # SIGTERM to packer alone leaves its script running (and holding the output pipe)
    # until the sleep ends: keep that sleep short.
    template = {
        "builders": [null("n")],
        "provisioners": [shell_local("echo started", f"sleep {sleep}")],
    }
    outputs = {}
    for tool in ("imagesmith", "packer"):
        work = tmp_path / tool
        write_template(work, template)
        cmd = (
            [str(PACKER), "build", "-color=false", "t.json"]
            if tool == "packer"
            else imagesmith_cmd("-color=false", "t.json")
        )
        proc = Live(cmd, work)
        try:
            proc.wait_for("started")
            if whole_group:
                proc.signal_group(sig)
            else:
                proc.signal_process(sig)
            result = proc.finish()
        finally:
            proc.kill()
        outputs[tool] = (result.rc, normalise(result.out))
    assert outputs["imagesmith"] == outputs["packer"]
    rc, out = outputs["imagesmith"]
    assert rc == 1
    name = "interrupt" if sig == signal.SIGINT else "terminated"
    assert out.endswith(
        f"Cancelling build after receiving {name}\n"
        "Build 'n' finished after <d>.\n"
        "\n==> Wait completed after <d>\nCleanly cancelled builds after being interrupted.\n"
    )


def interactive_both(
    tmp_path: Path, template: dict[str, Any], answers: list[str], *args: str
) -> tuple[Result, Result]:
    results = []
    for tool in ("imagesmith", "packer"):
        work = tmp_path / tool
        write_template(work, template)
        cmd = (
            imagesmith_cmd(*args, "t.json")
            if tool == "imagesmith"
            else [str(PACKER), "build", *args, "t.json"]
        )
        result = run_interactive(cmd, work, answers)
        result.out = normalise(result.out, tmp=work)
        results.append(result)
    return results[0], results[1]


def test_debug_prompts_on_a_terminal(tmp_path: Path) -> None:
    template = {"builders": [null("a")], "provisioners": [shell_local("echo hi")]}
    mine, theirs = interactive_both(tmp_path, template, [], "-debug", "-color=false")
    assert mine.out == theirs.out
    assert mine.rc == theirs.rc == 0
    assert "==> a: Pausing before the next provisioner . Press enter to continue. \r\n" in mine.out


def test_on_error_ask_retry_and_abort_on_a_terminal(tmp_path: Path) -> None:
    mine, theirs = interactive_both(
        tmp_path, failing_template(), ["x", "r", "a"], "-on-error=ask", "-color=false"
    )
    assert mine.out == theirs.out
    assert mine.rc == theirs.rc == 1
    assert '==> b: Incorrect input: "x"\r\n' in mine.out

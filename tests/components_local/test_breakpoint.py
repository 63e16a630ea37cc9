"""The breakpoint provisioner, on a terminal and without one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from engine.clirun import base_env, run_interactive
from fixtures.packer import imagesmith

NULL = {"type": "null", "communicator": "none"}
AFTER = {"type": "shell-local", "inline": ["echo after"]}


def write(tmp_path: Path, *provisioners: dict[str, Any]) -> None:
    template = {"builders": [NULL], "provisioners": [*provisioners, AFTER]}
    (tmp_path / "t.json").write_text(json.dumps(template))


def test_disabled_breakpoints_say_so_and_continue(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"type": "breakpoint", "note": "n1", "disable": True},
        {"type": "breakpoint", "disable": True},
    )
    result = imagesmith("build", "-color=false", "t.json", cwd=tmp_path)
    assert result.rc == 0
    assert result.out.splitlines()[:2] == [
        '==> null: Breakpoint provisioner with note "n1" disabled; continuing...',
        "==> null: Breakpoint provisioner disabled; continuing...",
    ]
    assert "    null: after" in result.out


def no_tty_build(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A new session has no controlling terminal, whatever the test runner has.
    return subprocess.run(
        [sys.executable, "-m", "imagesmith", "build", *args, "t.json"],
        cwd=tmp_path,
        env=base_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=60,
    )


def test_without_a_terminal_the_build_fails(tmp_path: Path) -> None:
    write(tmp_path, {"type": "breakpoint", "note": "hello"})
    proc = no_tty_build(tmp_path, "-color=false")
    assert proc.returncode == 1
    assert proc.stdout.startswith(
        '==> null: Pausing at breakpoint provisioner with note "hello".\n'
    )
    assert "--> null: Error asking for input: no available tty\n" in proc.stdout
    assert "    null: after" not in proc.stdout


def test_machine_readable_cannot_ask(tmp_path: Path) -> None:
    write(tmp_path, {"type": "breakpoint"})
    proc = no_tty_build(tmp_path, "-machine-readable")
    assert proc.returncode == 1
    assert ",null,error,Error asking for input: machine-readable UI can't ask\n" in proc.stdout


def test_on_a_terminal_it_waits_for_enter(tmp_path: Path) -> None:
    write(tmp_path, {"type": "breakpoint"})
    cmd = [sys.executable, "-m", "imagesmith", "build", "-color=false", "t.json"]
    result = run_interactive(cmd, tmp_path, ["anything"])
    out = result.out.replace("\r\n", "\n")
    assert result.rc == 0, out
    assert "==> null: Pausing at breakpoint provisioner.\n" in out
    assert "==> null: Press enter to continue. anything\n" in out
    assert out.index("continue.") < out.index("    null: after")

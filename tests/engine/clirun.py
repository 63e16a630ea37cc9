"""Running `imagesmith build` and `packer build` as subprocesses, and comparing output."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent.parent
PACKER = shutil.which("packer")
needs_packer = pytest.mark.skipif(PACKER is None, reason="packer 1.6.6 is not installed")

_UNITS = r"(?:year|week|day|hour|minute|second|millisecond|microsecond)s?"
_DURATION = re.compile(rf"\d+ {_UNITS}(?: \d+ {_UNITS})?")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)")
_UNIX_TS = re.compile(r"^\d{10},", re.M)
_SHELL_TEMP = re.compile(r"/tmp/(?:[\w.-]+/)*packer-shell\d+(?:\.\w+)?")


def normalise(text: str, *, tmp: Path | None = None) -> str:
    """Replace what differs between runs: durations, times, temp script paths."""
    text = _DURATION.sub("<d>", text)
    text = _RFC3339.sub("<time>", text)
    text = _UNIX_TS.sub("<ts>,", text)
    text = _SHELL_TEMP.sub("<script>", text)
    if tmp is not None:
        text = text.replace(str(tmp), "<tmp>")
    return text


def sort_summary(text: str) -> str:
    """Packer lists errors and artifacts in Go's random map order; imagesmith sorts
    them by build name. Sort each run of ``--> <build>: ...`` lines the same way
    (stable, so one build's artifacts keep their order)."""
    lines = text.split("\n")
    out: list[str] = []
    run: list[str] = []
    for line in [*lines, ""]:
        if line.startswith("--> "):
            run.append(line)
            continue
        out.extend(sorted(run, key=lambda item: item[4:].split(":", 1)[0]))
        run = []
        out.append(line)
    return "\n".join(out[:-1])


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACKER_")}
    env["CHECKPOINT_DISABLE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def imagesmith_cmd(*args: str, doubles: bool = False) -> list[str]:
    if doubles:
        return [sys.executable, "-m", "engine.cli_doubles", "build", *args]
    return [sys.executable, "-m", "imagesmith", "build", *args]


@dataclass
class Result:
    rc: int
    out: str
    err: str


def run(cmd: list[str], cwd: Path, *, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=env or base_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        start_new_session=True,  # no controlling terminal: prompts must not block
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_template(directory: Path, template: dict[str, Any], name: str = "t.json") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(template, indent=2))
    return path


def both(
    tmp_path: Path, template: dict[str, Any], *args: str, env: dict[str, str] | None = None
) -> tuple[Result, Result]:
    """Run imagesmith and packer on the same template, each in its own directory.

    ``template`` may use ``{dir}``, replaced by each tool's own directory, so outputs
    land apart and normalise the same way.
    """
    results = []
    for tool in ("imagesmith", "packer"):
        work = tmp_path / tool
        text = json.dumps(template).replace("{dir}", str(work))
        write_template(work, json.loads(text))
        cmd = (
            imagesmith_cmd(*args, "t.json")
            if tool == "imagesmith"
            else [
                str(PACKER),
                "build",
                *args,
                "t.json",
            ]
        )
        result = run(cmd, work, env=env)
        result.out = sort_summary(normalise(result.out, tmp=work))
        results.append(result)
    return results[0], results[1]


class Live:
    """A build running in its own process group, read line by line as it prints."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env or base_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []

    def wait_for(self, fragment: str, timeout: float = 60) -> None:
        """Read output until a line containing ``fragment`` (fails on EOF or timeout)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                pytest.fail(f"process ended before {fragment!r}: {''.join(self.lines)}")
            self.lines.append(line)
            if fragment in line:
                return
        pytest.fail(f"no {fragment!r} within {timeout}s: {''.join(self.lines)}")

    def signal_group(self, sig: signal.Signals) -> None:
        os.killpg(self.proc.pid, sig)

    def signal_process(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 60) -> Result:
        out, err = self.proc.communicate(timeout=timeout)
        return Result(self.proc.returncode, "".join(self.lines) + out, err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def run_interactive(
    cmd: list[str], cwd: Path, answers: list[str], *, env: dict[str, str] | None = None
) -> Result:
    """Run ``cmd`` on a new pseudo-terminal that is its controlling terminal.

    Each time the program waits at a prompt (output ending in ``? `` or
    ``continue. ``), the next of ``answers`` is typed followed by Enter.
    """
    import fcntl
    import pty
    import select
    import termios

    leader, follower = pty.openpty()

    def make_controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env or base_env(),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        preexec_fn=make_controlling_terminal,
    )
    os.close(follower)
    pending = list(answers)
    output = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO once the program closed the terminal
                break
            if not data:
                break
            output += data
            if output.endswith((b"? ", b"continue. ")):
                os.write(leader, ((pending.pop(0) if pending else "") + "\r").encode())
        else:
            pytest.fail(f"no end within 60 s: {output.decode(errors='replace')}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(leader)
    return Result(proc.returncode, output.decode(errors="replace"), "")

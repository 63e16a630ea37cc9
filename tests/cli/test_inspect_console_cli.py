"""``inspect`` and ``console`` against packer 1.6.6, and what imagesmith does beyond it.

Packer prints some things in random (Go map) order: the required variables of
``inspect``, and everything ``variables`` lists in ``console``. The templates here
avoid those cases in differential tests; imagesmith sorts them.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fixtures.packer import Differential, clean_env, imagesmith, needs_packer, normalise

FULL = {
    "description": "My description\nsecond line",
    "variables": {"zeta": "visible", "pw": "s3cr3t", "req": None, "a_long_name": "x", "emp": ""},
    "sensitive-variables": ["pw", "undeclared"],
    "builders": [
        {"type": "null", "communicator": "none"},
        {"type": "file", "name": "ff", "target": "x"},
        {"type": "null", "name": "{{user `zeta`}}-x"},
    ],
    "provisioners": [
        {"type": "shell-local", "inline": ["x"]},
        {"type": "file", "source": "a", "destination": "b"},
    ],
    "post-processors": ["manifest"],
}


def write(path: Path, doc: Any) -> None:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))


@needs_packer
@pytest.mark.packer
@pytest.mark.parametrize(
    "doc",
    [FULL, {"builders": []}, {"builders": [{"type": "null"}], "variables": {"only": "one"}}, "{"],
    ids=["full", "empty", "one-variable", "parse-error"],
)
@pytest.mark.parametrize("mode", [[], ["-machine-readable"]], ids=["human", "machine"])
def test_inspect_matches_packer(
    doc: Any, mode: list[str], tmp_path: Path, differential: Differential
) -> None:
    write(tmp_path / "t.json", doc)
    ref, ours = differential("inspect", *mode, "t.json")
    assert (ours.rc, normalise(ours.out)) == (ref.rc, normalise(ref.out))


@needs_packer
@pytest.mark.packer
def test_inspect_without_a_template_shows_the_builtin_one(differential: Differential) -> None:
    for args in ([], ["a.json", "b.json"]):
        ref, ours = differential("inspect", *args)
        assert (ours.rc, ours.out) == (ref.rc, ref.out)


def test_inspect_masks_defaults_equal_to_a_sensitive_default(tmp_path: Path) -> None:
    write(
        tmp_path / "t.json",
        {**FULL, "variables": {"pw": "s3cr3t", "other": "s3cr3t", "req": None, "b": "x"}},
    )
    out = imagesmith("inspect", "t.json", cwd=tmp_path).out
    assert "  other = <sensitive>\n" in out and "  pw    = <sensitive>\n" in out
    assert "  b     = x\n" in out
    assert "Required variables:\n\n  req\n\n" in out


CONSOLE_TEMPLATE = {
    "variables": {"b": "{{user `a`}}-b", "a": "A", "pw": "s3cr3t", "d": "{{template_dir}}"},
    "sensitive-variables": ["pw"],
    "builders": [{"type": "null", "communicator": "none"}],
}


@needs_packer
@pytest.mark.packer
@pytest.mark.parametrize(
    "lines",
    [
        "{{user `a`}}|{{user `b`}}",
        "{{upper `x`}}\n{{user `pw`}}",
        "help",
        "{{nope}}",
        "{{build_name}}\n{{upper `x`}}",
        "{{user `d`}}",
        "{{template_dir}}",
        "{{ .Foo }}",
        "{{env `HOME`}}",
        "{{packer_version}}",
        "{{build `ID`}}",
        " {{upper `x`}} \n\n",
        "exit\n{{upper `x`}}",
        "{{split `a-b` `-` 5}}",
    ],
)
@pytest.mark.parametrize("with_template", [True, False], ids=["template", "builtin"])
def test_console_piped_matches_packer(
    lines: str, with_template: bool, tmp_path: Path, differential: Differential
) -> None:
    write(tmp_path / "t.json", CONSOLE_TEMPLATE)
    args = ["-var", "a=Z", "t.json"] if with_template else []
    ref, ours = differential("console", *args, stdin=lines + "\n")
    assert (ours.rc, ours.out) == (ref.rc, ref.out)


def test_console_variables_are_listed_sorted(tmp_path: Path) -> None:
    write(tmp_path / "t.json", CONSOLE_TEMPLATE)
    out = imagesmith("console", "-var", "x=1", "t.json", cwd=tmp_path, stdin="variables\n").out
    assert out == f"\na: A,\nb: A-b,\nd: {tmp_path},\npw: <sensitive>,\nx: 1,\n\n"


def test_console_warns_when_the_variables_cannot_be_initialized(tmp_path: Path) -> None:
    # Packer evaluates silently with no variables; imagesmith says why first.
    write(
        tmp_path / "t.json", {"variables": {"req": None, "a": "A"}, "builders": [{"type": "null"}]}
    )
    result = imagesmith("console", "t.json", cwd=tmp_path, stdin="{{user `a`}}\n")
    assert result.rc == 0
    assert result.out.startswith("Warning: The template's variables are not available\n\n")
    assert "required variable not set: req (t.json line 3)" in result.out
    assert result.out.endswith("\n\n")


def test_console_reports_template_errors(tmp_path: Path) -> None:
    write(tmp_path / "t.json", "{")
    result = imagesmith("console", "t.json", cwd=tmp_path, stdin="x\n")
    assert result.rc == 1 and result.out.startswith("Failed to parse template: Error parsing JSON")


def _read_until(fd: int, needle: bytes, timeout: float = 20.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {needle!r}; got {data!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def test_console_on_a_terminal_answers_each_line(tmp_path: Path) -> None:
    write(tmp_path / "t.json", CONSOLE_TEMPLATE)
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagesmith", "console", "t.json"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=child,
        stdout=child,
        stderr=child,
        close_fds=True,
    )
    os.close(child)
    try:
        _read_until(main, b"> ")
        os.write(main, b"{{user `b`}}\n")
        assert b"A-b" in _read_until(main, b"> ")
        os.write(main, b"{{nope}}\n")
        assert b"Interpolation error" in _read_until(main, b"> ")
        os.write(main, b"exit\n")
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)

"""The shell provisioner's temporary scripts in a container: run and removed in one exec.

Each command through the docker communicator is a process started by the container
runtime, so the provisioner folds its ``rm`` into the command that runs the script.
``then_remove`` is checked with the real ``/bin/sh``; the builds check what a user
sees and what is left in the image.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import run_build

from imagesmith.provisioners.shell import then_remove

MARKER = "imagesmith-rm-failed-test"


def run_folded(tmp_path: Path, command: str, valid: list[int]) -> tuple[int, str, Path]:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\n")
    env_file = tmp_path / "vars.sh"
    env_file.write_text("")
    folded = then_remove(command, [str(script), str(env_file)], valid, MARKER)
    done = subprocess.run(["/bin/sh", "-c", folded], capture_output=True, text=True)
    return done.returncode, done.stdout, script


def test_a_valid_status_removes_the_files_and_is_the_exit_status(tmp_path: Path) -> None:
    rc, out, script = run_folded(tmp_path, 'echo "it\'s" $((1+1)); exit 3', [0, 3])
    assert (rc, out) == (3, "it's 2\n")
    assert not script.exists() and not (tmp_path / "vars.sh").exists()


def test_an_invalid_status_leaves_the_files_as_packer_does(tmp_path: Path) -> None:
    rc, out, script = run_folded(tmp_path, "exit 1", [0])
    assert (rc, out) == (1, "")
    assert script.exists()


def test_the_command_runs_as_its_own_shell(tmp_path: Path) -> None:
    # "exit" and "exec" in the user's command end its own shell, not the removal.
    rc, _, script = run_folded(tmp_path, "exec true", [0])
    assert rc == 0 and not script.exists()


def test_a_failed_removal_prints_the_marker(tmp_path: Path) -> None:
    command = f"rm {tmp_path}/script.sh; mkdir {tmp_path}/script.sh"
    rc, out, _ = run_folded(tmp_path, command, [0])
    assert rc == 0
    assert out.splitlines()[-1] == MARKER


@pytest.mark.docker
def test_scripts_are_run_and_removed_with_one_exec_each(
    docker_client: Any, busybox_image: str, tmp_path: Path
) -> None:
    for name in ("one", "two"):
        (tmp_path / f"{name}.sh").write_text(f"#!/bin/sh\necho {name} $GREETING\n")
    template_steps: list[dict[str, Any]] = [
        {"type": "shell", "scripts": [str(tmp_path / "one.sh"), str(tmp_path / "two.sh")],
         "environment_vars": ["GREETING=hello"], "use_env_var_file": True},
        {"type": "shell", "inline": ["exit 3"], "valid_exit_codes": [3]},
        {"type": "shell", "inline": ["ls -a /tmp"], "remote_path": "/last.sh"},
    ]  # fmt: skip
    since = int(time.time())
    out = run_build(
        {"image": busybox_image, "pull": False, "commit": True,
         "run_command": ["-d", "-i", "-t", "--network", "none", "--entrypoint=/bin/sh",
                         "--", "{{.Image}}"]},
        workdir=tmp_path, raw_provisioners=template_steps,
    )  # fmt: skip
    assert out.rc == 0, out.output
    assert "    docker: one hello" in out.lines and "    docker: two hello" in out.lines
    last = max(i for i, ln in enumerate(out.lines) if "Provisioning with shell script" in ln)
    listing = out.lines[last + 1 : out.lines.index("==> docker: Committing the container")]
    left = [ln.split(": ", 1)[1] for ln in listing if ln.startswith("    docker: ")]
    assert "." in left and ".." in left, listing
    assert not [f for f in left if f.startswith(("script_", "varfile_"))], left
    assert not any(MARKER.split("-test")[0] in line for line in out.lines)
    events = docker_client.events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"container": out.container_id, "event": "exec_create"},
    )  # fmt: skip
    # Four scripts, one exec each (the env file is uploaded, not written by a command).
    assert len(list(events)) == 4
    docker_client.remove_image(out.image_id)


@pytest.mark.docker
def test_a_script_that_cannot_be_removed_fails_the_provisioner(
    busybox_image: str, tmp_path: Path
) -> None:
    out = run_build(
        {"image": busybox_image, "pull": False, "discard": True},
        ['rm "$0"; mkdir "$0"'],
        workdir=tmp_path,
    )
    assert out.rc == 1, out.output
    assert any(
        ln.startswith("Build 'docker' errored after")
        and "Error removing temporary script at /tmp/script_" in ln
        for ln in out.lines
    ), out.output
    assert "imagesmith-rm-failed" not in out.output

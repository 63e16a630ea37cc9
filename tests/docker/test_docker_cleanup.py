"""A build killed with SIGKILL cannot remove its container; ``imagesmith cleanup`` does,
from the run's journal, or by the container's name when the journal is gone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import (
    cli_env,
    containers_of,
    free_port,
    interrupt,
    read_until,
    run_build,
    start_build,
)

pytestmark = pytest.mark.docker

NAME = re.compile(r"imagesmith-[0-9a-f]{12}-[0-9a-f]{8}")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A state folder of the test's own, and no AWS configuration, so that cleanup only
    has the docker daemon to look at."""
    state = tmp_path / "state"
    env = {k: v for k, v in cli_env(IMAGESMITH_STATE_DIR=str(state)).items()
           if not k.startswith("AWS_")}  # fmt: skip
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    return env


def journals(env: dict[str, str]) -> list[Path]:
    return sorted((Path(env["IMAGESMITH_STATE_DIR"]) / "journal").glob("*.jsonl"))


def cleanup(env: dict[str, str], *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "imagesmith", "cleanup", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout


@pytest.fixture
def killed(image: str, tmp_path: Path, env: dict[str, str], docker_client: Any) -> Iterator[str]:
    """A build killed with SIGKILL while provisioning: its container's name."""
    proc = start_build({"image": image, "pull": False, "commit": True},
                       ["echo started", "sleep 600"], workdir=tmp_path, env=env)  # fmt: skip
    read_until(proc, "started")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (container,) = containers_of(docker_client, image)
    name = container["Names"][0].lstrip("/")
    assert NAME.fullmatch(name), name
    yield name


def test_a_finished_build_leaves_no_journal(busybox_image: str, env: dict[str, str]) -> None:
    out = run_build({"image": busybox_image, "pull": False, "discard": True}, ["true"], env=env)
    assert out.rc == 0, out.output
    assert journals(env) == []


def test_cleanup_removes_the_container_of_a_killed_build(
    killed: str, image: str, env: dict[str, str], docker_client: Any
) -> None:
    (journal,) = journals(env)
    run_id = journal.stem
    assert killed in journal.read_text()

    rc, out = cleanup(env, "-dry-run")
    assert rc == 0, out
    label = f"docker-container {killed} on unix:///var/run/docker.sock (run {run_id})"
    assert "Would remove 1 resource(s):" in out and f"  {label}" in out, out
    assert len(containers_of(docker_client, image)) == 1

    rc, out = cleanup(env)
    assert rc == 0, out
    assert f"Removed {label}" in out and "Removed 1 resource(s)." in out, out
    assert containers_of(docker_client, image) == []
    assert journals(env) == []

    rc, out = cleanup(env)
    assert rc == 0 and "Nothing to clean up." in out, out


def test_without_the_journal_the_container_is_found_by_name_and_needs_force(
    killed: str, image: str, env: dict[str, str], docker_client: Any
) -> None:
    (journal,) = journals(env)
    tag = journal.stem.replace("-", "")[:12]
    journal.unlink()

    rc, out = cleanup(env)
    assert rc == 0, out
    assert "1 resource(s) of runs this machine has no journal of" in out, out
    assert f"  docker-container {killed} on unix:///var/run/docker.sock (run {tag})" in out
    assert len(containers_of(docker_client, image)) == 1

    rc, out = cleanup(env, "-force", f"-run-id={journal.stem}")
    assert rc == 0, out
    assert "Removed 1 resource(s)." in out, out
    assert containers_of(docker_client, image) == []


def test_cleanup_leaves_a_running_build_alone(
    image: str, tmp_path: Path, env: dict[str, str], docker_client: Any
) -> None:
    proc = start_build({"image": image, "pull": False, "commit": True},
                       ["echo started", "sleep 600"], workdir=tmp_path, env=env)  # fmt: skip
    try:
        read_until(proc, "started")
        rc, out = cleanup(env, "-force")
        assert rc == 0, out
        assert "is still running: its resources are left alone." in out, out
        assert "Nothing to clean up." in out, out
        assert len(containers_of(docker_client, image)) == 1
    finally:
        interrupt(proc, signal.SIGINT)
    assert containers_of(docker_client, image) == []
    assert journals(env) == []


def test_cleanup_says_when_the_daemon_cannot_be_searched(
    env: dict[str, str], tmp_path: Path
) -> None:
    port_free = f"tcp://127.0.0.1:{free_port()}"
    rc, out = cleanup({**env, "DOCKER_HOST": port_free})
    assert rc == 1
    assert (
        f"Could not search for containers: Cannot connect to the Docker daemon at {port_free} "
        "(connection refused)."
    ) in out, out
    assert "Nothing to clean up in the journal; the search did not complete." in out
    # A unix socket that is not there is a machine without a daemon: nothing to search.
    rc, out = cleanup({**env, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert rc == 0 and "Nothing to clean up." in out, out


def test_a_journal_that_cannot_be_written_stops_the_build_before_its_container(
    image: str, tmp_path: Path, env: dict[str, str], docker_client: Any
) -> None:
    state = tmp_path / "not-a-folder"
    state.write_text("")
    out = run_build({"image": image, "pull": False, "discard": True}, ["true"],
                    env={**env, "IMAGESMITH_STATE_DIR": str(state)})  # fmt: skip
    assert out.rc == 1
    assert (
        f"Cannot write the run's journal in {state}/journal (Not a directory); make the "
        "folder writable, or set IMAGESMITH_STATE_DIR to one that is."
    ) in out.output, out.output
    assert "Traceback" not in out.output
    assert containers_of(docker_client, image) == []

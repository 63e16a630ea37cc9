"""SIGINT and SIGTERM to ``imagesmith build``'s process group, as a terminal's Ctrl-C
(or a CI runner stopping a job) delivers them: the container is always removed.

Each test builds from an image of its own (``fresh_image``), so any container the
build made is found by its image, whatever its name and however early the signal came.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import containers_of, fresh_image, start_build

pytestmark = pytest.mark.docker

SIGNALS = pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])


@pytest.fixture
def image(docker_client: Any, busybox_image: str) -> Iterator[str]:
    tag = fresh_image(docker_client, busybox_image)
    yield tag
    for c in containers_of(docker_client, tag):  # only after a failure
        docker_client.remove_container(c["Id"], force=True)
    docker_client.remove_image(tag, force=True)


def read_until(proc: subprocess.Popen[str], text: str) -> list[str]:
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if text in line:
            return seen
    raise AssertionError(f"build ended before {text!r}:\n" + "\n".join(seen))


def interrupt(proc: subprocess.Popen[str], sig: signal.Signals) -> str:
    os.killpg(proc.pid, sig)
    try:
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return rest


@SIGNALS
def test_signal_during_provisioning_removes_the_container(
    docker_client: Any, image: str, tmp_path: Path, sig: signal.Signals
) -> None:
    proc = start_build({"image": image, "pull": False, "commit": True},
                       ["echo started", "sleep 600"], workdir=tmp_path)  # fmt: skip
    seen = read_until(proc, "started")
    assert len(containers_of(docker_client, image)) == 1, seen
    # The sleep outlasts interrupt()'s wait: the build only ends in time if the signal
    # cuts the running command short.
    rest = interrupt(proc, sig)
    output = "\n".join(seen) + "\n" + rest
    assert proc.returncode != 0, output
    assert "==> docker: Killing the container: " in output, output
    assert "Committing the container" not in output
    assert containers_of(docker_client, image) == [], output


@SIGNALS
@pytest.mark.parametrize("delay", [0.0, 0.03, 0.08, 0.15])
def test_signal_while_the_container_is_created_leaves_nothing(
    docker_client: Any, image: str, tmp_path: Path, sig: signal.Signals, delay: float
) -> None:
    proc = start_build({"image": image, "pull": False, "commit": True}, ["true"],
                       workdir=tmp_path)  # fmt: skip
    seen = read_until(proc, "Starting docker container...")
    time.sleep(delay)
    rest = interrupt(proc, sig)
    output = "\n".join(seen) + "\n" + rest
    assert containers_of(docker_client, image) == [], f"left behind after {delay}s:\n{output}"
    if proc.returncode == 0:
        # The build won the race; then it removed its container as usual.
        assert "Killing the container" in output, output

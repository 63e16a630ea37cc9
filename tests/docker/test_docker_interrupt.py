"""SIGINT and SIGTERM to ``imagesmith build``'s process group, as a terminal's Ctrl-C
(or a CI runner stopping a job) delivers them: the container is always removed.

Each test builds from an image of its own (``fresh_image``), so any container the
build made is found by its image, whatever its name and however early the signal came.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import containers_of, interrupt, read_until, start_build

pytestmark = pytest.mark.docker

SIGNALS = pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])


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

"""SIGINT and SIGTERM during a docker build: the container is always removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.docker

HERE = Path(__file__).parent


def containers(client: Any, run_uuid: str) -> list[Any]:
    prefix = "imagesmith-" + run_uuid.replace("-", "")[:12]
    return client.containers(all=True, filters={"name": prefix})


def start_build(run_uuid: str, image: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parent)]))
    return subprocess.Popen(
        [sys.executable, str(HERE / "interrupt_driver.py"), run_uuid, image,
         "echo started; sleep 60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip


def wait_for(proc: subprocess.Popen[str], text: str) -> list[str]:
    seen: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if text in line:
            return seen
    raise AssertionError("build ended before '" + text + "':\n" + "\n".join(seen))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_provisioning_removes_the_container(
    docker_client: Any, busybox_image: str, sig: signal.Signals
) -> None:
    run_uuid = str(uuid.uuid4())
    proc = start_build(run_uuid, busybox_image)
    try:
        wait_for(proc, "started")
        assert len(containers(docker_client, run_uuid)) == 1
        start = time.monotonic()
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=30)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "Killing the container" in rest, rest
    assert containers(docker_client, run_uuid) == []
    assert elapsed < 20, rest


def test_signal_while_the_container_starts_leaves_nothing(
    docker_client: Any, busybox_image: str
) -> None:
    for delay in (0.3, 0.5, 0.7):
        run_uuid = str(uuid.uuid4())
        proc = start_build(run_uuid, busybox_image)
        try:
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert containers(docker_client, run_uuid) == [], f"left behind after {delay}s"

"""Fixtures of the amazon tests: a seed project wired to moto (through the fault
proxy) and to the OpenSSH server that accepts the build's temporary key."""

from __future__ import annotations

from pathlib import Path

import pytest

from amazon.harness import Leftovers, Project, leftovers, make_project
from fixtures.moto import FaultProxy, MotoServer
from fixtures.sshd import SshServer


@pytest.fixture
def project(
    tmp_path: Path, sshd_any_key: SshServer, remote_dir: Path, aws_proxy: FaultProxy
) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    return make_project(root, ssh_port=sshd_any_key.port, remote_dir=str(remote_dir))


@pytest.fixture
def baseline(moto: MotoServer, aws_proxy: FaultProxy) -> Leftovers:
    """What the emulator holds before the test's build (moto's own public images and
    snapshots), for ``leftovers(..., baseline=baseline)``."""
    return leftovers(moto, regions=("us-east-1", "us-west-2"))

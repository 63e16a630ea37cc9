"""Fixtures of the amazon tests: a seed project wired to moto (through the fault
proxy) and to the OpenSSH server that accepts the build's temporary key."""

from __future__ import annotations

import uuid
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
    project = make_project(root, ssh_port=sshd_any_key.port, remote_dir=str(remote_dir))
    # A name of its own: the emulator is shared by the tests of a session.
    project.template["builders"][0]["ami_name"] = f"imagesmith-test {uuid.uuid4().hex[:12]}"
    return project


@pytest.fixture
def emulator(moto_server: MotoServer) -> MotoServer:
    """The session's moto server, as it is (not reset: resetting costs a second)."""
    return moto_server


@pytest.fixture
def baseline(emulator: MotoServer, aws_proxy: FaultProxy) -> Leftovers:
    """What the emulator holds before the test's build (moto's own public images and
    snapshots, what earlier tests made), for ``leftovers(..., baseline=baseline)``."""
    return leftovers(emulator, regions=("us-east-1", "us-west-2", "eu-west-1"))

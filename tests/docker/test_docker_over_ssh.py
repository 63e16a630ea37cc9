"""``DOCKER_HOST=ssh://...``: the daemon reached through OpenSSH and the remote
``docker system dial-stdio``, as the docker command reaches it.

The "remote" host is this machine: a private sshd on loopback, logged in to as a user
of the ``docker`` group, whose ``docker`` command dials the tests' daemon. The ``ssh``
the build finds on PATH is a wrapper that adds this test's client configuration (key,
known host), as a user's ``~/.ssh/config`` would.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import Upload, containers_of, interrupt, read_until, run_build, start_build

from fixtures.docker_engine import DOCKER_SOCK
from fixtures.sshd import DOCKER_SSH_USER, docker_over_ssh, free_port, have_sshd
from imagesmith.builders.docker.sshdial import SshDialer

pytestmark = pytest.mark.docker

REMOTE_USER = DOCKER_SSH_USER


@pytest.fixture(scope="module")
def ssh_docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of a build whose DOCKER_HOST is ``ssh://dockerbox``."""
    if not have_sshd():
        pytest.skip("needs root and OpenSSH's sshd")
    with docker_over_ssh(tmp_path_factory.mktemp("ssh-docker"), DOCKER_SOCK) as env:
        yield env


def test_a_build_through_an_ssh_docker_host(
    docker_client: Any, image: str, ssh_docker_host: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("over ssh\n")
    out = run_build(
        {"image": image, "pull": False, "commit": True, "changes": ["ENV VIA=ssh"]},
        ["echo remote $(id -u)", Upload("tree/", "/srv/tree"), "cat /srv/tree/a.txt"],
        workdir=tmp_path,
        env=ssh_docker_host,
    )
    assert out.rc == 0, out.output
    assert "    docker: remote 0" in out.lines
    assert "    docker: over ssh" in out.lines
    inspected = docker_client.inspect_image(out.image_id)
    assert "VIA=ssh" in inspected["Config"]["Env"]
    assert containers_of(docker_client, image) == []
    docker_client.remove_image(out.image_id)


def test_interrupting_a_build_through_ssh_still_removes_the_container(
    docker_client: Any, image: str, ssh_docker_host: dict[str, str], tmp_path: Path
) -> None:
    proc = start_build({"image": image, "pull": False, "discard": True},
                       ["echo started", "sleep 600"], workdir=tmp_path,
                       env=ssh_docker_host)  # fmt: skip
    seen = read_until(proc, "started")
    # Ctrl-C reaches the build's whole process group; the ssh connections its cleanup
    # needs run in sessions of their own and survive it.
    rest = interrupt(proc, signal.SIGINT)
    output = "\n".join(seen) + "\n" + rest
    assert proc.returncode != 0, output
    assert "==> docker: Killing the container: " in output, output
    assert containers_of(docker_client, image) == [], output


def test_an_unreachable_ssh_host_is_reported_with_ssh_s_reason(
    ssh_docker_host: dict[str, str],
) -> None:
    port = free_port()
    env = {**ssh_docker_host, "DOCKER_HOST": f"ssh://{REMOTE_USER}@127.0.0.1:{port}"}
    started = time.monotonic()
    out = run_build({"image": "x", "pull": False, "commit": True}, env=env)
    assert out.rc == 1
    assert time.monotonic() - started < 30, out.output
    assert (
        f"Cannot connect to the Docker daemon at ssh://{REMOTE_USER}@127.0.0.1:{port} "
        f"(ssh exited with status 255: ssh: connect to host 127.0.0.1 port {port}: "
        "Connection refused). Check that "
        f"`ssh -l {REMOTE_USER} -p {port} 127.0.0.1 docker version` works from this machine"
    ) in out.output, out.output
    assert "Traceback" not in out.output


def test_a_host_without_the_docker_command_is_reported(
    ssh_docker_host: dict[str, str], tmp_path: Path
) -> None:
    # The remote shell finds no docker: PATH on the remote side comes from sshd, so
    # the wrapper runs the remote command through a shell that empties it.
    wrapper = tmp_path / "ssh"
    real = Path(ssh_docker_host["PATH"].split(":", 1)[0]) / "ssh"
    wrapper.write_text(
        "#!/bin/sh\n"
        '# swap the remote "docker" for a command the host does not have\n'
        'for a; do shift; [ "$a" = docker ] && a=docker-not-installed; set -- "$@" "$a"; done\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {**ssh_docker_host, "PATH": f"{tmp_path}:{ssh_docker_host['PATH']}"}
    out = run_build({"image": "x", "pull": False, "commit": True}, env=env)
    assert out.rc == 1
    expected = "Cannot connect to the Docker daemon at ssh://dockerbox (ssh exited with status 127:"
    assert expected in out.output, out.output
    assert "docker-not-installed" in out.output


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("ssh://", "no host name in the ssh:// address"),
        ("ssh://me@host/var/run/docker.sock", "an ssh:// address takes no path"),
        ("ssh://host:port", "the port of the ssh:// address is not a number"),
    ],
)
def test_ssh_addresses_the_docker_command_refuses_are_refused(address: str, reason: str) -> None:
    out = run_build({"image": "x", "commit": True}, env={"DOCKER_HOST": address})
    assert out.rc == 1
    assert f"Cannot use the Docker daemon at {address}: {reason}" in out.output, out.output


def test_the_ssh_command_line_matches_the_docker_command_s() -> None:
    argv = SshDialer("ssh://me@example.org:2222").argv
    assert argv[0] == "ssh"
    assert argv[-5:] == ["--", "example.org", "docker", "system", "dial-stdio"]
    assert argv[argv.index("-l") + 1] == "me"
    assert argv[argv.index("-p") + 1] == "2222"
    assert "ControlMaster=auto" in argv
    bare = SshDialer("ssh://example.org").argv
    assert "-l" not in bare and "-p" not in bare
    assert SshDialer("ssh://me@example.org:2222").check_command() == (
        "ssh -l me -p 2222 example.org docker version"
    )


def test_a_machine_without_ssh_is_told_to_install_it(tmp_path: Path) -> None:
    # An empty directory as the whole PATH: no ssh to be found.
    env = {"DOCKER_HOST": "ssh://me@example.org", "PATH": str(tmp_path)}
    out = run_build({"image": "x", "pull": False, "commit": True}, env=env)
    assert out.rc == 1
    assert (
        "Cannot connect to the Docker daemon at ssh://me@example.org (there is no ssh command "
        "on PATH: install OpenSSH's client)."
    ) in out.output, out.output

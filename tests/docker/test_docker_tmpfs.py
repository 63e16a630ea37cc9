"""Uploads and downloads on a tmpfs mount of the container (``--tmpfs``, ``tmpfs``):
the archive endpoint cannot see those, so the communicator streams through ``tar``."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import Upload, run_build

from imagesmith.builders.docker.client import connect
from imagesmith.builders.docker.steps import tmpfs_mounts
from imagesmith.communicators.docker import DockerCommunicator
from imagesmith.errors import CommunicatorError

pytestmark = pytest.mark.docker


def start(client: Any, image: str, user: str = "") -> str:
    cid = client.create_container(
        image, entrypoint=["/bin/sh"], stdin_open=True, tty=True, user=user or None,
        host_config=client.create_host_config(network_mode="none",
                                              tmpfs={"/scratch": "", "/run": "mode=755"}),
    )["Id"]  # fmt: skip
    client.start(cid)
    return str(cid)


@pytest.fixture(params=["busybox_image", "debian_image"], ids=["busybox-tar", "gnu-tar"])
def container(docker_client: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    cid = start(docker_client, request.getfixturevalue(request.param))
    yield cid
    docker_client.remove_container(cid, force=True)


def communicator(container: str, **kwargs: Any) -> DockerCommunicator:
    engine = connect()
    mounts = tmpfs_mounts(engine.inspect_container(container))
    assert mounts == ["/run", "/scratch"]
    return DockerCommunicator(engine, container, tmpfs_mounts=mounts, **kwargs)


def run(comm: DockerCommunicator, command: str) -> list[str]:
    out: list[str] = []
    err: list[str] = []
    code = asyncio.run(comm.run(command, on_stdout=out.append, on_stderr=err.append))
    assert code == 0, (out, err)
    return out


def test_files_and_trees_land_on_the_tmpfs(
    docker_client: Any, container: str, tmp_path: Path
) -> None:
    comm = communicator(container)
    run(comm, "mkdir -p /var && ln -s /run /var/run && mkdir /scratch/existing")
    f = tmp_path / "f.sh"
    f.write_text("#!/bin/sh\n")
    f.chmod(0o750)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a").write_text("a")
    asyncio.run(comm.upload("/scratch/f.sh", f))
    asyncio.run(comm.upload("/scratch/existing", f))  # into the directory, as cp would
    asyncio.run(comm.upload("/var/run/via-link", io.BytesIO(b"link"), size=4))
    asyncio.run(comm.upload_dir("/scratch/t", str(tree)))
    asyncio.run(comm.upload_dir("/scratch/contents", str(tree) + "/"))
    listing = run(comm, "cd /scratch && find . | sort && stat -c '%n %a %u:%g' f.sh "
                        "existing/f.sh t/tree/sub/a && cat /run/via-link")  # fmt: skip
    assert listing == [
        ".", "./contents", "./contents/sub", "./contents/sub/a", "./existing",
        "./existing/f.sh", "./f.sh", "./t", "./t/tree", "./t/tree/sub", "./t/tree/sub/a",
        "f.sh 750 0:0", "existing/f.sh 750 0:0", "t/tree/sub/a 644 0:0", "link",
    ]  # fmt: skip
    # Nothing went under the mount, into the container's own file system (which is
    # what the daemon's archive endpoint reads).
    stream, _ = docker_client.get_archive(container, "/scratch")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        assert tar.getnames() == ["scratch"]

    out = io.BytesIO()
    asyncio.run(comm.download("/run/via-link", out))
    assert out.getvalue() == b"link"
    asyncio.run(comm.download_dir("/scratch/t/", str(tmp_path / "back")))
    assert (tmp_path / "back" / "tree" / "sub" / "a").read_text() == "a"


def test_owner_is_the_container_users_on_the_tmpfs(
    docker_client: Any, busybox_image: str, tmp_path: Path
) -> None:
    cid = start(docker_client, busybox_image, user="nobody")
    try:
        comm = communicator(cid, container_user="nobody")
        (tmp_path / "f").write_text("x")
        asyncio.run(comm.upload("/scratch/f", tmp_path / "f"))
        assert run(comm, "stat -c %u:%g /scratch/f") == ["65534:65534"]
    finally:
        docker_client.remove_container(cid, force=True)


def test_errors_on_the_tmpfs_are_clear(container: str, tmp_path: Path) -> None:
    comm = communicator(container)
    (tmp_path / "f").write_text("x")
    with pytest.raises(CommunicatorError, match="directory /scratch/missing does not exist"):
        asyncio.run(comm.upload("/scratch/missing/f", tmp_path / "f"))
    with pytest.raises(CommunicatorError, match="no such file in the container"):
        asyncio.run(comm.download("/scratch/absent", io.BytesIO()))


def test_an_image_without_tar_is_explained(
    docker_client: Any, debian_image: str, tmp_path: Path
) -> None:
    cid = start(docker_client, debian_image)
    try:
        comm = communicator(cid)
        run(comm, "rm -f /usr/bin/tar /bin/tar")
        (tmp_path / "f").write_text("x")
        with pytest.raises(CommunicatorError, match="the image has no tar"):
            asyncio.run(comm.upload("/scratch/f", tmp_path / "f"))
        # Elsewhere the daemon's archive endpoint needs no tar.
        asyncio.run(comm.upload("/tmp/f", tmp_path / "f"))
    finally:
        docker_client.remove_container(cid, force=True)


def test_a_template_with_tmpfs_uploads_into_it(busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("on tmpfs\n")
    out = run_build(
        {"image": busybox_image, "pull": False, "discard": True, "tmpfs": ["/scratch"]},
        [Upload("f.txt", "/scratch/f.txt"), "cat /scratch/f.txt"],
        workdir=tmp_path,
    )
    assert out.rc == 0, out.output
    assert "    docker: on tmpfs" in out.lines


def test_a_read_only_container_with_a_tmpfs_tmp_runs_scripts(busybox_image: str) -> None:
    """The shell provisioner's script goes to /tmp: on a tmpfs mount there, over a
    read-only root file system (docker mounts tmpfs noexec unless told ``exec``)."""
    run_command = ["-d", "-i", "-t", "--network", "none", "--read-only", "--tmpfs",
                   "/tmp:exec,mode=1777", "--entrypoint=/bin/sh", "--", "{{.Image}}"]  # fmt: skip
    out = run_build(
        {"image": busybox_image, "pull": False, "discard": True, "run_command": run_command},
        ["echo running from $0", "touch /x 2>/dev/null || echo read-only as asked"],
    )
    assert out.rc == 0, out.output
    assert "    docker: running from /tmp/script_" in out.output
    assert "    docker: read-only as asked" in out.lines

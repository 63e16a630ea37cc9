"""The docker communicator against a real container."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagesmith.builders.docker.client import Engine, connect
from imagesmith.communicators.docker import DockerCommunicator
from imagesmith.errors import CommunicatorError

pytestmark = pytest.mark.docker


def start(client: Any, image: str, user: str = "") -> str:
    cid = client.create_container(
        image, entrypoint=["/bin/sh"], stdin_open=True, tty=True, user=user or None,
        labels={"imagesmith.test": "communicator"},
        host_config=client.create_host_config(network_mode="none"),
    )["Id"]  # fmt: skip
    client.start(cid)
    return str(cid)


@pytest.fixture
def container(docker_client: Any, busybox_image: str) -> Iterator[str]:
    cid = start(docker_client, busybox_image)
    yield cid
    docker_client.remove_container(cid, force=True)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return connect()


@pytest.fixture
def comm(engine: Engine, container: str) -> DockerCommunicator:
    return DockerCommunicator(engine, container)


def run(comm: DockerCommunicator, command: str) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []
    code = asyncio.run(comm.run(command, on_stdout=out.append, on_stderr=err.append))
    return code, out, err


def test_run_streams_both_streams_and_returns_the_exit_code(comm: DockerCommunicator) -> None:
    code, out, err = run(
        comm, "echo one; echo two >&2; printf 'no newline\\r\\n'; printf last; exit 3"
    )
    assert code == 3
    assert out == ["one", "no newline", "last"]
    assert err == ["two"]


def test_exec_user_runs_commands_as_that_user(docker_client: Any, container: str) -> None:
    comm = DockerCommunicator(connect(), container, exec_user="nobody")
    assert run(comm, "id -u") == (0, ["65534"], [])


def test_upload_file_and_stream_with_modes(comm: DockerCommunicator, tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    asyncio.run(comm.upload("/tmp/s.sh", script))
    asyncio.run(comm.upload("/tmp/data", io.BytesIO(b"abc")))
    assert run(comm, "/tmp/s.sh && stat -c '%a %u:%g %s' /tmp/s.sh /tmp/data")[1] == [
        "ran", "755 0:0 19", "644 0:0 3",
    ]  # fmt: skip


def test_upload_into_an_existing_directory_keeps_the_name(
    comm: DockerCommunicator, tmp_path: Path
) -> None:
    f = tmp_path / "name.txt"
    f.write_text("x\n")
    asyncio.run(comm.upload("/tmp", f))
    assert run(comm, "cat /tmp/name.txt; test -d /tmp && echo dir")[1] == ["x", "dir"]


def test_upload_into_a_missing_directory_fails_at_once(
    comm: DockerCommunicator, tmp_path: Path
) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(CommunicatorError, match="directory /nope does not exist in the container"):
        asyncio.run(comm.upload("/nope/f", f))


def test_upload_dir_trailing_slash_rule(comm: DockerCommunicator, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("1")
    (src / "g").write_text("2")
    asyncio.run(comm.upload_dir("/opt/a", str(src)))
    asyncio.run(comm.upload_dir("/opt/b", str(src) + "/"))
    _, out, _ = run(comm, "cd /opt && find a b | sort")
    assert out == ["a", "a/tree", "a/tree/g", "a/tree/sub", "a/tree/sub/f",
                   "b", "b/g", "b/sub", "b/sub/f"]  # fmt: skip


def test_fix_upload_owner_uses_the_container_users_ids(
    docker_client: Any, busybox_image: str, tmp_path: Path
) -> None:
    cid = start(docker_client, busybox_image, user="nobody")
    try:
        f = tmp_path / "f"
        f.write_text("x")
        (tmp_path / "d").mkdir()
        (tmp_path / "d" / "g").write_text("y")
        comm = DockerCommunicator(connect(), cid, container_user="nobody")
        asyncio.run(comm.upload("/tmp/f", f))
        asyncio.run(comm.upload_dir("/tmp/", str(tmp_path / "d")))
        assert run(comm, "stat -c %u:%g /tmp/f /tmp/d /tmp/d/g")[1] == ["65534:65534"] * 3
        off = DockerCommunicator(connect(), cid, container_user="nobody", fix_upload_owner=False)
        asyncio.run(off.upload("/tmp/f2", f))
        st = f.stat()
        assert run(comm, "stat -c %u:%g /tmp/f2")[1] == [f"{st.st_uid}:{st.st_gid}"]
    finally:
        docker_client.remove_container(cid, force=True)


def test_download_file_and_directory(comm: DockerCommunicator, tmp_path: Path) -> None:
    run(
        comm, "mkdir -p /srv/d/e && echo hi > /srv/d/e/f && echo top > /srv/d/t && ln -s d/t /srv/l"
    )
    buf = io.BytesIO()
    asyncio.run(comm.download("/srv/d/t", buf))
    assert buf.getvalue() == b"top\n"
    buf = io.BytesIO()
    asyncio.run(comm.download("/srv/l", buf))
    assert buf.getvalue() == b"top\n"
    asyncio.run(comm.download_dir("/srv/d", str(tmp_path / "one")))
    asyncio.run(comm.download_dir("/srv/d/", str(tmp_path / "two")))
    asyncio.run(comm.download_dir("/srv/d/*", str(tmp_path / "three")))
    assert (tmp_path / "one" / "d" / "e" / "f").read_text() == "hi\n"
    assert (tmp_path / "two" / "e" / "f").read_text() == "hi\n"
    assert sorted(os.listdir(tmp_path / "three")) == ["e", "t"]


def test_download_errors_are_clear(comm: DockerCommunicator, tmp_path: Path) -> None:
    with pytest.raises(CommunicatorError, match="no such file in the container"):
        asyncio.run(comm.download("/missing", io.BytesIO()))
    with pytest.raises(CommunicatorError, match="it is a directory"):
        asyncio.run(comm.download("/etc", io.BytesIO()))


def test_a_removed_container_is_reported(docker_client: Any, busybox_image: str) -> None:
    cid = start(docker_client, busybox_image)
    docker_client.remove_container(cid, force=True)
    with pytest.raises(CommunicatorError, match=f"container {cid[:12]} is gone"):
        run(DockerCommunicator(connect(), cid), "true")


def test_a_stopped_container_is_explained(docker_client: Any, busybox_image: str) -> None:
    cid = start(docker_client, busybox_image)
    try:
        comm = DockerCommunicator(connect(), cid)
        docker_client.kill(cid)  # its process ends, the container stays
        with pytest.raises(CommunicatorError, match=r"is no longer running \(its process exited"):
            run(comm, "true")
    finally:
        docker_client.remove_container(cid, force=True)


def test_image_without_a_shell_is_reported(docker_client: Any, tmp_path: Path) -> None:
    from fixtures.docker_engine import busybox_rootfs, image_exists, import_rootfs

    tag = "imagesmith-test/busybox-nosh:1"
    if not image_exists(docker_client, tag):
        import_rootfs(docker_client, busybox_rootfs(shell=False), tag)
    cid = docker_client.create_container(
        tag, entrypoint=["/bin/busybox", "sleep", "60"],
        host_config=docker_client.create_host_config(network_mode="none"),
    )["Id"]  # fmt: skip
    docker_client.start(cid)
    try:
        with pytest.raises(CommunicatorError, match="runs every command with /bin/sh"):
            run(DockerCommunicator(connect(), cid), "true")
    finally:
        docker_client.remove_container(cid, force=True)


@pytest.fixture(scope="module")
def notar_image(docker_client: Any, debian_image: str) -> str:
    """Debian without its ``tar``: directory uploads then go through the daemon. (A
    busybox shell always finds busybox's own ``tar``.)"""
    cid = docker_client.create_container(
        debian_image, entrypoint=["/bin/rm", "-f", "/usr/bin/tar", "/bin/tar"]
    )["Id"]
    try:
        docker_client.start(cid)
        docker_client.wait(cid)
        docker_client.commit(cid, repository="imagesmith-test/debian-notar", tag="1",
                             changes=['ENTRYPOINT ["/bin/sh"]'])  # fmt: skip
    finally:
        docker_client.remove_container(cid)
    return "imagesmith-test/debian-notar:1"


def _odd_tree(root: Path) -> None:
    deep = root / "deep" / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "long-named-file.txt").write_text("deep\n")
    (root / "empty").mkdir()
    (root / "with space é.txt").write_text("unicode\n")
    secret = root / "secret"
    secret.write_text("s\n")
    secret.chmod(0o600)
    tool = root / "tool.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (root / "link").symlink_to("tool.sh")
    os.utime(secret, (1_600_000_000, 1_600_000_000))
    # Old directory times, set last: an extractor that does not restore them after
    # filling a directory shows the time of the upload instead.
    for path in [*root.rglob("*"), root]:
        if path.is_dir() and not path.is_symlink():
            os.utime(path, (1_500_000_000, 1_500_000_000))


def _tree_in(engine: Engine, cid: str, path: str) -> list[tuple[Any, ...]]:
    """Every entry under ``path`` as the daemon reads it back: name, type, mode, owner,
    size, mtime (not a symlink's), link target, content."""
    data = b"".join(engine.get_archive(cid, path))
    out = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            content = f.read() if f else b""
            # busybox's tar leaves a symlink's own time at the upload's (as Packer's
            # cp -R did for every file); nothing reads it.
            mtime = None if m.issym() else int(m.mtime)
            out.append((m.name, m.type, m.mode, m.uid, m.gid, m.size, mtime,
                        m.linkname, content))  # fmt: skip
    return sorted(out)


@pytest.mark.parametrize("fix_owner", [True, False], ids=["fix-owner", "keep-owner"])
def test_tar_in_the_container_and_the_archive_endpoint_give_the_same_tree(
    docker_client: Any,
    busybox_image: str,
    debian_image: str,
    notar_image: str,
    engine: Engine,
    tmp_path: Path,
    fix_owner: bool,
) -> None:
    src = tmp_path / "tree"
    _odd_tree(src)
    seen = {}
    for image in (busybox_image, debian_image, notar_image):
        cid = start(docker_client, image)
        try:
            comm = DockerCommunicator(engine, cid, fix_upload_owner=fix_owner)
            asyncio.run(comm.upload_dir("/srv", str(src)))
            assert comm._has_tar is (image != notar_image)  # the path under test
            seen[image] = _tree_in(engine, cid, "/srv/tree")
        finally:
            docker_client.remove_container(cid, force=True)
    assert seen[busybox_image] == seen[notar_image]  # busybox's tar
    assert seen[debian_image] == seen[notar_image]  # GNU tar
    by_name = {entry[0]: entry for entry in seen[notar_image]}
    assert (
        by_name["tree/secret"][2] & 0o7777 == 0o600 and by_name["tree/secret"][6] == 1_600_000_000
    )
    assert by_name["tree/link"][7] == "tool.sh"
    assert by_name["tree/deep"][6] == 1_500_000_000
    assert len(by_name) == 10

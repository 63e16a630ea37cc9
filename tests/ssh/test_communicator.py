"""The SSH communicator against a real OpenSSH server: commands, transfers, errors,
reconnects, and every way of logging in."""

from __future__ import annotations

import io
import os
import shutil
import socket
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from fixtures.sshd import KeyPair, SshServer, SshUser, make_key_pair, sign_user_key
from imagesmith.communicators.base import DISCONNECTED_EXIT_STATUS, ConnectionLost
from imagesmith.communicators.ssh import SSHCommunicator
from imagesmith.communicators.sshconn import ConnectFailure
from imagesmith.errors import CommunicatorError
from ssh.conftest import connected, run, settings

pytestmark = pytest.mark.ssh


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def using(server: SshServer, key: KeyPair | None, action: Any, **options: Any) -> Any:
    """Connect, run ``action(comm)`` and close, all in one event loop."""

    async def go() -> Any:
        comm = await connected(server, key, **options)
        try:
            return await action(comm)
        finally:
            await comm.close()

    return run(go())


def collect(
    server: SshServer, key: KeyPair | None, command: str, **options: Any
) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []

    async def action(comm: SSHCommunicator) -> int:
        return await comm.run(command, on_stdout=out.append, on_stderr=err.append)

    return using(server, key, action, **options), out, err


# -- commands ---------------------------------------------------------------------------------


def test_run_streams_both_streams_and_returns_the_exit_status(
    sshd: SshServer, ssh_client_key: KeyPair
) -> None:
    status, out, err = collect(
        sshd, ssh_client_key, "echo one; echo two >&2; printf '10%%\\r100%%\\n'; echo 'x  '; exit 7"
    )
    assert status == 7
    assert out == ["one", "100%", "x"]
    assert err == ["two"]


def test_a_command_killed_by_a_signal_reports_128_plus_the_signal(
    sshd: SshServer, ssh_client_key: KeyPair
) -> None:
    status, _, _ = collect(sshd, ssh_client_key, "kill -KILL $$")
    assert status == 137


def test_ssh_pty_gives_the_command_a_terminal(sshd: SshServer, ssh_client_key: KeyPair) -> None:
    status, out, _ = collect(sshd, ssh_client_key, "tty", ssh_pty=True)
    assert status == 0 and out[0].startswith("/dev/pts/")
    status, out, _ = collect(sshd, ssh_client_key, "tty")
    assert status == 1 and out == ["not a tty"]


def test_a_dropped_connection_is_reported_then_reopened(
    sshd_factory: object, ssh_client_key: KeyPair
) -> None:
    server: SshServer = sshd_factory()  # type: ignore[operator]

    async def go() -> tuple[int, int]:
        comm = await connected(server, ssh_client_key)
        killer = threading.Timer(0.3, server.drop_connections)
        killer.start()
        first = await comm.run("sleep 5")
        second = await comm.run("true")
        await comm.close()
        return first, second

    assert run(go()) == (DISCONNECTED_EXIT_STATUS, 0)


def test_a_host_key_change_on_reconnect_is_an_error(
    sshd_factory: object, ssh_client_key: KeyPair
) -> None:
    server: SshServer = sshd_factory()  # type: ignore[operator]

    async def go() -> None:
        comm = await connected(server, ssh_client_key)
        try:
            server.restart(new_host_key=True)
            await comm.run("true")
        finally:
            await comm.close()

    with pytest.raises(
        CommunicatorError, match=r"host key of 127\.0\.0\.1:\d+ changed within this build"
    ):
        run(go())


def test_a_machine_that_stays_down_raises_connection_lost(
    sshd_factory: object, ssh_client_key: KeyPair
) -> None:
    server: SshServer = sshd_factory()  # type: ignore[operator]

    async def go() -> None:
        comm = await connected(server, ssh_client_key)
        server.stop()
        try:
            await comm.run("true")
        finally:
            await comm.close()

    with pytest.raises(ConnectionLost, match="refused the connection"):
        run(go())


# -- uploads ----------------------------------------------------------------------------------


def upload(server: SshServer, key: KeyPair, dst: str, src: Path | io.BytesIO, **kw: Any) -> None:
    using(server, key, lambda comm: comm.upload(dst, src, **kw))


def test_upload_keeps_the_local_mode_minus_the_umask_for_new_files(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, tmp_path: Path
) -> None:
    for name, local_mode, expected in (
        ("x", 0o755, 0o755),
        ("w", 0o777, 0o755),
        ("p", 0o600, 0o600),
    ):
        src = tmp_path / name
        src.write_bytes(b"data" * 1000)
        os.chmod(src, local_mode)
        upload(sshd, ssh_client_key, f"{remote_dir}/{name}", src)
        assert (remote_dir / name).read_bytes() == src.read_bytes()
        assert mode(remote_dir / name) == expected


def test_upload_over_an_existing_file_keeps_its_mode(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, tmp_path: Path, ssh_user: SshUser
) -> None:
    target = remote_dir / "existing"
    target.write_text("old contents that are longer")
    os.chown(target, ssh_user.uid, ssh_user.gid)
    os.chmod(target, 0o640)
    src = tmp_path / "new"
    src.write_text("new")
    os.chmod(src, 0o755)
    upload(sshd, ssh_client_key, str(target), src)
    assert target.read_text() == "new"
    assert mode(target) == 0o640


def test_upload_with_an_explicit_mode_and_from_a_stream(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path
) -> None:
    upload(
        sshd,
        ssh_client_key,
        f"{remote_dir}/s.sh",
        io.BytesIO(b"#!/bin/sh\n"),
        mode=0o755,
    )
    assert mode(remote_dir / "s.sh") == 0o755
    upload(sshd, ssh_client_key, f"{remote_dir}/plain", io.BytesIO(b"x"))
    assert mode(remote_dir / "plain") == 0o644


@pytest.mark.parametrize(
    ("dst", "message"),
    [
        ("{d}", "{d}: Is a directory"),
        ("{d}/missing/file", "{d}/missing/file: Directory nonexistent"),
    ],
)
def test_upload_errors_name_the_path(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, dst: str, message: str
) -> None:
    with pytest.raises(CommunicatorError) as e:
        upload(sshd, ssh_client_key, dst.format(d=remote_dir), io.BytesIO(b"x"))
    assert str(e.value) == message.format(d=remote_dir)


def test_upload_reports_a_full_disk_at_once(
    sshd: SshServer, ssh_client_key: KeyPair, tiny_disk: Path, tmp_path: Path
) -> None:
    src = tmp_path / "big"
    with open(src, "wb") as f:
        f.truncate(8 << 20)
    with pytest.raises(CommunicatorError, match="No space left on device"):
        upload(sshd, ssh_client_key, f"{tiny_disk}/big", src)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / "sub" / "deeper" / "c.sh").write_text("#!/bin/sh\n")
    os.chmod(root / "sub" / "deeper" / "c.sh", 0o755)
    os.chmod(root / "a.txt", 0o666)
    os.chmod(root / "sub", 0o750)
    os.symlink("a.txt", root / "link")
    return root


def listing(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = f"dir {mode(p):o}"
            else:
                out[rel] = f"{mode(p):o} {p.read_text()!r}"
    return out


def upload_dir(server: SshServer, key: KeyPair, dst: str, src: str, patch: Any = None) -> None:
    async def action(comm: SSHCommunicator) -> None:
        if patch is not None:
            patch(comm)
        await comm.upload_dir(dst, src)

    using(server, key, action)


EXPECTED_TREE = {
    "a.txt": "644 'a'",
    "empty": "dir 755",
    "link": "644 'a'",  # followed, with the mode Packer gives a linked file
    "sub": "dir 750",
    "sub/b.txt": "644 'b'",
    "sub/deeper": "dir 755",
    "sub/deeper/c.sh": "755 '#!/bin/sh\\n'",
}


def test_upload_dir_without_slash_copies_the_directory_itself(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, tree: Path
) -> None:
    upload_dir(sshd, ssh_client_key, str(remote_dir), str(tree))
    assert listing(remote_dir / "tree") == EXPECTED_TREE
    assert sorted(os.listdir(remote_dir)) == ["tree"]


def test_upload_dir_with_slash_copies_the_contents(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, tree: Path
) -> None:
    upload_dir(sshd, ssh_client_key, str(remote_dir) + "/", str(tree) + "/")
    assert listing(remote_dir) == EXPECTED_TREE
    # The destination directory itself is left as it was.
    assert mode(remote_dir) == 0o755


def test_upload_dir_to_a_missing_destination(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, tree: Path
) -> None:
    upload_dir(sshd, ssh_client_key, f"{remote_dir}/new", str(tree))
    assert listing(remote_dir / "new") == EXPECTED_TREE
    with pytest.raises(CommunicatorError, match="does not exist"):
        upload_dir(sshd, ssh_client_key, f"{remote_dir}/other", str(tree) + "/")
    assert not (remote_dir / "other").exists()


def test_upload_dir_keeps_modes_of_existing_directories(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, tree: Path, ssh_user: SshUser
) -> None:
    (remote_dir / "sub").mkdir(mode=0o777)
    os.chmod(remote_dir / "sub", 0o777)
    os.chown(remote_dir / "sub", ssh_user.uid, ssh_user.gid)
    upload_dir(sshd, ssh_client_key, str(remote_dir), str(tree) + "/")
    assert mode(remote_dir / "sub") == 0o777
    assert (remote_dir / "sub" / "b.txt").read_text() == "b"


def test_upload_dir_onto_a_file_fails(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, tree: Path
) -> None:
    (remote_dir / "f").write_text("x")
    with pytest.raises(CommunicatorError, match="is not a directory"):
        upload_dir(sshd, ssh_client_key, f"{remote_dir}/f", str(tree))


def test_upload_dir_falls_back_to_sftp_without_gnu_tar(
    sshd: SshServer,
    ssh_client_key: KeyPair,
    remote_dir: Path,
    tree: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A remote whose tar is not GNU tar: the probe's third line says so.
    def patch(comm: SSHCommunicator) -> None:
        original = comm._capture

        async def busybox_probe(command: str) -> tuple[int, bytes, bytes]:
            status, out, err = await original(command)
            return status, out.replace(b"GNU tar", b"BusyBox tar"), err

        monkeypatch.setattr(comm, "_capture", busybox_probe)

    upload_dir(sshd, ssh_client_key, str(remote_dir), str(tree), patch)
    assert listing(remote_dir / "tree") == EXPECTED_TREE


# -- downloads --------------------------------------------------------------------------------


def test_download_streams_a_file(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path
) -> None:
    payload = os.urandom(3 << 20)
    (remote_dir / "blob").write_bytes(payload)
    buf = io.BytesIO()
    seen: list[int] = []

    async def go() -> None:
        comm = await connected(sshd, ssh_client_key)
        try:
            await comm.download(f"{remote_dir}/blob", buf, progress=seen.append)
        finally:
            await comm.close()

    run(go())
    assert buf.getvalue() == payload
    assert sum(seen) == len(payload)


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing", "{p}: No such file or directory"), ("dir", "{p}: not a regular file")],
)
def test_download_errors(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, name: str, message: str
) -> None:
    (remote_dir / "dir").mkdir()
    path = f"{remote_dir}/{name}"

    async def go() -> None:
        comm = await connected(sshd, ssh_client_key)
        try:
            await comm.download(path, io.BytesIO())
        finally:
            await comm.close()

    with pytest.raises(CommunicatorError) as e:
        run(go())
    assert str(e.value) == message.format(p=path)


def test_download_dir_and_glob(
    ssh_user: SshUser,
    sshd: SshServer,
    ssh_client_key: KeyPair,
    remote_dir: Path,
    tree: Path,
    tmp_path: Path,
) -> None:
    shutil.copytree(tree, remote_dir / "tree", symlinks=True)
    subprocess.run(["chown", "-R", f"{ssh_user.uid}:{ssh_user.gid}", str(remote_dir)], check=True)

    async def go(src: str, dst: Path) -> None:
        comm = await connected(sshd, ssh_client_key)
        try:
            await comm.download_dir(src, str(dst))
        finally:
            await comm.close()

    run(go(f"{remote_dir}/tree/", tmp_path / "d1"))
    # Group and other write bits are dropped, as a umask of 022 drops them for scp.
    expected = {**listing(tree), "a.txt": "644 'a'"}
    assert listing(tmp_path / "d1" / "tree") == expected
    run(go(f"{remote_dir}/tree/*.txt", tmp_path / "d2"))
    assert listing(tmp_path / "d2") == {"a.txt": "644 'a'"}


# -- logging in -------------------------------------------------------------------------------


def test_password_login(sshd_password_only: SshServer) -> None:
    status, out, _ = collect(sshd_password_only, None, "echo $USER")
    assert (status, out) == (0, [sshd_password_only.user.name])


def test_rejected_credentials_are_an_auth_failure(
    sshd_password_only: SshServer, ssh_client_key: KeyPair
) -> None:
    with pytest.raises(ConnectFailure) as e:
        run(connected(sshd_password_only, ssh_client_key))
    assert e.value.kind == "auth"
    assert "rejected the credentials" in str(e.value)


def test_certificate_login(sshd: SshServer, ssh_user: SshUser, tmp_path: Path) -> None:
    key = make_key_pair(tmp_path, "certified")  # not in authorized_keys
    cert = sign_user_key(sshd.ca_key, key, ssh_user.name)  # type: ignore[attr-defined]
    with pytest.raises(ConnectFailure):
        run(connected(sshd, key))
    status, _, _ = collect(sshd, key, "true", ssh_certificate_file=str(cert))
    assert status == 0


@pytest.fixture
def agent(tmp_path: Path) -> object:
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    for _ in range(100):
        if sock.exists():
            break
        threading.Event().wait(0.02)
    yield sock
    proc.kill()
    proc.wait()


def ssh_add(agent: Path, key: Path, passphrase: str = "") -> None:
    askpass = key.parent / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho '{passphrase}'\n")
    askpass.chmod(0o700)
    env = {
        **os.environ,
        "SSH_AUTH_SOCK": str(agent),
        "SSH_ASKPASS": str(askpass),
        "SSH_ASKPASS_REQUIRE": "force",
    }
    subprocess.run(
        ["ssh-add", str(key)], env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL
    )


def test_agent_login(
    sshd: SshServer, ssh_client_key: KeyPair, agent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssh_add(agent, ssh_client_key.private)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent))
    command = "echo ${SSH_AUTH_SOCK:+forwarded}"
    status, out, _ = collect(sshd, None, command, ssh_password="", ssh_agent_auth=True)
    assert (status, out) == (0, ["forwarded"])


def test_agent_auth_without_an_agent_is_a_clear_error(
    sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(ConnectFailure, match="SSH_AUTH_SOCK is not"):
        settings(sshd, None, ssh_password="", ssh_agent_auth=True)


def test_an_encrypted_key_without_agent_or_terminal_says_what_to_do(
    sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setattr("imagesmith.communicators.sshconn._ask_passphrase", lambda path: None)
    key = make_key_pair(tmp_path, "locked", passphrase="secret")
    with pytest.raises(ConnectFailure) as e:
        settings(sshd, key)
    assert e.value.kind == "key"
    assert f"ssh-add {key.private}" in str(e.value) and "is encrypted" in str(e.value)


def test_an_encrypted_key_held_by_the_agent_is_used(
    sshd: SshServer, ssh_user: SshUser, agent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_key_pair(tmp_path, "locked", passphrase="secret")
    ssh_add(agent, key.private, "secret")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent))
    server = SshServer(ssh_user, authorized_keys=[key.public_text]).start()
    try:
        status, _, _ = collect(server, key, "true", ssh_agent_auth=True)
    finally:
        server.stop()
    assert status == 0


def test_bastion(sshd: SshServer, sshd_bastion: SshServer, ssh_client_key: KeyPair) -> None:
    status, out, _ = collect(
        sshd,
        ssh_client_key,
        "echo via bastion",
        ssh_bastion_host=sshd_bastion.host,
        ssh_bastion_port=sshd_bastion.port,
        ssh_bastion_username=sshd_bastion.user.name,
    )
    assert (status, out) == (0, ["via bastion"])
    assert "Accepted publickey" in sshd_bastion.log()


def test_socks_proxy(sshd: SshServer, sshd_bastion: SshServer, ssh_client_key: KeyPair) -> None:
    # OpenSSH's dynamic forwarding (ssh -D) is a real SOCKS5 server.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy = subprocess.Popen(
        ["ssh", "-N", "-D", f"127.0.0.1:{port}", "-i", str(ssh_client_key.private),
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes",
         "-p", str(sshd_bastion.port), f"{sshd_bastion.user.name}@{sshd_bastion.host}"],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                threading.Event().wait(0.02)
        status, out, _ = collect(
            sshd, ssh_client_key, "echo via proxy", ssh_proxy_host="127.0.0.1", ssh_proxy_port=port
        )
    finally:
        proxy.kill()
        proxy.wait()
    assert (status, out) == (0, ["via proxy"])


def test_local_and_remote_tunnels(sshd: SshServer, ssh_client_key: KeyPair) -> None:
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        local_port, remote_port = a.getsockname()[1], b.getsockname()[1]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    target_port = listener.getsockname()[1]

    def answer() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"hello through the tunnel\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()

    async def go() -> tuple[bytes, int, list[str]]:
        comm = await connected(
            sshd,
            ssh_client_key,
            ssh_local_tunnels=[f"{local_port}:127.0.0.1:{sshd.port}"],
            ssh_remote_tunnels=[f"{remote_port}:127.0.0.1:{target_port}"],
        )
        try:
            import asyncio

            reader, writer = await asyncio.open_connection("127.0.0.1", local_port)
            banner = await reader.readline()
            writer.close()
            out: list[str] = []
            py = (
                "import socket; "
                f"print(socket.create_connection(('127.0.0.1', {remote_port})).recv(100).decode())"
            )
            status = await comm.run(f'python3 -c "{py}"', on_stdout=out.append)
            return banner, status, out
        finally:
            await comm.close()

    banner, status, out = run(go())
    listener.close()
    assert banner.startswith(b"SSH-2.0-OpenSSH")
    assert (status, out[0]) == (0, "hello through the tunnel")

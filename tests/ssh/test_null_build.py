"""Null builds over SSH through the real engine: what a user sees and what lands on
the machine, for the shell and file provisioners and every failure the build must
end on quickly and clearly."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from fixtures.sshd import KeyPair, SshServer
from ssh.harness import run_null, ssh_config

pytestmark = pytest.mark.ssh

CONNECT = [
    "==> null: Using ssh communicator to connect: 127.0.0.1",
    "==> null: Waiting for SSH to become available...",
    "==> null: Connected to SSH!",
]


def body(lines: list[str]) -> list[str]:
    """The build's own lines, without the summary the runner prints."""
    return [ln for ln in lines if ln.startswith(("==> null:", "    null:"))]


def test_shell_inline_output_env_and_cleanup(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path
) -> None:
    out = run_null(
        ssh_config(sshd, ssh_client_key),
        [
            (
                "shell",
                {
                    "inline": [
                        'echo "$FOO|$PACKER_BUILD_NAME|$PACKER_BUILDER_TYPE"',
                        "echo on-stderr >&2",
                        "echo '{{build `User`}}@{{build `Host`}}:{{build `Port`}} "
                        "{{build `ConnType`}} {{build `ID`}}'",
                        f"ls {remote_dir} | wc -l",
                    ],
                    "environment_vars": ["FOO=it's"],
                    "remote_folder": str(remote_dir),
                },
            )
        ],
    )
    assert out.rc == 0, out.output
    lines = body(out.lines)
    assert lines[:3] == CONNECT
    assert lines[3].startswith("==> null: Provisioning with shell script: /tmp/packer-shell")
    assert "    null: it's|null|null" in lines
    assert "==> null: on-stderr" in lines
    assert f"    null: istest@127.0.0.1:{sshd.port} ssh Null" in lines
    assert "    null: 1" in lines  # the script itself, while it runs
    assert os.listdir(remote_dir) == []  # removed afterwards
    assert "--> null: Did not export anything. This is the null builder" in out.lines


def test_shell_scripts_share_one_remote_path_and_env_file(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, tmp_path: Path
) -> None:
    a = tmp_path / "a.sh"
    a.write_bytes(b'#!/bin/sh\r\necho "a $0 $FOO"\r\n')  # CRLF: converted unless binary
    b = tmp_path / "b.sh"
    b.write_text('#!/bin/sh\necho "b $0"\nls -l "$0" | cut -c1-10\n')
    out = run_null(
        ssh_config(sshd, ssh_client_key),
        [
            (
                "shell",
                {
                    "scripts": [str(a), str(b)],
                    "environment_vars": ["FOO=bar"],
                    "use_env_var_file": True,
                    "remote_path": f"{remote_dir}/run.sh",
                    "remote_folder": str(remote_dir),
                },
            )
        ],
    )
    assert out.rc == 0, out.output
    lines = body(out.lines)
    assert lines[3:] == [
        f"==> null: Provisioning with shell script: {a}",
        f"    null: a {remote_dir}/run.sh bar",
        f"==> null: Provisioning with shell script: {b}",
        f"    null: b {remote_dir}/run.sh",
        "    null: -rwxr-xr-x",
    ]
    assert os.listdir(remote_dir) == []  # script and env file both removed


def test_skip_clean_and_custom_execute_command(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path
) -> None:
    out = run_null(
        ssh_config(sshd, ssh_client_key),
        [
            (
                "shell",
                {
                    "inline": ["echo hi"],
                    "remote_path": f"{remote_dir}/kept.sh",
                    "skip_clean": True,
                    "environment_vars": ["A=1"],
                    "execute_command": (
                        "echo 'cmd: {{.Vars}}| {{.Path}} |{{.EnvVarFile}}|'; sh {{.Path}}"
                    ),
                },
            )
        ],
    )
    assert out.rc == 0, out.output
    assert (
        # The quotes of {{.Vars}} end the echo's own quoting, as they would in Packer.
        "    null: cmd: A=1 PACKER_BUILDER_TYPE=null PACKER_BUILD_NAME=null "
        f"| {remote_dir}/kept.sh ||" in out.lines
    )
    assert "    null: hi" in out.lines
    kept = remote_dir / "kept.sh"
    assert kept.read_text() == "#!/bin/sh -e\necho hi\n"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o755


def test_exit_codes(sshd: SshServer, ssh_client_key: KeyPair) -> None:
    ok = run_null(
        ssh_config(sshd, ssh_client_key),
        [("shell", {"inline": ["exit 3"], "valid_exit_codes": [0, 3]})],
    )
    assert ok.rc == 0, ok.output
    bad = run_null(
        ssh_config(sshd, ssh_client_key),
        [("shell", {"inline": ["exit 3"], "valid_exit_codes": [0, 4]})],
    )
    assert bad.rc == 1
    error = next(ln for ln in bad.lines if ln.startswith("Build 'null' errored"))
    assert (
        "Script exited with non-zero exit status: 3.Allowed exit codes are: [0 4] "
        "(the inline commands, run as /tmp/packer-shell" in error
    )


def test_pause_after_and_pause_before_connecting(sshd: SshServer, ssh_client_key: KeyPair) -> None:
    out = run_null(
        ssh_config(sshd, ssh_client_key, pause_before_connecting="100ms"),
        [("shell", {"inline": ["true"], "pause_after": "100ms"})],
    )
    assert out.rc == 0, out.output
    assert body(out.lines)[:6] == [
        *CONNECT,
        "==> null: Pausing 100ms before connecting...",
        *CONNECT[1:],
    ]
    assert "==> null: Pausing 100ms after this provisioner..." in out.lines


def test_expect_disconnect_survives_a_reboot(
    sshd_factory: object, ssh_client_key: KeyPair, remote_dir: Path
) -> None:
    server: SshServer = sshd_factory()  # type: ignore[operator]
    trigger = remote_dir / "reboot-now"
    server.restart_when(trigger, delay=1.0)
    out = run_null(
        ssh_config(server, ssh_client_key),
        [
            ("shell", {"inline": [f"touch {trigger}", "sleep 30"], "expect_disconnect": True}),
            ("shell", {"inline": ["echo back after the reboot"]}),
        ],
    )
    assert out.rc == 0, out.output
    assert "    null: back after the reboot" in out.lines


def test_an_unexpected_disconnect_fails_with_packers_hint(
    sshd_factory: object, ssh_client_key: KeyPair, remote_dir: Path
) -> None:
    server: SshServer = sshd_factory()  # type: ignore[operator]
    trigger = remote_dir / "reboot-now"
    server.restart_when(trigger)
    out = run_null(
        ssh_config(server, ssh_client_key),
        [("shell", {"inline": [f"touch {trigger}", "sleep 30"]})],
    )
    assert out.rc == 1
    assert any(
        "Script disconnected unexpectedly." in ln and "expect_disconnect" in ln for ln in out.lines
    )


def test_start_retry_timeout_bounds_the_wait_for_the_machine(
    sshd_factory: object, ssh_client_key: KeyPair, remote_dir: Path
) -> None:
    server: SshServer = sshd_factory()  # type: ignore[operator]
    trigger = remote_dir / "reboot-now"
    server.restart_when(trigger, delay=4.0)
    start = time.monotonic()
    out = run_null(
        ssh_config(server, ssh_client_key),
        [
            (
                "shell",
                {
                    "inline": [f"touch {trigger}", "sleep 30"],
                    "expect_disconnect": True,
                    "start_retry_timeout": "1s",
                },
            ),
        ],
    )
    # Removing the script after the "reboot" is retried for 1 s only.
    assert time.monotonic() - start < 4
    assert out.rc == 1
    message = errored(out)
    assert "Retryable error: Error removing temporary script at /tmp/script_" in message
    assert "refused the connection" in message


# -- file provisioner --------------------------------------------------------------------------


def test_file_upload_and_download(
    sshd: SshServer, ssh_client_key: KeyPair, remote_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "d" / "sub").mkdir(parents=True)
    (src / "d" / "sub" / "b.txt").write_text("b")
    (src / "f.txt").write_text("f")
    os.chmod(src / "f.txt", 0o751)
    dl = tmp_path / "dl"
    out = run_null(
        ssh_config(sshd, ssh_client_key),
        [
            ("file", {"source": str(src / "d"), "destination": f"{remote_dir}/"}),
            ("file", {"source": str(src / "d" / "sub") + "/", "destination": f"{remote_dir}/d"}),
            ("file", {"sources": [str(src / "f.txt")], "destination": f"{remote_dir}/"}),
            (
                "file",
                {"source": f"{remote_dir}/f.txt", "destination": f"{dl}/", "direction": "download"},
            ),
            (
                "file",
                {
                    "source": f"{remote_dir}/d/",
                    "destination": f"{dl}/tree",
                    "direction": "download",
                },
            ),
        ],
    )
    assert out.rc == 0, out.output
    assert body(out.lines)[3:] == [
        f"==> null: Uploading {src}/d => {remote_dir}/",
        f"==> null: Uploading {src}/d/sub/ => {remote_dir}/d",
        f"==> null: Uploading {src}/f.txt => {remote_dir}/",
        f"==> null: Downloading {remote_dir}/f.txt => {dl}/",
        f"==> null: Downloading {remote_dir}/d/ => {dl}/tree",
    ]
    assert (remote_dir / "d" / "sub" / "b.txt").read_text() == "b"
    assert (remote_dir / "d" / "b.txt").read_text() == "b"  # the second, contents-only copy
    assert stat.S_IMODE((remote_dir / "f.txt").stat().st_mode) == 0o751
    assert (dl / "f.txt").read_text() == "f"
    assert (dl / "tree" / "d" / "sub" / "b.txt").read_text() == "b"


# -- failures: each ends the build quickly with one clear sentence ---------------------------


def errored(out: object) -> str:
    lines = out.lines  # type: ignore[attr-defined]
    return next(ln for ln in lines if ln.startswith("Build 'null' errored"))


def test_refused_connection_ends_at_ssh_timeout(
    ssh_client_key: KeyPair, sshd: SshServer, closed_port: int
) -> None:
    start = time.monotonic()
    out = run_null(
        ssh_config(sshd, ssh_client_key, ssh_port=closed_port, ssh_timeout="2s"),
        [("shell", {"inline": ["true"]})],
    )
    assert time.monotonic() - start < 10
    assert out.rc == 1
    assert "==> null: Timeout waiting for SSH. The last of" in out.output
    assert f"127.0.0.1:{closed_port} refused the connection." in errored(out)


def test_silent_host_ends_at_ssh_timeout(
    ssh_client_key: KeyPair, sshd: SshServer, silent_port: int
) -> None:
    out = run_null(
        ssh_config(sshd, ssh_client_key, ssh_port=silent_port, ssh_timeout="2s"),
        [("shell", {"inline": ["true"]})],
    )
    assert out.rc == 1
    assert "did not complete the SSH handshake" in errored(out)


def test_wrong_user_or_key_fails_in_seconds(
    sshd_password_only: SshServer, ssh_client_key: KeyPair
) -> None:
    start = time.monotonic()
    out = run_null(
        ssh_config(sshd_password_only, ssh_client_key), [("shell", {"inline": ["true"]})]
    )
    assert time.monotonic() - start < 15
    assert out.rc == 1
    message = errored(out)
    assert "Error waiting for SSH:" in message and "rejected the credentials" in message
    assert "check ssh_username and the credentials" in message


def test_missing_local_script_at_run_time(
    sshd: SshServer, ssh_client_key: KeyPair, tmp_path: Path
) -> None:
    script = tmp_path / "gone.sh"
    script.write_text("true\n")
    # Prepared while it exists, removed before the build runs it.
    from ssh import harness

    original = harness.component

    def remove_after_prepare(*args: object, **kw: object) -> object:
        obj = original(*args, **kw)  # type: ignore[arg-type]
        if args[1] == "shell":
            script.unlink()
        return obj

    harness.component = remove_after_prepare  # type: ignore[assignment]
    try:
        out = run_null(ssh_config(sshd, ssh_client_key), [("shell", {"script": str(script)})])
    finally:
        harness.component = original  # type: ignore[assignment]
    assert out.rc == 1
    assert f"Error opening shell script: open {script}: no such file or directory" in errored(out)


def test_full_disk_during_upload(
    sshd: SshServer, ssh_client_key: KeyPair, tiny_disk: Path, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(16 << 20)
    start = time.monotonic()
    out = run_null(
        ssh_config(sshd, ssh_client_key),
        [("file", {"source": str(big), "destination": f"{tiny_disk}/"})],
    )
    assert time.monotonic() - start < 15
    assert out.rc == 1
    assert (
        f"==> null: Upload failed: {tiny_disk}/big.bin: write error: No space left on device"
        in out.lines
    )


def test_communicator_none_fails_at_once(tmp_path: Path) -> None:
    start = time.monotonic()
    out = run_null({"communicator": "none"}, [("shell", {"inline": ["true"]})])
    assert time.monotonic() - start < 10
    assert out.rc == 1
    assert "Upload is not implemented when communicator = 'none'" in errored(out)
    assert not any("Connected" in ln for ln in out.lines)

"""Differential tests: the same null-over-SSH template run by ``imagesmith build`` and
by ``packer build`` (1.6.6) against the same sshd must leave the same files on the
machine, print the same lines and exit with the same code."""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from engine.clirun import PACKER, Result, imagesmith_cmd, normalise, run
from fixtures.sshd import KeyPair, SshServer, SshUser

pytestmark = [
    pytest.mark.ssh,
    pytest.mark.packer,
    pytest.mark.skipif(PACKER is None, reason="packer 1.6.6 is not installed"),
]


def snapshot(root: Path) -> dict[str, str]:
    """Every entry below ``root``: type, mode and content."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = Path(dirpath) / name
            mode = stat.S_IMODE(p.lstat().st_mode)
            if p.is_symlink():
                out[str(p.relative_to(root))] = f"link {os.readlink(p)}"
            elif p.is_dir():
                out[str(p.relative_to(root))] = f"dir {mode:o}"
            else:
                out[str(p.relative_to(root))] = f"file {mode:o} {p.read_bytes()!r}"
    return out


class Run:
    def __init__(self, result: Result, remote: Path, work: Path) -> None:
        self.rc = result.rc
        self.out = normalise(result.out, tmp=work).replace(str(remote), "<remote>")
        self.remote = snapshot(remote)
        self.local = snapshot(work / "local") if (work / "local").exists() else {}

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def both(
    tmp_path: Path,
    sshd: SshServer,
    key: KeyPair,
    user: SshUser,
    provisioners: list[dict[str, Any]],
    *,
    prepare: Any = None,
) -> tuple[Run, Run]:
    """Run the template with each tool; ``{remote}`` and ``{dir}`` are each tool's own
    remote and local directories, and ``prepare(work, remote)`` sets both up."""
    runs = []
    for tool in ("imagesmith", "packer"):
        work = tmp_path / tool
        work.mkdir()
        remote = Path(f"/tmp/imagesmith-diff-{uuid.uuid4().hex[:10]}")
        remote.mkdir()
        os.chown(remote, user.uid, user.gid)
        try:
            if prepare is not None:
                prepare(work, remote)
                os.system(f"chown -R {user.uid}:{user.gid} {remote}")
            template = {
                "builders": [
                    {
                        "type": "null",
                        "ssh_host": sshd.host,
                        "ssh_port": sshd.port,
                        "ssh_username": user.name,
                        "ssh_private_key_file": str(key.private),
                    }
                ],
                "provisioners": provisioners,
            }
            text = json.dumps(template).replace("{remote}", str(remote)).replace("{dir}", str(work))
            (work / "t.json").write_text(text)
            cmd = (
                imagesmith_cmd("-color=false", "t.json")
                if tool == "imagesmith"
                else [str(PACKER), "build", "-color=false", "t.json"]
            )
            runs.append(Run(run(cmd, work), remote, work))
        finally:
            shutil.rmtree(remote, ignore_errors=True)
    return runs[0], runs[1]


def same(ours: Run, theirs: Run) -> None:
    assert ours.rc == theirs.rc, (ours.out, theirs.out)
    assert ours.lines == theirs.lines
    assert ours.remote == theirs.remote
    assert ours.local == theirs.local


def test_shell_inline_scripts_env_and_cleanup(
    tmp_path: Path, sshd: SshServer, ssh_client_key: KeyPair, ssh_user: SshUser
) -> None:
    def prepare(work: Path, remote: Path) -> None:
        (work / "crlf.sh").write_bytes(b"#!/bin/sh\r\necho \"crlf $FOO\"\r\nprintf 'no newline'")
        (work / "plain.sh").write_text('#!/bin/sh\necho "plain $0 $PACKER_BUILD_NAME"\n')

    provisioners = [
        {
            "type": "shell",
            "inline": ['echo "$FOO" "$EMPTY"', "echo '  indented  '", "printf '10%%\\r100%%\\n'"],
            "environment_vars": ['FOO=it\'s "quoted"', "EMPTY="],
            "remote_folder": "{remote}",
        },
        {
            "type": "shell",
            "scripts": ["crlf.sh", "plain.sh"],
            "environment_vars": ["FOO=bar"],
            "use_env_var_file": True,
            "remote_folder": "{remote}",
            "remote_file": "fixed.sh",
        },
        {
            "type": "shell",
            "inline": ["echo via custom command"],
            "execute_command": "sh -c 'echo Path={{.Path}}; sh {{.Path}}'",
            "remote_path": "{remote}/kept.sh",
            "skip_clean": True,
        },
        {"type": "shell", "inline": ["exit 5"], "valid_exit_codes": [5]},
    ]
    ours, theirs = both(tmp_path, sshd, ssh_client_key, ssh_user, provisioners, prepare=prepare)
    same(ours, theirs)
    assert "    null: crlf bar" in ours.lines and ours.rc == 0
    assert list(ours.remote) == ["kept.sh"]


def test_file_upload_trailing_slash_matrix(
    tmp_path: Path, sshd: SshServer, ssh_client_key: KeyPair, ssh_user: SshUser
) -> None:
    def prepare(work: Path, remote: Path) -> None:
        src = work / "src"
        (src / "d" / "sub").mkdir(parents=True)
        (src / "d" / "sub" / "b.txt").write_text("b")
        (src / "d" / "a.txt").write_text("a")
        os.chmod(src / "d" / "a.txt", 0o777)
        os.chmod(src / "d" / "sub", 0o750)
        os.symlink("a.txt", src / "d" / "link")
        (src / "f.txt").write_text("f")
        os.chmod(src / "f.txt", 0o600)
        (remote / "exists").mkdir()
        (remote / "contents").mkdir()
        (remote / "files").mkdir()

    provisioners = [
        {"type": "file", "source": "src/d", "destination": "{remote}/exists"},
        {"type": "file", "source": "src/d/", "destination": "{remote}/contents"},
        {"type": "file", "source": "src/d", "destination": "{remote}/created"},
        {"type": "file", "source": "src/f.txt", "destination": "{remote}/files/"},
        {"type": "file", "source": "src/f.txt", "destination": "{remote}/files/renamed"},
        {"type": "file", "sources": ["src/f.txt", "src/d/a.txt"], "destination": "{remote}/"},
    ]
    ours, theirs = both(tmp_path, sshd, ssh_client_key, ssh_user, provisioners, prepare=prepare)
    same(ours, theirs)
    assert ours.remote["exists/d/sub/b.txt"] == "file 644 b'b'"
    assert ours.remote["contents/a.txt"] == "file 755 b'a'"
    assert ours.remote["created/link"] == "file 644 b'a'"


def test_file_download(
    tmp_path: Path, sshd: SshServer, ssh_client_key: KeyPair, ssh_user: SshUser
) -> None:
    def prepare(work: Path, remote: Path) -> None:
        (remote / "tree" / "sub").mkdir(parents=True)
        (remote / "tree" / "sub" / "x.txt").write_text("x")
        (remote / "tree" / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(remote / "tree" / "run.sh", 0o755)
        (remote / "one.txt").write_text("one")

    provisioners = [
        {
            "type": "file",
            "direction": "download",
            "source": "{remote}/one.txt",
            "destination": "local/a/",
        },
        {
            "type": "file",
            "direction": "download",
            "source": "{remote}/one.txt",
            "destination": "local/b/renamed.txt",
        },
        {
            "type": "file",
            "direction": "download",
            "source": "{remote}/tree/",
            "destination": "local/c",
        },
    ]
    ours, theirs = both(tmp_path, sshd, ssh_client_key, ssh_user, provisioners, prepare=prepare)
    same(ours, theirs)
    assert ours.local["c/tree/run.sh"] == "file 755 b'#!/bin/sh\\n'"


def test_failing_script_exit_code_and_message(
    tmp_path: Path, sshd: SshServer, ssh_client_key: KeyPair, ssh_user: SshUser
) -> None:
    provisioners = [
        {"type": "shell", "inline": ["echo before", "exit 3"], "remote_folder": "{remote}"},
        {"type": "shell", "inline": ["echo never"]},
    ]
    ours, theirs = both(tmp_path, sshd, ssh_client_key, ssh_user, provisioners)
    assert ours.rc == theirs.rc == 1
    packer_text = "Script exited with non-zero exit status: 3.Allowed exit codes are: [0]"
    for result in (ours, theirs):
        errored = [ln for ln in result.lines if ln.startswith("Build 'null' errored")]
        assert len(errored) == 1 and packer_text in errored[0]
    # Same lines apart from the error text, which imagesmith extends with the script.
    strip = lambda r: [ln for ln in r.lines if packer_text not in ln]  # noqa: E731
    assert strip(ours) == strip(theirs)
    # The failed script is left in place by both (Packer removes it only on success).
    assert len(ours.remote) == len(theirs.remote) == 1


def test_pause_before_connecting_lines(
    tmp_path: Path, sshd: SshServer, ssh_client_key: KeyPair, ssh_user: SshUser
) -> None:
    ours, theirs = both(
        tmp_path, sshd, ssh_client_key, ssh_user, [{"type": "shell", "inline": ["echo hi"]}]
    )
    same(ours, theirs)

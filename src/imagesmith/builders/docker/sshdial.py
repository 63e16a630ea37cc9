"""Reaching a daemon at ``DOCKER_HOST=ssh://[USER@]HOST[:PORT]``, as the docker command does.

Each connection is an ``ssh`` process that runs ``docker system dial-stdio`` on the host
(the remote docker command connects to its own daemon and relays bytes), with one end
of a socket pair as its stdin and stdout; the API client speaks HTTP on the other end.
The remote host needs the docker command (18.09 or newer), as for ``docker -H ssh://``.

- The ``ssh`` on PATH with the user's own configuration (keys, agent, known hosts,
  ``ProxyJump``...), as the docker command uses it.
- The client opens one connection per API call, and a new SSH login each time costs
  about 0.2 s (against 25 ms a call through a master), so the processes share one
  master connection
  (OpenSSH's ``ControlMaster``, its socket in a directory of this user's own). ssh
  closes the master by itself once it has been unused for ``CONTROL_PERSIST`` seconds.
- ssh runs in a session of its own, so that a Ctrl-C meant for the build does not cut
  the connections its cleanup needs; it ends when its end of the socket pair closes,
  including when this process is killed.
- ssh's stderr goes to a file, not a pipe: a master that goes to the background keeps
  the stderr it was started with, and a pipe would never see its end.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import stat
import subprocess
import tempfile
import urllib.parse
from typing import IO

#: Seconds the shared master connection stays up after its last use.
CONTROL_PERSIST = 60
#: Seconds to wait for a failed ssh to exit, to report why it failed.
EXIT_WAIT = 5.0
# sockaddr_un holds 108 bytes; OpenSSH adds a temporary suffix while it binds.
_MAX_CONTROL_DIR = 40


class BadAddress(ValueError):
    """An ``ssh://`` address the docker command would refuse as well."""


class SshDialer:
    """How to open a connection to the daemon behind one ``ssh://`` address."""

    def __init__(self, address: str) -> None:
        url = urllib.parse.urlsplit(address)
        if not url.hostname:
            raise BadAddress("no host name in the ssh:// address")
        if url.path not in ("", "/") or url.query or url.fragment:
            raise BadAddress("an ssh:// address takes no path: ssh://[USER@]HOST[:PORT]")
        try:
            port = url.port
        except ValueError:
            raise BadAddress("the port of the ssh:// address is not a number") from None
        #: The ssh arguments that name the login, as a user would type them.
        self.login: list[str] = []
        if url.username:
            self.login += ["-l", urllib.parse.unquote(url.username)]
        if port:
            self.login += ["-p", str(port)]
        self.login += ["--", url.hostname]
        self._argv: list[str] | None = None

    @property
    def argv(self) -> list[str]:
        """The command line of every connection (the master's directory is made on the
        first connection, not when the address is read)."""
        if self._argv is None:
            argv = ["ssh", "-T", "-o", "ConnectTimeout=30"]
            control_dir = _control_dir()
            if control_dir:
                argv += [
                    "-o",
                    "ControlMaster=auto",
                    "-o",
                    f"ControlPath={control_dir}/%C",
                    "-o",
                    f"ControlPersist={CONTROL_PERSIST}",
                ]
            self._argv = [*argv, *self.login, "docker", "system", "dial-stdio"]
        return self._argv

    def check_command(self) -> str:
        """What a user runs to see whether the daemon can be reached."""
        return " ".join(["ssh", *(a for a in self.login if a != "--"), "docker", "version"])

    def connection(self, timeout: float | None) -> SshConnection:
        return SshConnection(self, timeout)


class SshConnection(http.client.HTTPConnection):
    """An HTTP connection whose socket is an ``ssh ... dial-stdio`` process."""

    def __init__(self, dialer: SshDialer, timeout: float | None) -> None:
        super().__init__("docker", timeout=timeout)
        self.dialer = dialer
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._spawn_error = ""

    def connect(self) -> None:
        argv = self.dialer.argv
        ours, theirs = socket.socketpair()
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 (kept open for failure())
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=theirs.fileno(),
                stdout=theirs.fileno(),
                stderr=stderr,
                start_new_session=True,
            )
        except BaseException as e:
            ours.close()
            stderr.close()
            if isinstance(e, FileNotFoundError):
                self._spawn_error = "there is no ssh command on PATH: install OpenSSH's client"
            raise
        finally:
            theirs.close()
        ours.settimeout(self.timeout)
        self.sock = ours
        self._stderr = stderr

    # close() leaves ssh's stderr open: http.client closes a connection itself when the
    # peer hangs up, before the caller can ask failure() why.
    def __del__(self) -> None:
        if self._stderr is not None:
            self._stderr.close()

    def failure(self) -> str | None:
        """Why ssh gave up, when it did: its exit status and last words."""
        if self._spawn_error:
            return self._spawn_error
        if self.proc is None or self._stderr is None:
            return None
        try:
            code = self.proc.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            return None
        if code == 0:
            return None
        self._stderr.seek(0)
        said = self._stderr.read()[-2000:].decode(errors="replace").strip().splitlines()
        last = said[-1].strip() if said else ""
        return f"ssh exited with status {code}" + (f": {last}" if last else "")


def _control_dir() -> str:
    """A directory of this user's own for the master's socket, or "" (no sharing) when
    there is no safe and short enough one."""
    for base in (tempfile.gettempdir(), "/tmp"):
        path = os.path.join(base, f"imagesmith-ssh-{os.getuid()}")
        if len(path) > _MAX_CONTROL_DIR:
            continue
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700)
            info = os.lstat(path)
        except OSError:
            continue
        # Someone else's directory, or one others can write to, could point the master
        # socket anywhere.
        if (
            stat.S_ISDIR(info.st_mode)
            and info.st_uid == os.getuid()
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            return path
    return ""

"""StepConnect: wait for the machine's SSH server and log in (Packer's StepConnect).

Used by every builder that reaches its machine over SSH (null, amazon-ebs). The
builder says how to find the host; the step prints Packer's lines::

    Using ssh communicator to connect: <host>
    Waiting for SSH to become available...
    Connected to SSH!

and keeps trying until ``ssh_timeout``. Where Packer waits 5 s between attempts and
retries rejected credentials ten times 7 s apart, this step retries a refused or
unreachable port every second and gives up on rejected credentials after
``ssh_handshake_attempts`` quick attempts, so a wrong user or key fails in seconds.
The final error names the last reason, after Packer's own words.

Reads: the communicator config, ``host(state)``, optionally ``port(state)`` and
``private_key(state)`` (a temporary key the builder created).
Sets: ``communicator``; build data ``Host``, ``Port``, ``User``, ``Password``,
``ConnType``, ``SSHPublicKey``, ``SSHPrivateKey``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from imagesmith.communicators.base import Communicator, NoneCommunicator
from imagesmith.communicators.config import CommunicatorConfig
from imagesmith.engine.step import Step
from imagesmith.errors import BuildError
from imagesmith.golang import format_duration

if TYPE_CHECKING:
    from imagesmith.communicators.ssh import SSHCommunicator
    from imagesmith.engine.build import BuildRun

S = TypeVar("S")
log = logging.getLogger(__name__)

#: Pause between attempts when the port is closed or unreachable (Packer: 5 s).
RETRY_INTERVAL = 1.0
#: Pause between attempts whose credentials were rejected.
AUTH_RETRY_INTERVAL = 0.5
_RETRY_KINDS = {"refused", "network", "timeout", "reset"}


class StepConnect(Step[S], Generic[S]):
    name = "StepConnect"

    def __init__(
        self,
        config: CommunicatorConfig,
        *,
        host: Callable[[S], str],
        port: Callable[[S], int] | None = None,
        private_key: Callable[[S], bytes | None] | None = None,
        public_key: Callable[[S], str] | None = None,
    ) -> None:
        self.config = config
        self._host = host
        self._port = port
        self._private_key = private_key
        self._public_key = public_key
        #: The connected communicator once ``run`` succeeded (``None`` before).
        self.communicator: Communicator | None = None

    async def run(self, state: S, build: BuildRun) -> None:
        kind = self.config.type
        if kind == "none":
            self.communicator = NoneCommunicator()
            return
        if kind != "ssh":
            raise BuildError(f'communicator "{kind}" is not supported by this builder')
        host = self._host(state)
        port = self._port(state) if self._port is not None else self.config.port
        build.ui.say(f"Using ssh communicator to connect: {host}")
        comm = await self._wait_for_ssh(state, build, host, port)
        self.communicator = comm
        pause = float(self.config.pause_before_connecting)
        if pause > 0:
            build.ui.say(f"Pausing {format_duration(pause)} before connecting...")
            await asyncio.sleep(pause)
            await comm.close()
            self.communicator = None
            comm = await self._wait_for_ssh(state, build, host, port)
            self.communicator = comm
        self._set_generated_data(state, build, host, port)

    async def cleanup(self, state: S, build: BuildRun) -> None:
        comm, self.communicator = self.communicator, None
        if comm is not None:
            await asyncio.shield(comm.close())

    def _set_generated_data(self, state: S, build: BuildRun, host: str, port: int) -> None:
        private = self._private_key(state) if self._private_key is not None else None
        build.generated_data.update(
            Host=host,
            Port=port,
            User=self.config.ssh_username,
            Password=self.config.ssh_password,
            ConnType="ssh",
            SSHPublicKey=self._public_key(state) if self._public_key is not None else "",
            SSHPrivateKey=private.decode() if private else "",
        )

    async def _wait_for_ssh(
        self, state: S, build: BuildRun, host: str, port: int
    ) -> SSHCommunicator:
        from imagesmith.communicators import sshlib

        await asyncio.to_thread(sshlib.load)  # at once if a builder preloaded it
        from imagesmith.communicators.ssh import SSHCommunicator
        from imagesmith.communicators.sshconn import ConnectFailure, SSHSettings

        build.ui.say("Waiting for SSH to become available...")
        timeout = self.config.timeout
        try:
            private = self._private_key(state) if self._private_key is not None else None
            settings = SSHSettings.from_config(
                self.config, host=host, port=port, private_key=private
            )
        except ConnectFailure as e:
            raise self._fail(build, f"Error waiting for SSH: {e}") from None
        comm = SSHCommunicator(settings)
        deadline = time.monotonic() + timeout
        auth_failures = 0
        attempts = 0
        last = ""
        with build.ui.waiting("Waiting for SSH"):
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                attempts += 1
                try:
                    await comm.connect(timeout=left)
                    build.ui.say("Connected to SSH!")
                    return comm
                except ConnectFailure as e:
                    last = str(e)
                    log.debug("SSH attempt %d failed: %s", attempts, e)
                    if e.kind == "auth":
                        auth_failures += 1
                        if auth_failures >= self.config.handshake_attempts:
                            raise self._fail(build, self._auth_error(e, auth_failures)) from None
                        pause = AUTH_RETRY_INTERVAL
                    elif e.kind in _RETRY_KINDS:
                        pause = RETRY_INTERVAL
                    else:
                        raise self._fail(build, f"Error waiting for SSH: {e}.") from None
                await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        message = "Timeout waiting for SSH."
        if last:
            message += f" The last of {attempts} attempts in {format_duration(timeout)}: {last}."
        raise self._fail(build, message)

    def _auth_error(self, e: Exception, attempts: int) -> str:
        cfg = self.config
        if cfg.ssh_private_key_file:
            how = f"the key {cfg.ssh_private_key_file}"
        elif cfg.ssh_agent_auth:
            how = "the keys of ssh-agent"
        elif cfg.ssh_password:
            how = "ssh_password"
        else:
            how = "the temporary key"
        return (
            f"Error waiting for SSH: {e} {attempts} times for user {cfg.ssh_username!r} "
            f"with {how}; check ssh_username and the credentials."
        )

    @staticmethod
    def _fail(build: BuildRun, message: str) -> BuildError:
        build.ui.error(message)
        return BuildError(message)

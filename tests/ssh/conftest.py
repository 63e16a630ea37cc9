"""Helpers for the SSH area's tests: a connected communicator per test."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fixtures.sshd import KeyPair, SshServer
from imagesmith.communicators.config import CommunicatorConfig
from imagesmith.communicators.ssh import SSHCommunicator
from imagesmith.communicators.sshconn import SSHSettings

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def settings(server: SshServer, key: KeyPair | None = None, **options: Any) -> SSHSettings:
    raw: dict[str, Any] = {"ssh_username": server.user.name, "ssh_port": server.port}
    if key is not None:
        raw["ssh_private_key_file"] = str(key.private)
    else:
        raw["ssh_password"] = server.user.password
    raw.update(options)
    return SSHSettings.from_config(CommunicatorConfig(**raw), host=server.host)


async def connected(
    server: SshServer, key: KeyPair | None = None, **options: Any
) -> SSHCommunicator:
    comm = SSHCommunicator(settings(server, key, **options))
    await comm.connect()
    return comm

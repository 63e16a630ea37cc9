"""The interface between provisioners and the machine being built.

A communicator runs commands and moves files. Provisioners know nothing else of the
machine: the same ``shell`` provisioner runs over SSH, ``docker exec``, or locally.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, ClassVar

from imagesmith.errors import CommunicatorError

# Exit status Packer reports when the connection dropped while a command ran (a reboot).
DISCONNECTED_EXIT_STATUS = 2300218


class ConnectionLost(CommunicatorError):
    """The machine could not be reached to start a command or a transfer (it may be
    rebooting). Unlike a remote command's own failure, this is worth retrying."""


LineCallback = Callable[[str], None]
ProgressCallback = Callable[[int], None]


class Communicator(ABC):
    """Runs commands on, and transfers files to and from, the machine being built.

    Every method may raise ``CommunicatorError`` with a message fit for the user.
    """

    #: Shown in "Using <type> communicator to connect" and as ``ConnType`` build data.
    type_name: str = ""

    #: Every command starts a new process through a container runtime (tens of
    #: milliseconds each, where an SSH channel costs a round trip): callers fold a
    #: short follow-up command into the command before it where they can.
    costly_commands: ClassVar[bool] = False

    @abstractmethod
    async def run(
        self,
        command: str,
        *,
        on_stdout: LineCallback | None = None,
        on_stderr: LineCallback | None = None,
    ) -> int:
        """Run a shell command; stream each output line (``\\r``-trimmed) as it comes.

        Returns the exit status, or ``DISCONNECTED_EXIT_STATUS`` when the connection
        was lost before the command finished.
        """

    @abstractmethod
    async def upload(
        self,
        dst: str,
        src: Path | BinaryIO,
        *,
        mode: int | None = None,
        size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Write ``src`` (a local file, or a stream of ``size`` bytes) to remote ``dst``.

        ``mode`` defaults to the local file's mode, or 0644 for a stream.
        """

    @abstractmethod
    async def upload_dir(
        self, dst: str, src: str, *, progress: ProgressCallback | None = None
    ) -> None:
        """Copy local directory ``src`` to remote ``dst`` with rsync's trailing-slash rule:
        ``src`` ending in ``/`` copies its contents into ``dst``, otherwise ``dst/<name>``."""

    @abstractmethod
    async def download(
        self, src: str, dst: BinaryIO, *, progress: ProgressCallback | None = None
    ) -> None:
        """Stream remote file ``src`` into ``dst``."""

    @abstractmethod
    async def download_dir(self, src: str, dst: str) -> None:
        """Copy remote directory ``src`` into local directory ``dst``."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection. Called once by the builder's cleanup."""


class NoneCommunicator(Communicator):
    """``communicator: none``: there is a machine, but no way to reach it."""

    type_name = "none"

    async def run(self, command: str, *, on_stdout=None, on_stderr=None) -> int:  # type: ignore[no-untyped-def]
        raise CommunicatorError("Start is not implemented when communicator = 'none'")

    async def upload(self, dst, src, *, mode=None, size=None, progress=None) -> None:  # type: ignore[no-untyped-def]
        raise CommunicatorError("Upload is not implemented when communicator = 'none'")

    async def upload_dir(self, dst, src, *, progress=None) -> None:  # type: ignore[no-untyped-def]
        raise CommunicatorError("UploadDir is not implemented when communicator = 'none'")

    async def download(self, src, dst, *, progress=None) -> None:  # type: ignore[no-untyped-def]
        raise CommunicatorError("Download is not implemented when communicator = 'none'")

    async def download_dir(self, src, dst) -> None:  # type: ignore[no-untyped-def]
        raise CommunicatorError("DownloadDir is not implemented when communicator = 'none'")

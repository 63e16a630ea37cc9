"""``file`` builder: write one local file, from ``content`` or a copy of ``source``.

It creates no machine. Provisioners run against ``MockCommunicator``, which accepts
every command and transfer and does nothing, and get no build data (Packer passes
none), so ``{{build `ID`}}`` renders as ``<no value>``. Its artifact is the file;
destroying the artifact deletes it.

As in Packer 1.6.6 the builder has no steps: writing the file and provisioning are
not subject to ``-on-error`` or ``-debug`` step pauses, and a failed provisioner does
not run the ``error-cleanup-provisioner``. One difference, on purpose: a copy from
``source`` that fails or is interrupted half-way removes the partial target instead
of leaving it behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from imagesmith.communicators.base import Communicator
from imagesmith.engine.artifact import Artifact
from imagesmith.errors import BuildError, ConfigError
from imagesmith.plugins import Builder

if TYPE_CHECKING:
    from imagesmith.communicators.base import LineCallback, ProgressCallback
    from imagesmith.engine.build import BuildRun

BUILDER_ID = "packer.file"
# Large enough that the copy's per-chunk overhead vanishes, small enough that an
# interrupt is seen promptly.
COPY_CHUNK = 64 << 20
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


@dataclass
class FileConfig:
    target: str = ""
    content: str = ""
    source: str = ""


class MockCommunicator(Communicator):
    """Packer's mock communicator: every command exits 0 with no output, every
    transfer succeeds and moves nothing."""

    type_name = "mock"

    async def run(
        self,
        command: str,
        *,
        on_stdout: LineCallback | None = None,
        on_stderr: LineCallback | None = None,
    ) -> int:
        return 0

    async def upload(
        self,
        dst: str,
        src: Path | BinaryIO,
        *,
        mode: int | None = None,
        size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        return None

    async def upload_dir(
        self, dst: str, src: str, *, progress: ProgressCallback | None = None
    ) -> None:
        return None

    async def download(
        self, src: str, dst: BinaryIO, *, progress: ProgressCallback | None = None
    ) -> None:
        return None

    async def download_dir(self, src: str, dst: str) -> None:
        return None


class FileBuilder(Builder):
    type_name = "file"
    builder_id = BUILDER_ID
    Config: ClassVar[type[FileConfig]] = FileConfig
    config: FileConfig

    def prepare(self) -> list[str]:
        errors: list[str] = []
        warnings: list[str] = []
        if not self.config.target:
            errors.append("target required")
        if not self.config.content and not self.config.source:
            warnings.append("Both source file and contents are blank; target will have no content")
        if self.config.content and self.config.source:
            errors.append("Cannot specify source file AND content")
        if errors:
            raise ConfigError(errors)
        return warnings

    async def run(self, build: BuildRun) -> Artifact | None:
        target = self.config.target
        parent = os.path.dirname(target)
        if parent:
            try:
                os.makedirs(parent, 0o755, exist_ok=True)
            except OSError as e:
                raise BuildError(_path_error("mkdir", e.filename or parent, e)) from None

        if self.config.source:
            await self._copy(build, self.config.source, target)
        else:
            _write(target, self.config.content.encode(), 0o600)

        # Packer hands the file builder's provisioners no build data at all.
        build.generated_data.clear()
        await build.provision(MockCommunicator())
        return file_artifact(target)

    async def _copy(self, build: BuildRun, source: str, target: str) -> None:
        try:
            src = os.open(source, os.O_RDONLY)
        except OSError as e:
            raise BuildError(_path_error("open", source, e)) from None
        try:
            dst = _open_target(target, 0o666)
            build.ui.say(f"Copying {source} to {target}")
            copied = 0
            try:
                while n := await asyncio.to_thread(_copy_chunk, src, dst):
                    copied += n
            except BaseException:
                os.close(dst)
                with contextlib.suppress(OSError):
                    os.remove(target)
                raise
            os.close(dst)
        except OSError as e:
            # Name the side that failed, as Go's io.Copy error does.
            failed = ("write", target) if e.errno in _WRITE_ERRNOS else ("read", source)
            raise BuildError(_path_error(*failed, e)) from None
        finally:
            os.close(src)
        build.ui.say(f"Copied {copied} bytes")


def file_artifact(target: str) -> Artifact:
    async def destroy() -> None:
        os.remove(target)

    return Artifact(
        builder_id=BUILDER_ID,
        id="File",
        text=f"Stored file: {target}",
        files=[target],
        on_destroy=destroy,
    )


def _copy_chunk(src: int, dst: int) -> int:
    """Copy up to ``COPY_CHUNK`` bytes in the kernel; 0 at the end of ``src``."""
    try:
        return os.copy_file_range(src, dst, COPY_CHUNK)
    except OSError:
        # Not every filesystem pair supports it; fall back to a plain read/write.
        data = os.read(src, 1 << 20)
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view) :]
        return len(data)


def _open_target(target: str, mode: int) -> int:
    """Create or truncate ``target``; like Go's os.Create, an existing file keeps its mode."""
    try:
        return os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    except OSError as e:
        raise BuildError(_path_error("open", target, e)) from None


def _write(target: str, data: bytes, mode: int) -> None:
    fd = _open_target(target, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as e:
        raise BuildError(_path_error("write", target, e)) from None
    finally:
        os.close(fd)


def _path_error(op: str, path: str, exc: OSError) -> str:
    """Go's ``*PathError`` text: ``open x: no such file or directory``."""
    reason = exc.strerror or str(exc)
    return f"{op} {path}: {reason[:1].lower()}{reason[1:]}"

"""``file``: copy files and directories to or from the machine (Packer's file
provisioner).

Upload: ``Uploading <src> => <dst>``; a directory follows rsync's trailing-slash rule
(``dir`` lands as ``<dst>/dir``, ``dir/`` puts its contents in ``<dst>``); a file goes
to ``<dst>`` or, when ``<dst>`` ends in ``/``, to ``<dst><name>``. Modes are kept.
Download: ``Downloading <src> => <dst>``; a source ending in ``/`` or holding a glob
is copied as a tree. Transfers stream; a terminal shows a progress bar with bytes
and rate for those that take more than a moment.

Two Packer bugs are not copied: a download with several sources no longer stops
after the first directory, and a destination ending in ``/`` keeps meaning that
directory for every source (Packer appended the first file's name to it).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from imagesmith.communicators.config import go_os_error
from imagesmith.errors import BuildError, CommunicatorError, ConfigError
from imagesmith.plugins import Provisioner

if TYPE_CHECKING:
    from imagesmith.communicators.base import Communicator
    from imagesmith.engine.context import ProvisionContext
    from imagesmith.ui.base import Ui


@dataclass
class FileConfig:
    source: str = ""
    sources: list[str] = field(default_factory=list)
    destination: str = ""
    direction: str = ""
    generated: bool = False


class FileProvisioner(Provisioner):
    type_name = "file"
    Config: ClassVar[type[FileConfig]] = FileConfig
    config: FileConfig

    def prepare(self) -> list[str]:
        c = self.config
        errs: list[str] = []
        self.direction = c.direction or "upload"
        if self.direction not in ("download", "upload"):
            errs.append("Direction must be one of: download, upload.")
        self.sources = [*c.sources, c.source] if c.source else list(c.sources)
        if self.direction == "upload" and not c.generated:
            for src in self.sources:
                try:
                    os.stat(src)
                except OSError as e:
                    errs.append(f"Bad source '{src}': {go_os_error('stat', src, e)}")
        if not self.sources:
            errs.append("Source must be specified.")
        if not c.destination:
            errs.append("Destination must be specified.")
        if errs:
            raise ConfigError(errs)
        return []

    async def provision(self, ctx: ProvisionContext) -> None:
        comm = ctx.comm
        if comm is None:
            raise BuildError("the file provisioner needs a communicator")
        dst = self._render(ctx, self.config.destination, "destination")
        for raw in self.sources:
            src = self._render(ctx, raw, "source")
            if self.direction == "download":
                await self._download(ctx.ui, comm, src, dst)
            else:
                await self._upload(ctx.ui, comm, src, dst)

    @staticmethod
    def _render(ctx: ProvisionContext, text: str, what: str) -> str:
        generated = ctx.generated_data
        try:
            return ctx.info.renderer.render(text, data=generated, generated=generated)
        except Exception as e:
            raise BuildError(f"Error interpolating {what}: {e}") from None

    async def _upload(self, ui: Ui, comm: Communicator, src: str, dst: str) -> None:
        ui.say(f"Uploading {src} => {dst}")
        try:
            st = os.stat(src)
        except OSError as e:
            raise BuildError(go_os_error("stat", src, e)) from None
        if os.path.isdir(src):
            # The total is left open: sizing a large tree would cost a second walk.
            with ui.progress(os.path.basename(src.rstrip("/")) or src, None) as bar:
                await _transfer(ui, "Upload", comm.upload_dir(dst, src, progress=bar.advance))
            return
        target = dst + os.path.basename(src) if dst.endswith("/") else dst
        with ui.progress(os.path.basename(src), st.st_size) as bar:
            await _transfer(ui, "Upload", comm.upload(target, Path(src), progress=bar.advance))

    async def _download(self, ui: Ui, comm: Communicator, src: str, dst: str) -> None:
        ui.say(f"Downloading {src} => {dst}")
        tree = src.endswith("/") or any(c in src for c in "*?[")
        target = dst
        if not dst.endswith("/"):
            directory = os.path.dirname(dst)
        else:
            directory = dst
            if not tree:
                target = os.path.join(dst, os.path.basename(src))
        try:
            if directory:
                os.makedirs(directory, mode=0o755, exist_ok=True)
            if tree:
                await _transfer(ui, "Download", comm.download_dir(src, target))
                return
            with open(target, "wb") as f, ui.progress(os.path.basename(src), None) as bar:
                await _transfer(ui, "Download", comm.download(src, f, progress=bar.advance))
        except OSError as e:
            raise BuildError(go_os_error("open", e.filename or target, e)) from None


async def _transfer(ui: Ui, what: str, transfer: Awaitable[None]) -> None:
    """Await a communicator transfer; a failure is shown as ``<what> failed: ...``."""
    try:
        await transfer
    except CommunicatorError as e:
        ui.error(f"{what} failed: {e}")
        raise BuildError(str(e)) from None

"""The ``docker`` communicator: commands through the Engine API's exec, files as tar
streams through the container archive endpoint.

How it differs from Packer 1.6.6's (which drives the ``docker`` CLI):

- No shared temporary folder: uploads and downloads stream straight into and out of
  the container (``container_dir`` is not used).
- Ownership (``fix_upload_owner``) is written into the tar headers, or resolved by the
  daemon from the container's own ``/etc/passwd`` (user *and* group) for a non-root
  container user; Packer ran ``chown -R <user>`` on the destination afterwards, which
  left the group alone and also re-owned whatever the destination already held.
- Directories follow the SSH communicator's trailing-slash rule: ``src`` copies the
  folder into ``dst/src``, ``src/`` copies its contents into ``dst``. Packer's
  ``docker cp`` copied the contents for both forms when ``dst`` did not exist. A
  missing ``dst`` is created, as ``docker cp`` did.
- A file upload into a directory that does not exist fails at once with the reason;
  Packer retried for five minutes (``start_retry_timeout``) before saying anything.
- ``download_dir`` (and glob downloads) work; Packer said it was not implemented.
"""

from __future__ import annotations

import asyncio
import io
import os
import posixpath
import stat
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from imagesmith.communicators.base import (
    DISCONNECTED_EXIT_STATUS,
    Communicator,
    LineCallback,
    ProgressCallback,
)
from imagesmith.errors import CommunicatorError

_GLOB_CHARS = "*?["


class _LineSplitter:
    """Cuts a byte stream into lines and hands each to ``emit`` (on the event loop)."""

    def __init__(self, emit: Callable[[str], None] | None) -> None:
        self.emit = emit
        self.pending = b""

    def feed(self, data: bytes) -> None:
        if self.emit is None:
            return
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            self.emit(line.rstrip(b"\r").decode(errors="replace"))

    def close(self) -> None:
        if self.emit is not None and self.pending:
            self.emit(self.pending.rstrip(b"\r").decode(errors="replace"))
        self.pending = b""


class DockerCommunicator(Communicator):
    """Talks to one running container through a ``docker.APIClient``."""

    type_name = "docker"

    def __init__(
        self,
        client: Any,
        container_id: str,
        *,
        exec_user: str = "",
        container_user: str = "",
        workdir: str = "",
        fix_upload_owner: bool = True,
        pty: bool = False,
    ) -> None:
        self.client = client
        self.container_id = container_id
        self.exec_user = exec_user
        self.container_user = container_user
        self.workdir = workdir or "/"
        self.fix_upload_owner = fix_upload_owner
        self.pty = pty

    # -- commands ------------------------------------------------------------------------

    async def run(
        self,
        command: str,
        *,
        on_stdout: LineCallback | None = None,
        on_stderr: LineCallback | None = None,
    ) -> int:
        loop = asyncio.get_running_loop()
        abandoned = threading.Event()

        def to_loop(cb: LineCallback | None) -> Callable[[str], None] | None:
            if cb is None:
                return None

            def deliver(line: str) -> None:
                if not abandoned.is_set():
                    cb(line)

            def schedule(line: str) -> None:
                loop.call_soon_threadsafe(deliver, line)

            return schedule

        out, err = _LineSplitter(to_loop(on_stdout)), _LineSplitter(to_loop(on_stderr))
        try:
            return await asyncio.to_thread(self._exec, command, out, err)
        finally:
            abandoned.set()

    def _exec(self, command: str, out: _LineSplitter, err: _LineSplitter) -> int:
        try:
            exec_id = self.client.exec_create(
                self.container_id,
                ["/bin/sh", "-c", command],
                stdout=True,
                stderr=True,
                tty=self.pty,
                user=self.exec_user,
            )["Id"]
            stream = self.client.exec_start(exec_id, stream=True, demux=True)
            first = b""
            for stdout_chunk, stderr_chunk in stream:
                if stdout_chunk:
                    first = first or stdout_chunk[:300]
                    out.feed(stdout_chunk)
                if stderr_chunk:
                    err.feed(stderr_chunk)
            out.close()
            err.close()
            result = self.client.exec_inspect(exec_id)
        except Exception as e:
            doing = f"running a command in container {self.container_id[:12]}"
            raise self._error(doing, e) from None
        code = result.get("ExitCode")
        if result.get("Running") or code is None:
            return DISCONNECTED_EXIT_STATUS
        if code in (126, 127) and b"OCI runtime exec failed" in first:
            raise CommunicatorError(
                f"Cannot run commands in the container: {first.decode(errors='replace').strip()}."
                " The docker communicator runs every command with /bin/sh; use an image "
                "that has one."
            )
        return int(code)

    # -- uploads -------------------------------------------------------------------------

    def _absolute(self, path: str) -> str:
        return posixpath.normpath(posixpath.join(self.workdir, path))

    def _owner_params(self) -> tuple[Any, dict[str, str]]:
        from imagesmith.builders.docker.tarstream import Owner

        if not self.fix_upload_owner:
            return Owner(None, None), {}
        if self.container_user in ("", "root", "0", "0:0", "root:root"):
            return Owner(0, 0), {}
        # The daemon resolves the container's user (and group) in its own /etc/passwd.
        return Owner(0, 0), {"copyUIDGID": "1"}

    def _put(self, path: str, body: Iterator[bytes], params: dict[str, str]) -> None:
        url = self.client._url("/containers/{0}/archive", self.container_id)
        query = {"path": path, "noOverwriteDirNonDir": "1", **params}
        response = self.client.put(url, params=query, data=body)
        self.client._raise_for_status(response)

    async def upload(
        self,
        dst: str,
        src: Path | BinaryIO,
        *,
        mode: int | None = None,
        size: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        await asyncio.to_thread(self._upload, dst, src, mode, size, progress)

    def _upload(
        self,
        dst: str,
        src: Path | BinaryIO,
        mode: int | None,
        size: int | None,
        progress: ProgressCallback | None,
    ) -> None:
        from imagesmith.builders.docker.tarstream import file_entry

        target = self._absolute(dst)
        owner, params = self._owner_params()
        spool: Any = None
        try:
            if isinstance(src, Path):
                st = src.stat()
                fileobj: BinaryIO = open(src, "rb")  # noqa: SIM115 - closed in finally
                spool = fileobj
                size = st.st_size
                mode = stat.S_IMODE(st.st_mode) if mode is None else mode
            elif size is None:
                spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115
                while chunk := src.read(1 << 16):
                    spool.write(chunk)
                size = spool.tell()
                spool.seek(0)
                fileobj = spool
            else:
                fileobj = src
            mode = 0o644 if mode is None else mode
            parent, name = posixpath.split(target)
            try:
                self._put(parent, file_entry(name, fileobj, size, mode, owner, progress), params)
            except Exception as e:
                if "cannot overwrite directory" in _explain(e) and isinstance(src, Path):
                    # dst is an existing directory: put the file inside it, as cp would.
                    fileobj.seek(0)
                    entry = file_entry(src.name, fileobj, size, mode, owner, progress)
                    self._put(target, entry, params)
                else:
                    raise
        except CommunicatorError:
            raise
        except Exception as e:
            if _status(e) == 404:
                raise CommunicatorError(
                    f"cannot upload to {dst}: directory {posixpath.dirname(target)} does not "
                    "exist in the container; create it first (e.g. with a shell provisioner)"
                ) from None
            raise self._error(f"uploading to {dst}", e) from None
        finally:
            if spool is not None:
                spool.close()

    async def upload_dir(
        self, dst: str, src: str, *, progress: ProgressCallback | None = None
    ) -> None:
        await asyncio.to_thread(self._upload_dir, dst, src, progress)

    def _upload_dir(self, dst: str, src: str, progress: ProgressCallback | None) -> None:
        from imagesmith.builders.docker.tarstream import tree_entries

        owner, params = self._owner_params()
        base = self._absolute(dst).lstrip("/")
        root = src.rstrip("/") or "/"
        if not os.path.isdir(root):
            raise CommunicatorError(f"cannot upload {src}: not a directory")
        if src.endswith("/"):
            # The contents go into dst; dst itself keeps its attributes if it exists.
            body = tree_entries(root, base or None, owner, progress, root_header=False)
        else:
            name = os.path.basename(root)
            body = tree_entries(root, f"{base}/{name}" if base else name, owner, progress)
        try:
            # Names are relative to "/": the daemon creates missing parents (0755) and
            # leaves existing ones as they are, since no header names them.
            self._put("/", body, params)
        except Exception as e:
            raise self._error(f"uploading {src} to {dst}", e) from None

    # -- downloads -----------------------------------------------------------------------

    def _archive(self, path: str) -> Iterator[bytes]:
        stream, _ = self.client.get_archive(self.container_id, path, chunk_size=1 << 16)
        return iter(stream)

    async def download(
        self, src: str, dst: BinaryIO, *, progress: ProgressCallback | None = None
    ) -> None:
        await asyncio.to_thread(self._download, src, dst, progress)

    def _download(self, src: str, dst: BinaryIO, progress: ProgressCallback | None) -> None:
        try:
            with tarfile.open(
                fileobj=_IterReader(self._archive(self._absolute(src))), mode="r|"
            ) as tar:
                member = tar.next()
                if member is None or member.isdir():
                    raise CommunicatorError(f"cannot download {src}: it is a directory")
                if member.issym() or member.islnk():
                    # get_archive does not follow a final symlink; fetch what it points to.
                    link = posixpath.join(posixpath.dirname(self._absolute(src)), member.linkname)
                    return self._download(link, dst, progress)
                data = tar.extractfile(member)
                if data is None:
                    raise CommunicatorError(f"cannot download {src}: not a regular file")
                while chunk := data.read(1 << 16):
                    dst.write(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except CommunicatorError:
            raise
        except Exception as e:
            if _status(e) == 404:
                raise CommunicatorError(
                    f"cannot download {src}: no such file in the container"
                ) from None
            raise self._error(f"downloading {src}", e) from None
        return None

    async def download_dir(self, src: str, dst: str) -> None:
        await asyncio.to_thread(self._download_dir, src, dst)

    def _download_dir(self, src: str, dst: str) -> None:
        sources = self._expand(src) if any(c in src for c in _GLOB_CHARS) else [src]
        os.makedirs(dst, exist_ok=True)
        for one in sources:
            strip = one.endswith("/")
            try:
                stream = self._archive(self._absolute(one))
                with tarfile.open(fileobj=_IterReader(stream), mode="r|") as tar:
                    for member in tar:
                        if strip:
                            _, _, rest = member.name.partition("/")
                            if not rest:
                                continue
                            member.name = rest
                        tar.extract(member, dst, filter="data")
            except Exception as e:
                if _status(e) == 404:
                    raise CommunicatorError(
                        f"cannot download {one}: no such file or directory in the container"
                    ) from None
                raise self._error(f"downloading {one}", e) from None

    def _expand(self, pattern: str) -> list[str]:
        """Expand a glob in the container's shell, as scp's remote side would."""
        script = f'for p in {pattern}; do [ -e "$p" ] && printf "%s\\0" "$p"; done; true'
        exec_id = self.client.exec_create(
            self.container_id, ["/bin/sh", "-c", script], user=self.exec_user
        )["Id"]
        raw = self.client.exec_start(exec_id)
        found = [p.decode(errors="replace") for p in raw.split(b"\0") if p]
        if not found:
            raise CommunicatorError(
                f"cannot download {pattern}: no file in the container matches it"
            )
        return found

    # -- errors --------------------------------------------------------------------------

    def _error(self, doing: str, e: BaseException) -> CommunicatorError:
        text = _explain(e)
        if _status(e) in (404, 409) and "container" in text.lower():
            return CommunicatorError(
                f"Error {doing}: container {self.container_id[:12]} is gone or stopped ({text})"
            )
        return CommunicatorError(f"Error {doing}: {text}")


def _status(e: BaseException) -> int | None:
    response = getattr(e, "response", None)
    return getattr(response, "status_code", None)


def _explain(e: BaseException) -> str:
    from imagesmith.builders.docker.client import explain

    return explain(e)


class _IterReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (for streaming tar reads)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        while not self.rest:
            try:
                self.rest = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(buf), len(self.rest))
        buf[:n] = self.rest[:n]
        self.rest = self.rest[n:]
        return n

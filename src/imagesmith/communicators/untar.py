"""Extract a tar stream arriving on an async reader into a local directory.

``tarfile`` reads synchronously, so it runs in a thread fed through a bounded queue:
the archive is never held whole in memory. Members keep their modes (as scp -r does
for downloads) but not their owners, and nothing may land outside the destination.
"""

from __future__ import annotations

import asyncio
import io
import queue
import tarfile
from typing import Any

_EOF = b""


class _QueueReader(io.RawIOBase):
    def __init__(self, q: queue.Queue[bytes]) -> None:
        self._q = q
        self._buf = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf and not self._eof:
            chunk = self._q.get()
            if chunk is _EOF or not chunk:
                self._eof = True
            self._buf = chunk
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _NoChownTarFile(tarfile.TarFile):
    def chown(self, tarinfo: tarfile.TarInfo, targetpath: Any, numeric_owner: bool) -> None:
        """Downloaded files belong to the user running the build."""


def _extract(q: queue.Queue[bytes], dst: str) -> None:
    reader = io.BufferedReader(_QueueReader(q), 256 * 1024)
    with _NoChownTarFile.open(fileobj=reader, mode="r|") as tf:
        # The "tar" filter refuses absolute paths and paths leaving dst, keeps modes.
        tf.extractall(dst, filter="tar")
    # Drain whatever follows the end-of-archive blocks so the producer never blocks.
    while reader.read(256 * 1024):
        pass


async def extract_stream(stream: Any, dst: str) -> None:
    """Read ``stream`` (an asyncssh reader of bytes) to its end, extracting into ``dst``."""
    q: queue.Queue[bytes] = queue.Queue(maxsize=16)
    worker = asyncio.ensure_future(asyncio.to_thread(_extract, q, dst))
    try:
        while chunk := await stream.read(256 * 1024):
            while True:
                if worker.done():
                    break
                try:
                    q.put_nowait(chunk)
                    break
                except queue.Full:
                    await asyncio.sleep(0.005)
            if worker.done():
                break
    finally:
        while not worker.done():
            try:
                q.put_nowait(_EOF)
                break
            except queue.Full:
                await asyncio.sleep(0.005)
        await worker

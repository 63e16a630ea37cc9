"""Terminal-only feedback: transfer progress bars, long-wait status lines, questions.

None of this is part of Packer's byte-compatible output: it is drawn only when stdout
is a terminal and not in machine-readable mode, on a status line that messages erase
and redraw (see ``Console.set_status``), so a log captured through a pipe is exactly
what Packer would print.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagesmith.ui.console import Console

#: A transfer or wait shorter than this shows nothing at all.
SHOW_AFTER = 1.0
#: Redraw a progress bar at most this often.
REDRAW_EVERY = 0.2
BAR_WIDTH = 24

_keys = itertools.count(1)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def elapsed_text(seconds: float) -> str:
    """Compact elapsed time for status lines: ``7s``, ``2m05s``, ``1h02m``."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def progress_text(label: str, done: int, total: int | None, seconds: float) -> str:
    rate = done / seconds if seconds > 0 else 0.0
    if total:
        filled = min(BAR_WIDTH, BAR_WIDTH * done // total)
        bar = ("=" * filled + ">").ljust(BAR_WIDTH)[:BAR_WIDTH]
        amount = f"[{bar}] {human_bytes(done)} / {human_bytes(total)}"
    else:
        amount = human_bytes(done)
    return f"{label} {amount} {human_bytes(rate)}/s"


class TransferProgress:
    """Counts bytes from any thread and redraws the bar once the transfer lasted a moment."""

    def __init__(self, console: Console, label: str, total: int | None) -> None:
        self._console = console
        self._label = label
        self._total = total
        self._done = 0
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._key = next(_keys)
        self._lock = threading.Lock()
        self._closed = False

    def advance(self, n: int) -> None:
        with self._lock:
            self._done += n
            now = time.monotonic()
            if self._closed or now - self._started < SHOW_AFTER:
                return
            if now - self._drawn_at < REDRAW_EVERY:
                return
            self._drawn_at = now
            done, seconds = self._done, now - self._started
        text = progress_text(self._label, done, self._total, seconds)
        self._console.set_status(self._key, text)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            drawn = self._drawn_at > 0
        if drawn:
            self._console.set_status(self._key, None)


class _NoProgress:
    def advance(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


@contextmanager
def transfer_progress(
    console: Console, label: str, total: int | None
) -> Iterator[TransferProgress | _NoProgress]:
    progress: TransferProgress | _NoProgress
    progress = TransferProgress(console, label, total) if console.live else _NoProgress()
    try:
        yield progress
    finally:
        progress.close()


@contextmanager
def wait_status(console: Console, what: str) -> Iterator[None]:
    """Show ``what, <elapsed>`` on the terminal while the block runs longer than a moment.

    A daemon thread draws it, so it keeps ticking whatever the event loop is doing.
    """
    if not console.live:
        yield
        return
    stop = threading.Event()
    key = next(_keys)
    started = time.monotonic()

    def tick() -> None:
        if stop.wait(SHOW_AFTER):
            return
        while not stop.is_set():
            console.set_status(key, f"{what}, {elapsed_text(time.monotonic() - started)}")
            stop.wait(1.0)

    thread = threading.Thread(target=tick, name="wait-status", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        console.set_status(key, None)


def open_tty() -> int | None:
    """A non-blocking file descriptor on the controlling terminal, or None without one."""
    try:
        return os.open("/dev/tty", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None


async def read_tty_line(fd: int) -> str:
    """Read one line from ``fd`` without blocking the event loop; closes ``fd``.

    Cancellation (an interrupt) stops the read at once. End of input returns what was
    read so far.
    """
    loop = asyncio.get_running_loop()
    buffer = bytearray()
    ready = asyncio.Event()
    eof = False

    def on_readable() -> None:
        nonlocal eof
        try:
            chunk = os.read(fd, 1024)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            eof = True
        buffer.extend(chunk)
        if eof or b"\n" in buffer:
            ready.set()

    loop.add_reader(fd, on_readable)
    try:
        await ready.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    line = bytes(buffer).split(b"\n", 1)[0]
    return line.decode(errors="replace").rstrip("\r")

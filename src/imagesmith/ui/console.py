"""The process-wide console: every byte imagesmith shows a user goes through here.

Packer 1.6.6 writes all UI output, errors included, to stdout, and so do we. Three
layers shape a message, in this order (the same order Packer wraps its UIs in):

1. the build prefix (``==> name: `` for say/error, ``    name: `` for message), put
   on every line of the message after trailing whitespace is trimmed;
2. the ``-timestamp-ui`` prefix (``<RFC3339 local time>: ``), once per message;
3. the colour (``ESC[1;<c>m`` ... ``ESC[0m`` around the whole message) in human mode,
   or the ``<unix time>,,ui,<kind>,<escaped message>`` record in machine-readable mode.

Secrets are replaced by ``<sensitive>`` before any of this, in every mode (Packer
leaves machine-readable output unredacted; we do not copy that). Each message is
written with one ``write`` under a lock, so parallel builds never interleave inside a
message.

Colour: ``color=False`` (``-color=false``) means no escape codes and no
"output will be in this color." banner. Otherwise the banner is printed, and escape
codes are used when ``color`` is True, or when it is None (the default) and the stream
is a terminal and ``PACKER_NO_COLOR`` is unset. Packer colours piped output too; we
keep escape codes out of pipes and log files, so piped output equals Packer's with
``PACKER_NO_COLOR=1``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TextIO

from imagesmith.ui.base import Progress

if TYPE_CHECKING:
    from imagesmith.engine.plan import Diagnostic

#: Build colours, assigned to builds in sorted order and cycling (Packer's order).
BUILD_COLORS = (32, 36, 35, 33, 34)
ERROR_COLOR = 31
REDACTED = "<sensitive>"


def machine_escape(field: str) -> str:
    """Escape one machine-readable data field exactly as Packer does."""
    return field.replace(",", "%!(PACKER_COMMA)").replace("\r", "\\r").replace("\n", "\\n")


def rfc3339_now() -> str:
    """Local time as Go's ``time.RFC3339`` prints it (``Z`` for UTC, else ``+hh:mm``)."""
    now = datetime.now().astimezone()
    text = now.isoformat(timespec="seconds")
    return text[:-6] + "Z" if now.utcoffset() == _ZERO_OFFSET else text


_ZERO_OFFSET = timedelta(0)


def wrap_words(text: str, width: int = 80) -> str:
    """Greedy word wrap that breaks only at spaces and keeps existing line breaks.

    Matches the wrapping of HCL's diagnostic writer (go-wordwrap): a space run at a
    break is dropped, a word longer than ``width`` stays whole on its own line, and a
    run of spaces that would overflow at the end of a line is dropped.
    """
    out: list[str] = []
    for line in text.split("\n"):
        out.append(_wrap_line(line, width))
    return "\n".join(out)


def _wrap_line(line: str, width: int) -> str:
    pieces: list[str] = []
    column = 0
    word = ""
    spaces = ""

    def flush_word() -> None:
        nonlocal column, word, spaces
        pieces.append(spaces + word)
        column += len(spaces) + len(word)
        word = spaces = ""

    for char in line:
        if char.isspace() and char != "\u00a0":
            if word or not spaces:
                flush_word()
            spaces += char
            continue
        word += char
        if column + len(spaces) + len(word) > width and len(word) < width:
            pieces.append("\n")
            column = 0
            spaces = ""
    if word:
        flush_word()
    elif column + len(spaces) <= width:
        pieces.append(spaces)
    return "".join(pieces)


def format_diagnostic(d: Diagnostic) -> str:
    """``<Severity>: <summary>\\n\\n<detail wrapped at 80>\\n\\n`` (HCL's text writer)."""
    label = {"error": "Error", "warning": "Warning"}.get(d.severity, "???????")
    text = f"{label}: {d.summary}\n\n"
    if d.detail:
        text += wrap_words(d.detail, 80) + "\n\n"
    return text


class Console:
    """Process-wide output to stdout (Packer 1.6.6 writes all UI, errors included, to stdout)."""

    def __init__(
        self,
        *,
        machine_readable: bool = False,
        color: bool | None = None,
        timestamp: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stdout
        self.machine_readable = machine_readable
        self.timestamp = timestamp
        self.is_terminal = _isatty(self.stream)
        #: Whether the "output will be in this color." banner is printed.
        self.color_banner = color is not False and not machine_readable
        no_color_env = os.environ.get("PACKER_NO_COLOR", "") != ""
        self.colors = self.color_banner and not no_color_env and (color is True or self.is_terminal)
        self._secrets: list[str] = []
        self._lock = threading.RLock()
        # Status lines (progress bars, waits) drawn on the terminal's last line; a
        # message first erases them and they are redrawn after it.
        self._status: dict[int, str] = {}
        self._status_drawn = False

    # -- secrets -------------------------------------------------------------------

    def add_secrets(self, values: Iterable[str]) -> None:
        """Redact each non-empty value as ``<sensitive>`` in everything written."""
        with self._lock:
            known = set(self._secrets)
            known.update(v for v in values if v)
            # Longest first, so a secret containing another is replaced whole.
            self._secrets = sorted(known, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    # -- untargeted output -----------------------------------------------------------

    def say(self, msg: str) -> None:
        """Untargeted line(s), printed as given (``ui,say`` in machine-readable mode)."""
        self.emit("say", msg)

    def message(self, msg: str) -> None:
        self.emit("message", msg)

    def error(self, msg: str) -> None:
        self.emit("error", msg)

    def machine(self, target: str, type_: str, *data: str) -> None:
        """A machine-readable record; nothing in human mode."""
        if not self.machine_readable:
            return
        fields = ",".join(machine_escape(self.redact(str(d))) for d in data)
        # Packer always writes the comma after the type, even with no data.
        self._write(f"{int(time.time())},{target},{type_},{fields}\n")

    def diagnostic(self, d: Diagnostic) -> None:
        """``Error: <summary>\\n\\n<detail wrapped 80>\\n\\n`` plus the UI newline."""
        self.diagnostics([d])

    def diagnostics(self, ds: Sequence[Diagnostic]) -> None:
        """Several diagnostics as Packer prints them: one message, an error if any is."""
        if not ds:
            return
        text = "".join(format_diagnostic(d) for d in ds)
        kind = "error" if any(d.severity == "error" for d in ds) else "say"
        self.emit(kind, text)

    def emit(self, kind: str, text: str, *, color: int | None = None, bold: bool = True) -> None:
        """Write one whole message: ``kind`` is say, message or error."""
        text = self.redact(text)
        if self.machine_readable:
            record = f"{int(time.time())},,ui,{kind},{machine_escape(text)}\n"
            self._write(record)
            return
        if self.colors and color is not None:
            text = f"\x1b[{'1' if bold else '0'};{color}m{text}\x1b[0m"
        self._write(text + "\n")

    # -- builds ----------------------------------------------------------------------

    def build_ui(self, name: str, index: int) -> BuildUi:
        """A UI targeted at build ``name`` (``index``: its position in sorted order)."""
        return BuildUi(self, name, BUILD_COLORS[index % len(BUILD_COLORS)])

    def announce_colors(self, names: Sequence[str]) -> None:
        """``<build>: output will be in this color.`` per build, then a blank line."""
        if not self.color_banner or not names:
            return
        for index, name in enumerate(names):
            self.emit("say", f"{name}: output will be in this color.", color=_color(index))
        self.emit("say", "")

    # -- terminal interaction --------------------------------------------------------

    async def ask(self, prompt: str, *, color: int | None = None) -> str:
        """Ask on the terminal: ``prompt`` then one line read from the TTY.

        As in Packer, with no TTY (or in machine-readable mode) nothing is printed and
        "" is returned at once.
        """
        from imagesmith.ui.progress import open_tty, read_tty_line

        if self.machine_readable:
            return ""
        tty = open_tty()
        if tty is None:
            return ""
        text = self.redact(prompt)
        if self.colors and color is not None:
            text = f"\x1b[1;{color}m{text}\x1b[0m"
        self._write(text + " ")
        return await read_tty_line(tty)

    def progress(self, label: str, total: int | None) -> AbstractContextManager[Progress]:
        from imagesmith.ui.progress import transfer_progress

        return transfer_progress(self, label, total)

    def waiting(self, what: str) -> AbstractContextManager[None]:
        from imagesmith.ui.progress import wait_status

        return wait_status(self, what)

    @property
    def live(self) -> bool:
        """True when status lines (progress, waits) may be drawn."""
        return self.is_terminal and not self.machine_readable

    def set_status(self, key: int, text: str | None) -> None:
        """Show (or with None remove) one live status line at the bottom of the terminal."""
        with self._lock:
            if text is None:
                self._status.pop(key, None)
            else:
                self._status[key] = text
            self._erase_status()
            self._draw_status()
            self.stream.flush()

    def _erase_status(self) -> None:
        if self._status_drawn:
            self.stream.write("\r\x1b[K")
            self._status_drawn = False

    def _draw_status(self) -> None:
        if self._status:
            self.stream.write(" | ".join(self._status.values()))
            self._status_drawn = True

    def _write(self, text: str) -> None:
        with self._lock:
            if self._status_drawn:
                self._erase_status()
                self.stream.write(text)
                self._draw_status()
            else:
                self.stream.write(text)
            self.stream.flush()


def _color(index: int) -> int:
    return BUILD_COLORS[index % len(BUILD_COLORS)]


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


class BuildUi:
    """The ``Ui`` a build's components write through: prefixed, coloured, timestamped."""

    def __init__(self, console: Console, name: str, color: int) -> None:
        self.console = console
        self.name = name
        self.color = color

    def targeted(self, target: str) -> BuildUi:
        """The same build's colour under another target, e.g. ``build (manifest)``."""
        return BuildUi(self.console, target, self.color)

    def say(self, msg: str) -> None:
        self._emit("say", self._prefix("==> ", msg), bold=True)

    def message(self, msg: str) -> None:
        self._emit("message", self._prefix("    ", msg), bold=False)

    def error(self, msg: str) -> None:
        self._emit("error", self._prefix("==> ", msg), color=ERROR_COLOR, bold=True)

    def plain_say(self, msg: str) -> None:
        """An unprefixed line in the build's colour (``Build 'x' finished ...``)."""
        self._emit("say", msg, bold=True)

    def plain_error(self, msg: str) -> None:
        """An unprefixed error line (``Build 'x' errored ...``)."""
        self._emit("error", msg, color=ERROR_COLOR, bold=True)

    async def ask(self, prompt: str) -> str:
        # Packer timestamps messages but not questions.
        return await self.console.ask(self._prefix("==> ", prompt), color=self.color)

    def progress(self, label: str, total: int | None) -> AbstractContextManager[Progress]:
        return self.console.progress(f"{self.name}: {label}", total)

    def waiting(self, what: str) -> AbstractContextManager[None]:
        return self.console.waiting(f"{self.name}: {what}")

    def _prefix(self, arrow: str, msg: str) -> str:
        # Every line gets the prefix; only the end of the whole message is trimmed, so
        # an empty line inside a message keeps its prefix's trailing space (as Packer).
        # Secrets are redacted first too: a multi-line one (a private key) would no
        # longer match once its lines are prefixed.
        head = f"{arrow}{self.name}: "
        msg = self.console.redact(msg)
        return "\n".join(head + line for line in msg.split("\n")).rstrip()

    def _emit(self, kind: str, text: str, *, color: int | None = None, bold: bool) -> None:
        if self.console.timestamp:
            text = f"{rfc3339_now()}: {text}"
        self.console.emit(kind, text, color=self.color if color is None else color, bold=bold)

"""The interface every component uses to talk to the user.

A component never prints. It is handed a ``Ui`` already targeted at its build (so
``say("x")`` comes out as ``==> name: x``) and already redacting secrets; the concrete
classes in ``imagesmith.ui.console`` decide colours, timestamps and the
machine-readable format.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol


class Progress(Protocol):
    """A transfer or wait in progress. ``advance`` may be called from any thread."""

    def advance(self, n: int) -> None: ...

    def close(self) -> None: ...


class Ui(Protocol):
    def say(self, msg: str) -> None:
        """A step heading: ``==> build: msg``."""

    def message(self, msg: str) -> None:
        """Detail under a heading: ``    build: msg``."""

    def error(self, msg: str) -> None:
        """An error line: ``==> build: msg`` in red."""

    async def ask(self, prompt: str) -> str:
        """Ask the user a question on the terminal; returns "" when there is no TTY."""

    def progress(self, label: str, total: int | None) -> AbstractContextManager[Progress]:
        """A progress bar with bytes and rate, drawn only on a terminal."""

    def waiting(self, what: str) -> AbstractContextManager[None]:
        """Show "what, elapsed time" while a long wait lasts (terminal only)."""


def lines(msg: str) -> Iterator[str]:
    """The lines of a message as Packer prefixes them (trailing whitespace trimmed)."""
    yield from msg.rstrip().split("\n")

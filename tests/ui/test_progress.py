"""Progress bars and wait status lines: drawn on a terminal only, erased by messages."""

from __future__ import annotations

import io
import threading
import time

import pytest

from imagesmith.ui import progress
from imagesmith.ui.console import Console


class Terminal(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def isatty(self) -> bool:
        return True


@pytest.fixture
def instant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "SHOW_AFTER", 0.0)
    monkeypatch.setattr(progress, "REDRAW_EVERY", 0.0)


def test_progress_bar_on_a_terminal(instant: None) -> None:
    out = Terminal()
    con = Console(stream=out, color=False)
    with con.build_ui("b", 0).progress("upload disk.img", 4 * 1024 * 1024) as bar:
        bar.advance(1024 * 1024)
        con.build_ui("b", 0).say("in between")
        bar.advance(3 * 1024 * 1024)
    text = out.getvalue()
    assert "b: upload disk.img [" in text and "1.0 MiB / 4.0 MiB" in text
    assert "4.0 MiB / 4.0 MiB" in text and "/s" in text
    # The message erased the bar line, printed, and the bar came back after it.
    assert "\r\x1b[K==> b: in between\nb: upload" in text
    # Closing erases the bar, leaving the terminal clean.
    assert text.endswith("\r\x1b[K")


def test_progress_silent_when_piped(instant: None) -> None:
    out = io.StringIO()
    con = Console(stream=out, color=False)
    with con.progress("upload", 10) as bar:
        bar.advance(10)
    assert out.getvalue() == ""


def test_progress_silent_in_machine_readable_mode(instant: None) -> None:
    out = Terminal()
    con = Console(stream=out, machine_readable=True)
    with con.progress("upload", 10) as bar:
        bar.advance(10)
    assert out.getvalue() == ""


def test_short_transfer_draws_nothing() -> None:
    out = Terminal()
    con = Console(stream=out, color=False)
    with con.progress("upload", 10) as bar:
        bar.advance(10)
    assert out.getvalue() == ""


def test_waiting_status_on_a_terminal(instant: None) -> None:
    out = Terminal()
    con = Console(stream=out, color=False)
    with con.build_ui("b", 0).waiting("Waiting for instance to become ready"):
        deadline = time.monotonic() + 10
        while "ready, " not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    text = out.getvalue()
    assert "b: Waiting for instance to become ready, 0s" in text
    assert text.endswith("\r\x1b[K")


def test_waiting_silent_when_piped(instant: None) -> None:
    out = io.StringIO()
    con = Console(stream=out, color=False)
    with con.waiting("Waiting"):
        pass
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB")],
)
def test_human_bytes(n: int, text: str) -> None:
    assert progress.human_bytes(n) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.9, "59s"), (125, "2m05s"), (3720, "1h02m")]
)
def test_elapsed_text(seconds: float, text: str) -> None:
    assert progress.elapsed_text(seconds) == text

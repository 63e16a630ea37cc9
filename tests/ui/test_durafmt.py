"""Packer's duration texts."""

from __future__ import annotations

import pytest

from imagesmith.ui.durafmt import durafmt


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 seconds"),
        (0.000003, "3 microseconds"),
        (0.012769, "12 milliseconds 769 microseconds"),
        (1.024, "1 second 24 milliseconds"),
        (1.393, "1 second 393 milliseconds"),
        (59.855123, "59 seconds 855 milliseconds"),
        (300.308, "5 minutes 308 milliseconds"),  # zero units are skipped
        (3600, "1 hour"),
        (3661.5, "1 hour 1 minute"),
        (8 * 86400 + 5, "1 week 1 day"),
        (366 * 86400, "1 year 1 day"),
        (0.001, "1 millisecond"),
    ],
)
def test_durafmt(seconds: float, text: str) -> None:
    assert durafmt(seconds) == text

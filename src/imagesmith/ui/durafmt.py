"""Durations as Packer prints them (``Build 'x' finished after 1 second 24 milliseconds.``).

Packer formats with durafmt, keeping the first two non-zero units: years, weeks, days,
hours, minutes, seconds, milliseconds, microseconds. A unit is singular for 1. A
duration under one microsecond prints ``0 seconds``.
"""

from __future__ import annotations

_UNITS: tuple[tuple[str, int], ...] = (
    ("year", 365 * 24 * 3600 * 1_000_000),
    ("week", 7 * 24 * 3600 * 1_000_000),
    ("day", 24 * 3600 * 1_000_000),
    ("hour", 3600 * 1_000_000),
    ("minute", 60 * 1_000_000),
    ("second", 1_000_000),
    ("millisecond", 1_000),
    ("microsecond", 1),
)


def durafmt(seconds: float, *, limit: int = 2) -> str:
    """Format ``seconds`` with the first ``limit`` non-zero units."""
    remaining = int(seconds * 1_000_000) if seconds > 0 else 0
    parts: list[str] = []
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count} {unit}{'' if count == 1 else 's'}")
            if len(parts) == limit:
                break
    return " ".join(parts) if parts else "0 seconds"

"""The local journal of the cloud resources and containers a run creates.

A build records each resource (instance, key pair, security group, AMI, ..., the
docker builder's container) here the moment its id is known, and crosses it off once
it is removed, or once it has become the build's artifact. A run that ends normally
leaves no journal behind. A run that cannot clean up after itself (SIGKILL, a CI job
cancelled, the network gone) leaves its file, and ``imagesmith cleanup`` reads it to
remove what remains.

Where: ``$IMAGESMITH_STATE_DIR``, else ``$XDG_STATE_HOME/imagesmith``, else
``~/.local/state/imagesmith``; one file per run, ``journal/<run-id>.jsonl``. Each line
is a JSON record: ``{"op": "add", ...}`` or ``{"op": "remove", ...}``; the last word
on a resource wins. Lines are appended and flushed one by one, so a killed process
loses nothing it had written.

While its run is alive the file is held under an exclusive ``flock``; ``cleanup``
skips journals that are still locked, so it never removes what a running build
still uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from imagesmith.errors import BuildError


def state_dir() -> Path:
    explicit = os.environ.get("IMAGESMITH_STATE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "imagesmith"


def journal_dir() -> Path:
    return state_dir() / "journal"


@dataclass(frozen=True)
class Entry:
    """One resource: what it is, where, and what is needed to remove it."""

    run_id: str
    kind: str
    id: str
    region: str
    build: str = ""
    created: float = 0.0
    # Where the API was reached (a custom EC2 endpoint) and with which profile, so that
    # cleanup talks to the same place; never credentials.
    endpoint: str = ""
    profile: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.region, self.id)


class Journal:
    """The journal file of one run, shared by all its builds (thread-safe)."""

    def __init__(self, run_id: str, directory: Path | None = None) -> None:
        self.run_id = run_id
        self.path = (directory or journal_dir()) / f"{run_id}.jsonl"
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._live: dict[tuple[str, str, str], Entry] = {}
        self._users = 0

    def open(self) -> None:
        """A build of the run starts using the journal."""
        with self._lock:
            self._users += 1

    def release(self) -> None:
        """A build of the run is done with the journal; the last one closes it."""
        with self._lock:
            self._users = max(0, self._users - 1)
            last = self._users == 0
        if last:
            self.close()

    def add(self, entry: Entry) -> None:
        with self._lock:
            self._live[entry.key] = entry
            self._write({"op": "add", **_entry_record(entry)})

    def remove(self, kind: str, region: str, resource_id: str) -> None:
        with self._lock:
            if self._live.pop((kind, region, resource_id), None) is None:
                return
            self._write({"op": "remove", "kind": kind, "region": region, "id": resource_id})

    def live(self) -> list[Entry]:
        with self._lock:
            return list(self._live.values())

    def close(self) -> None:
        """End of the run: drop the file if nothing is left in it."""
        with self._lock:
            if self._file is None:
                return
            if not self._live:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            self._file.close()
            self._file = None

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            except OSError as e:
                # Before the resource exists: a build that cannot journal creates nothing.
                raise BuildError(
                    f"Cannot write the run's journal in {self.path.parent} "
                    f"({e.strerror or e}); make the folder writable, or set "
                    "IMAGESMITH_STATE_DIR to one that is."
                ) from None
            os.chmod(self.path, 0o600)
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()


def _entry_record(entry: Entry) -> dict[str, Any]:
    record: dict[str, Any] = {
        "run_id": entry.run_id,
        "kind": entry.kind,
        "id": entry.id,
        "region": entry.region,
        "build": entry.build,
        "created": entry.created or time.time(),
    }
    if entry.endpoint:
        record["endpoint"] = entry.endpoint
    if entry.profile:
        record["profile"] = entry.profile
    if entry.extra:
        record["extra"] = entry.extra
    return record


_JOURNALS: dict[str, Journal] = {}
_JOURNALS_LOCK = threading.Lock()


def for_run(run_id: str) -> Journal:
    """The journal of ``run_id`` in this process (one per run, shared by its builds)."""
    with _JOURNALS_LOCK:
        journal = _JOURNALS.get(run_id)
        if journal is None or journal.path.parent != journal_dir():
            journal = _JOURNALS[run_id] = Journal(run_id)
        return journal


# -- reading, for cleanup -------------------------------------------------------------------


@dataclass
class RunJournal:
    """A journal file as ``cleanup`` sees it."""

    run_id: str
    path: Path
    alive: bool
    entries: list[Entry]

    def remove(self, entry: Entry) -> None:
        """Cross ``entry`` off (cleanup removed it); drops the file once it is empty."""
        with open(self.path, "a", encoding="utf-8") as f:
            record = {"op": "remove", "kind": entry.kind, "region": entry.region, "id": entry.id}
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.entries = [e for e in self.entries if e.key != entry.key]
        if not self.entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def read_journals(directory: Path | None = None) -> Iterator[RunJournal]:
    directory = directory or journal_dir()
    try:
        paths = sorted(directory.glob("*.jsonl"))
    except OSError:
        return
    for path in paths:
        journal = read_journal(path)
        if journal is not None:
            yield journal


def read_journal(path: Path) -> RunJournal | None:
    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with f:
        alive = _is_locked(f)
        live: dict[tuple[str, str, str], Entry] = {}
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            key = (record.get("kind", ""), record.get("region", ""), record.get("id", ""))
            if record.get("op") == "remove":
                live.pop(key, None)
            elif record.get("op") == "add":
                live[key] = Entry(
                    run_id=record.get("run_id", path.stem),
                    kind=key[0],
                    id=key[2],
                    region=key[1],
                    build=record.get("build", ""),
                    created=float(record.get("created", 0.0)),
                    endpoint=record.get("endpoint", ""),
                    profile=record.get("profile", ""),
                    extra=record.get("extra", {}),
                )
    return RunJournal(path.stem, path, alive, list(live.values()))


def _is_locked(f: TextIO) -> bool:
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return False


# -- what cleanup found ---------------------------------------------------------------------


@dataclass
class Leftover:
    """A resource to remove, and where it was found (its journal, or a search)."""

    entry: Entry
    journal: RunJournal | None = None

    @property
    def label(self) -> str:
        e = self.entry
        # Cloud resources live in a region; containers on a daemon, which has none.
        where = f"in {e.region}" if e.region else f"on {e.endpoint}"
        return f"{e.kind} {e.id} {where} (run {e.run_id})"


@dataclass
class Findings:
    leftovers: list[Leftover] = field(default_factory=list)
    #: Runs whose journal is locked by a live process: left alone.
    running: list[str] = field(default_factory=list)
    #: Resources a search found of runs this machine knows nothing of (removed with force).
    foreign: list[Leftover] = field(default_factory=list)

    def merge(self, known: list[Leftover], foreign: list[Leftover]) -> None:
        """Add what a search found and the journals did not list."""
        seen = {lo.entry.key for lo in self.leftovers} | {lo.entry.key for lo in self.foreign}
        for found, into in ((known, self.leftovers), (foreign, self.foreign)):
            for leftover in found:
                if leftover.entry.key not in seen:
                    seen.add(leftover.entry.key)
                    into.append(leftover)


def from_journals(journals: Iterable[RunJournal], regions: set[str] | None) -> Findings:
    """What the journals of dead runs list (in ``regions``, when given)."""
    findings = Findings()
    for journal in journals:
        if journal.alive:
            findings.running.append(journal.run_id)
            continue
        for entry in journal.entries:
            if regions is None or entry.region in regions:
                findings.leftovers.append(Leftover(entry, journal))
    return findings

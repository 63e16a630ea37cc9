"""``artifice`` post-processor: make the listed files the build's artifact.

A builder or provisioner produced some files (say, downloaded from the machine);
``files`` (glob patterns allowed) names them, and they become a new artifact whose
destruction deletes them. Patterns are expanded as Go's ``filepath.Glob`` does:
``*`` matches dot files too, ``[^...]`` negates, ``\\`` escapes, matches come sorted,
and a pattern that matches nothing is dropped silently.

Difference from Packer, on purpose: a malformed pattern is an error naming it (Packer
1.6.6 crashed on one).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from imagesmith.errors import BuildError
from imagesmith.plugins import PostProcessor
from imagesmith.postprocessors.checksum import remove_all
from imagesmith.provisioners.localshell import SingleConfigError, go_os_error

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.ui.base import Ui

BUILDER_ID = "packer.post-processor.artifice"
_MAGIC = re.compile(r"[*?\[\\]")


@dataclass
class ArtificeConfig:
    files: list[str] = field(default_factory=list)


class ArtificePostProcessor(PostProcessor):
    type_name = "artifice"
    Config: ClassVar[type[ArtificeConfig]] = ArtificeConfig
    config: ArtificeConfig
    keep_default = True
    force_keep = False

    def prepare(self) -> list[str]:
        if not self.config.files:
            raise SingleConfigError("No files specified in artifice configuration")
        return []

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        if artifact.files:
            ui.say(f"Discarding files from artifact: {', '.join(artifact.files)}")
        files: list[str] = []
        for pattern in self.config.files:
            try:
                matches = glob(pattern)
            except ValueError:
                raise BuildError(f"syntax error in pattern: {pattern}") from None
            for match in matches:
                try:
                    os.stat(match)
                except OSError as e:
                    raise BuildError(go_os_error("stat", match, e)) from None
                files.append(match)
        ui.say(f"Using these artifact files: {', '.join(files)}")
        return artifice_artifact(files)


def artifice_artifact(files: list[str]) -> Artifact:
    from imagesmith.engine.artifact import Artifact

    async def destroy() -> None:
        for f in files:
            remove_all(f)

    return Artifact(
        builder_id=BUILDER_ID,
        id="",
        text=f"Created artifact from files: {', '.join(files)}",
        files=list(files),
        on_destroy=destroy,
    )


# --- Go's filepath.Glob ------------------------------------------------------------------


def glob(pattern: str) -> list[str]:
    """Paths matching ``pattern``; raises ``ValueError`` for a malformed pattern."""
    if not _MAGIC.search(pattern):
        return [pattern] if os.path.lexists(pattern) else []
    head, tail = os.path.split(pattern)
    # os.path.split strips the separator from head except for the root, as Go's
    # cleanGlobPath leaves it.
    directory = head or "."
    if not _MAGIC.search(directory):
        return _glob_in(directory, tail)
    if directory == pattern:
        raise ValueError(pattern)
    matches: list[str] = []
    for d in glob(directory):
        matches.extend(_glob_in(d, tail))
    return matches


def _glob_in(directory: str, pattern: str) -> list[str]:
    matcher = _compile(pattern)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []  # not a directory, or unreadable: no matches, as in Go
    return [_go_join(directory, n) for n in names if matcher.fullmatch(n)]


def _go_join(directory: str, name: str) -> str:
    """Go's ``filepath.Join``: joined, then cleaned (``./x`` is ``x``)."""
    joined = os.path.normpath(f"{directory}/{name}")
    return "/" + joined.lstrip("/") if joined.startswith("//") else joined


def _compile(pattern: str) -> re.Pattern[str]:
    """Go's ``filepath.Match`` syntax as a regex over one path element."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= n:
                raise ValueError(pattern)
            out.append(re.escape(pattern[i]))
        elif c == "[":
            i, cls = _char_class(pattern, i + 1)
            out.append(cls)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _char_class(pattern: str, i: int) -> tuple[int, str]:
    """Parse a ``[...]`` class starting after ``[``; return (index after ``]``, regex)."""
    n = len(pattern)
    negated = i < n and pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[str] = []
    first = True
    while True:
        if i >= n:
            raise ValueError(pattern)
        if pattern[i] == "]" and not first:
            i += 1
            break
        lo, i = _class_char(pattern, i)
        hi = lo
        if i < n and pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1)
        if lo <= hi:  # Go lets a reversed range match nothing
            ranges.append(f"{re.escape(lo)}-{re.escape(hi)}")
        first = False
    body = "".join(ranges)
    if negated:
        return i, f"[^/{body}]"
    return i, f"[{body}]" if body else "(?!)"


def _class_char(pattern: str, i: int) -> tuple[str, int]:
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        raise ValueError(pattern)
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            raise ValueError(pattern)
    return pattern[i], i + 1

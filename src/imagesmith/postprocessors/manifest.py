"""``manifest`` post-processor: record each build's artifact in a JSON file.

The file has Packer 1.6.6's shape, key order and encoding (``encoding/json`` with a
two-space indent, no final newline, ``<``, ``>`` and ``&`` escaped)::

    {"builds": [{"name", "builder_type", "build_time", "files", "artifact_id",
                 "packer_run_uuid", "custom_data"}, ...], "last_run_uuid": "..."}

Each build appends its entry, across runs too; with ``-force`` a file written by
another run is started afresh. The artifact passes through unchanged.

Builds of one run append in parallel, and other processes may write the same file,
so the read-modify-write holds an asyncio lock (builds in this process) and an
``flock`` on ``<output>.lock`` (other processes), removed afterwards as Packer removes
its lock file. Differences from Packer, on purpose: the lock is waited for instead of
being given up after three tries, and the file is replaced atomically, so a reader
never sees half of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from imagesmith.errors import BuildError
from imagesmith.plugins import PostProcessor
from imagesmith.provisioners.localshell import go_os_error
from imagesmith.rehearse import seam as rehearse_seam

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.ui.base import Ui

DEFAULT_OUTPUT = "packer-manifest.json"
#: Seconds between attempts at a lock another process holds.
LOCK_POLL = 0.05


@dataclass
class ManifestConfig:
    # Renamed to ``output`` long ago; ``imagesmith fix`` rewrites it.
    DEPRECATED_KEYS: ClassVar[frozenset[str]] = frozenset({"filename"})

    output: str = ""
    strip_path: bool = False
    strip_time: bool = False
    # None and {} differ in the file (null and {}), as in Packer.
    custom_data: dict[str, str] | None = None


class ManifestPostProcessor(PostProcessor):
    type_name = "manifest"
    Config: ClassVar[type[ManifestConfig]] = ManifestConfig
    config: ManifestConfig
    keep_default = True
    force_keep = True

    def prepare(self) -> list[str]:
        if not self.config.output:
            self.config.output = DEFAULT_OUTPUT
        return []

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        entry = self._entry(artifact)
        output = self.config.output
        async with _locked(output):
            await asyncio.to_thread(self._append, output, entry)
        return artifact

    def _entry(self, artifact: Artifact) -> dict[str, Any]:
        from imagesmith.template.render import RenderError

        generated = artifact.state("generated_data") or {}
        custom: dict[str, str] | None = None
        if self.config.custom_data is not None:
            custom = {}
            for key, value in sorted(self.config.custom_data.items()):
                try:
                    custom[key] = self.info.renderer.render(
                        value, data=generated, generated=generated
                    )
                except RenderError as e:
                    raise BuildError(f"Error interpolating custom data: {e}") from None

        files: list[dict[str, Any]] | None = None
        for name in artifact.files:
            try:
                size = os.stat(name).st_size
            except OSError:
                size = 0
            shown = os.path.basename(name) if self.config.strip_path else name
            files = [*(files or []), {"name": shown, "size": size}]

        entry: dict[str, Any] = {
            "name": self.info.name,
            "builder_type": self.info.builder_type,
            "build_time": 0 if self.config.strip_time else int(time.time()),
            "files": files,
            "artifact_id": artifact.id,
            "packer_run_uuid": self.info.run_uuid,
            "custom_data": custom,
        }
        if rehearse_seam.active() is not None:
            # A rehearsed AMI exists only in the local emulator: say so in the record,
            # so no pipeline mistakes it for a real image.
            entry["rehearsal"] = True
        return entry

    def _append(self, output: str, entry: dict[str, Any]) -> None:
        try:
            with open(output, "rb") as f:
                contents = f.read()
        except FileNotFoundError:
            contents = b""
        except OSError as e:
            raise BuildError(
                f"Unable to open {output} for reading: {go_os_error('open', output, e)}"
            ) from None

        manifest: dict[str, Any] = {"builds": None, "last_run_uuid": ""}
        if contents:
            try:
                manifest = unmarshal_manifest(contents)
            except GoJSONError as e:
                raise BuildError(f"Unable to parse content from {output}: {e}") from None

        run_uuid = self.info.run_uuid
        if self.info.force and manifest["last_run_uuid"] != run_uuid:
            manifest = {"builds": None, "last_run_uuid": ""}
        builds = [*(manifest["builds"] or []), entry]
        document = {"builds": [_omit_empty_time(b) for b in builds], "last_run_uuid": run_uuid}
        write_replacing(output, dumps_indent(document).encode())


def _omit_empty_time(entry: dict[str, Any]) -> dict[str, Any]:
    # build_time is "omitempty" in Packer's struct: a zero time is left out.
    return {k: v for k, v in entry.items() if k != "build_time" or v}


def write_replacing(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically; a new file gets mode 0664 (less the
    umask), an existing one keeps its mode."""
    target = os.path.realpath(path)
    try:
        mode: int | None = os.stat(target).st_mode & 0o7777
    except OSError:
        mode = None
    temp = f"{target}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o664)
    except OSError as e:
        raise BuildError(f"Unable to write {path}: {go_os_error('open', path, e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(temp, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise BuildError(f"Unable to write {path}: {go_os_error('write', path, e)}") from None


# --- locking ---------------------------------------------------------------------------

# One asyncio lock per event loop and manifest path (asyncio locks belong to a loop).
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def _locked(output: str) -> AsyncIterator[None]:
    """Hold the manifest for this build: first among this process's builds, then
    among processes."""
    locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    lock = locks.setdefault(os.path.abspath(output), asyncio.Lock())
    async with lock:
        fd = await _flock(output + ".lock")
        try:
            yield
        finally:
            if fd is not None:
                # Remove before unlocking: a process that opened the old file sees it
                # is gone once it gets the lock, and tries again (see _flock).
                with contextlib.suppress(OSError):
                    os.remove(output + ".lock")
                os.close(fd)


async def _flock(path: str) -> int | None:
    """An exclusive ``flock`` on ``path`` (created if need be), or None when the lock
    file cannot be created; then the write itself reports what is wrong."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            await asyncio.sleep(LOCK_POLL)
            continue
        if _same_file(fd, path):
            return fd
        os.close(fd)  # removed by its holder while we waited: lock the new one


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


# --- Go's encoding/json, as far as the manifest needs it --------------------------------


class GoJSONError(ValueError):
    """The text ``json.Unmarshal`` would have returned."""


def dumps_indent(value: Any, indent: str = "") -> str:
    """``json.MarshalIndent(value, "", "  ")`` for None, bool, int, str, list, dict."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return go_json_string(value)
    inner = indent + "  "
    if isinstance(value, list):
        if not value:
            return "[]"
        items = ",\n".join(inner + dumps_indent(v, inner) for v in value)
        return f"[\n{items}\n{indent}]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ",\n".join(
            f"{inner}{go_json_string(str(k))}: {dumps_indent(v, inner)}" for k, v in value.items()
        )
        return f"{{\n{items}\n{indent}}}"
    raise TypeError(f"cannot encode {type(value).__name__}")


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def go_json_string(s: str) -> str:
    """A JSON string as Go writes it: HTML-safe (``<>&`` as ``\\u003c``...), other
    control characters and U+2028/U+2029 as ``\\u00XX``."""
    out = ['"']
    for ch in s:
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ch < " " or ch in "<>&\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")  # a lone surrogate: Go writes invalid UTF-8 as U+FFFD
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_ARTIFACT_FIELDS: dict[str, str] = {
    "name": "string",
    "builder_type": "string",
    "build_time": "int64",
    "files": "[]manifest.ArtifactFile",
    "artifact_id": "string",
    "packer_run_uuid": "string",
    "custom_data": "map[string]string",
}
_FILE_FIELDS = {"name": "string", "size": "int64"}


def unmarshal_manifest(data: bytes) -> dict[str, Any]:
    """Read a manifest as Packer's ``json.Unmarshal`` into its structs does: unknown
    keys dropped, keys matched regardless of case, Go's error for a wrong type."""
    import json

    from imagesmith.template.jsonparse import (
        DuplicateKeyError,
        JSONSyntaxError,
        JSONValueError,
        loads,
    )

    try:
        doc = loads(data)
    except JSONSyntaxError as e:
        raise GoJSONError(e.message) from None
    except JSONValueError as e:
        raise GoJSONError(str(e)) from None
    except DuplicateKeyError:
        doc = json.loads(data)  # Go lets the last of duplicate keys win

    manifest: dict[str, Any] = {"builds": None, "last_run_uuid": ""}
    if doc is None:
        return manifest
    if not isinstance(doc, dict):
        raise _type_error(doc, "", "", "manifest.ManifestFile")
    for key, value in doc.items():
        name = _field(key, ("builds", "last_run_uuid"))
        if name == "last_run_uuid":
            manifest[name] = _scalar(value, "string", "ManifestFile", name, manifest[name])
        elif name == "builds":
            manifest[name] = _builds(value)
    return manifest


def _builds(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _type_error(value, "ManifestFile", "builds", "[]manifest.Artifact")
    builds = []
    for item in value:
        entry: dict[str, Any] = {
            "name": "",
            "builder_type": "",
            "build_time": 0,
            "files": None,
            "artifact_id": "",
            "packer_run_uuid": "",
            "custom_data": None,
        }
        if item is not None and not isinstance(item, dict):
            raise _type_error(item, "ManifestFile", "builds", "manifest.Artifact")
        for key, v in (item or {}).items():
            name = _field(key, tuple(_ARTIFACT_FIELDS))
            if name is None:
                continue
            path = f"builds.{name}"
            if name == "files":
                entry[name] = _files(v)
            elif name == "custom_data":
                entry[name] = _string_map(v, entry[name])
            else:
                entry[name] = _scalar(v, _ARTIFACT_FIELDS[name], "Artifact", path, entry[name])
        builds.append(entry)
    return builds


def _files(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _type_error(value, "Artifact", "builds.files", "[]manifest.ArtifactFile")
    files = []
    for item in value:
        if item is not None and not isinstance(item, dict):
            raise _type_error(item, "Artifact", "builds.files", "manifest.ArtifactFile")
        entry: dict[str, Any] = {"name": "", "size": 0}
        for key, v in (item or {}).items():
            name = _field(key, tuple(_FILE_FIELDS))
            if name is not None:
                path = f"builds.files.{name}"
                entry[name] = _scalar(v, _FILE_FIELDS[name], "ArtifactFile", path, entry[name])
        files.append(entry)
    return files


def _string_map(value: Any, current: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _type_error(value, "Artifact", "builds.custom_data", "map[string]string")
    out = dict(current or {})
    for key, v in value.items():
        out[key] = _scalar(v, "string", "Artifact", "builds.custom_data", "")
    # Go writes map keys sorted.
    return dict(sorted(out.items()))


def _field(key: str, names: tuple[str, ...]) -> str | None:
    if key in names:
        return key
    folded = key.casefold()
    return next((n for n in names if n.casefold() == folded), None)


def _scalar(value: Any, go_type: str, struct: str, path: str, current: Any) -> Any:
    if value is None:
        return current
    if go_type == "string" and isinstance(value, str):
        return value
    if go_type == "int64" and isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not value.is_integer():
            raise _type_error(value, struct, path, go_type, number=True)
        return int(value)
    raise _type_error(value, struct, path, go_type)


def _type_error(
    value: Any, struct: str, path: str, go_type: str, *, number: bool = False
) -> GoJSONError:
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int | float):
        kind = f"number {value!r}" if number else "number"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, list):
        kind = "array"
    else:
        kind = "object"
    where = f"Go struct field {struct}.{path}" if struct else "Go value"
    return GoJSONError(f"json: cannot unmarshal {kind} into {where} of type {go_type}")

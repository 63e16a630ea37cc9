"""``checksum`` post-processor: write checksums of the artifact's files.

For each checksum type and each file it appends ``<hex>\\t<basename>\\n`` to the file
``output`` names (rendered per type with ``.BuildName``, ``.BuilderType`` and
``.ChecksumType``, default ``packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum``),
so repeated runs accumulate lines, as in Packer. Its artifact lists the input files
plus every checksum file it created; destroying that artifact deletes them all.

Files are hashed in a worker thread, in chunks, so large images neither block the
other builds nor sit in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from imagesmith.config.fields import opt
from imagesmith.engine.artifact import Artifact
from imagesmith.errors import BuildError, ConfigError
from imagesmith.plugins import PostProcessor
from imagesmith.provisioners.localshell import check_syntax, go_os_error

if TYPE_CHECKING:
    from imagesmith.ui.base import Ui

BUILDER_ID = "packer.post-processor.checksum"
DEFAULT_OUTPUT = "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum"
HASHES: dict[str, Callable[[], Any]] = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha224": hashlib.sha224,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
CHUNK = 1 << 20


@dataclass
class ChecksumConfig:
    # None (not given) means md5; an empty list means no checksum at all, as in Packer.
    checksum_types: list[str] | None = None
    # Rendered per checksum type at post-process time.
    output: str = opt("", late=True)


class ChecksumPostProcessor(PostProcessor):
    type_name = "checksum"
    Config: ClassVar[type[ChecksumConfig]] = ChecksumConfig
    config: ChecksumConfig
    keep_default = True
    force_keep = True

    def prepare(self) -> list[str]:
        check_syntax("output", [self.config.output])
        if self.config.checksum_types is None:
            self.config.checksum_types = ["md5"]
        errors = [
            f"Unrecognized checksum type: {t}"
            for t in self.config.checksum_types
            if t not in HASHES
        ]
        if errors:
            raise ConfigError(errors)
        if not self.config.output:
            self.config.output = DEFAULT_OUTPUT
        return []

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        from imagesmith.template.render import RenderError

        generated = dict(artifact.state("generated_data") or {})
        generated["BuildName"] = self.info.name
        generated["BuilderType"] = self.info.builder_type
        files = list(artifact.files)
        created: list[str] = []

        for kind in self.config.checksum_types or []:
            data = {**generated, "ChecksumType": kind}
            for path in artifact.files:
                try:
                    target = self.info.renderer.render(
                        self.config.output, data=data, generated=generated
                    )
                except RenderError as e:
                    raise BuildError(str(e)) from None
                if not os.path.exists(target) and target not in created:
                    created.append(target)
                    files.append(target)
                await asyncio.to_thread(_append_checksum, target, kind, path)

        return checksum_artifact(files)


def checksum_artifact(files: list[str]) -> Artifact:
    async def destroy() -> None:
        for f in files:
            await asyncio.to_thread(remove_all, f)

    return Artifact(
        builder_id=BUILDER_ID,
        id="",
        text=f"Created artifact from files: {', '.join(files)}",
        files=files,
        on_destroy=destroy,
    )


def _append_checksum(target: str, kind: str, path: str) -> None:
    """Append ``path``'s checksum line to ``target`` (in Packer's order of steps, so the
    same failures leave the same files behind)."""
    parent = os.path.dirname(target) or "."
    try:
        os.makedirs(parent, 0o755, exist_ok=True)
    except OSError as e:
        raise BuildError(f"unable to create dir: {go_os_error('mkdir', parent, e)}") from None
    try:
        out = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        raise BuildError(
            f"unable to create file {target}: {go_os_error('open', target, e)}"
        ) from None
    try:
        try:
            f = open(path, "rb")  # noqa: SIM115 - open and read fail with different texts
        except OSError as e:
            raise BuildError(
                f"unable to open file {path}: {go_os_error('open', path, e)}"
            ) from None
        h = HASHES[kind]()
        try:
            with f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except OSError:
            raise BuildError(f"unable to compute {kind} hash for {path}") from None
        os.write(out, f"{h.hexdigest()}\t{os.path.basename(path)}\n".encode())
    finally:
        os.close(out)


def remove_all(path: str) -> None:
    """Go's ``os.RemoveAll``: a file or a tree, and no error if it is already gone."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)

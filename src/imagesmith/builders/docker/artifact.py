"""Docker artifacts, with Packer's builder ids, ids and texts.

- A committed (or imported, tagged, pushed) image: ``ImageArtifact``. Its text is
  ``Imported Docker image: <id>``, plus `` with tags a b`` once tags are known.
  Destroying it removes the image (by id, or by the last tag it was given).
- An exported (or discarded) container: id ``Container``, text
  ``Exported Docker file: <path>``, one file (``""`` when discarded, as Packer lists
  it); destroying it deletes the file.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from imagesmith.engine.artifact import Artifact

BUILDER_ID = "packer.docker"
IMPORT_ID = "packer.post-processor.docker-import"
TAG_ID = "packer.post-processor.docker-tag"
SAVE_ID = "packer.post-processor.docker-save"


def image_text(image: str, tags: list[str] | None) -> str:
    if not tags:
        return f"Imported Docker image: {image}"
    return f"Imported Docker image: {image} with tags {' '.join(tags)}"


def image_artifact(
    builder_id: str,
    image: str,
    *,
    tags: list[str] | None = None,
    generated_data: dict[str, Any] | None = None,
) -> Artifact:
    """An artifact naming an image in the local Docker engine."""

    async def destroy() -> None:
        from imagesmith.builders.docker import client as dc

        engine = await dc.call(dc.connect)
        try:
            await dc.call(engine.remove_image, image)
        except Exception as e:
            if not dc.is_not_found(e):
                raise

    state: dict[str, Any] = {}
    if tags is not None:
        state["docker_tags"] = list(tags)
    return Artifact(
        builder_id=builder_id,
        id=image,
        text=image_text(image, tags),
        generated_data=dict(generated_data or {}),
        extra_state=state,
        on_destroy=destroy,
    )


def export_artifact(path: str, generated_data: dict[str, Any]) -> Artifact:
    async def destroy() -> None:
        if path:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)

    return Artifact(
        builder_id=BUILDER_ID,
        id="Container",
        text=f"Exported Docker file: {path}",
        files=[path],
        generated_data=dict(generated_data),
        on_destroy=destroy,
    )

"""``docker-save``: write the built image to a tar file (``docker save``), with
Packer 1.6.6's texts. The input artifact is passed on unchanged."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from imagesmith.builders.docker.artifact import IMPORT_ID, TAG_ID
from imagesmith.errors import BuildError, ConfigError
from imagesmith.plugins import PostProcessor

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.ui.base import Ui


@dataclass
class DockerSaveConfig:
    path: str = ""


class DockerSavePostProcessor(PostProcessor):
    type_name = "docker-save"
    Config: ClassVar[type[DockerSaveConfig]] = DockerSaveConfig
    config: DockerSaveConfig
    keep_default = True

    def prepare(self) -> list[str]:
        if not self.config.path:
            raise ConfigError(["path must be specified"])
        return []

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        from imagesmith.builders.docker import client as dc

        if artifact.builder_id not in (IMPORT_ID, TAG_ID):
            raise BuildError(
                f"Unknown artifact type: {artifact.builder_id}\n"
                "Can only save Docker builder artifacts."
            )
        path = self.config.path
        try:
            out = open(path, "wb")  # noqa: SIM115 - closed below, removed on failure
        except OSError as e:
            raise BuildError(f"Error creating output file: {e}") from None
        ui.message(f"Saving image: {artifact.id}")
        client = await dc.call(dc.connect)
        try:
            await dc.call(_save, client, artifact.id, out)
        except BaseException as e:
            out.close()
            with contextlib.suppress(OSError):
                os.remove(path)
            if isinstance(e, Exception) and dc.is_api_error(e):
                raise BuildError(f"Error saving image: {dc.explain(e)}") from None
            raise
        finally:
            client.close()
        out.close()
        ui.message(f"Saved to: {path}")
        return artifact


def _save(client: Any, image: str, out: Any) -> None:
    for chunk in client.save(image):
        out.write(chunk)

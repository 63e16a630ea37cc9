"""``docker-import``: import a container tar file (the docker builder's ``export_path``,
or an ``artifice`` file) as an image, with Packer 1.6.6's texts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from imagesmith.builders.docker.artifact import BUILDER_ID, IMPORT_ID, image_artifact
from imagesmith.builders.docker.config import check_changes
from imagesmith.errors import BuildError, ConfigError
from imagesmith.plugins import PostProcessor

if TYPE_CHECKING:
    from imagesmith.builders.docker.client import Engine
    from imagesmith.engine.artifact import Artifact
    from imagesmith.ui.base import Ui

ARTIFICE_ID = "packer.post-processor.artifice"


@dataclass
class DockerImportConfig:
    repository: str = ""
    tag: str = ""
    changes: list[str] = field(default_factory=list)


class DockerImportPostProcessor(PostProcessor):
    type_name = "docker-import"
    Config: ClassVar[type[DockerImportConfig]] = DockerImportConfig
    config: DockerImportConfig
    keep_default = False

    def prepare(self) -> list[str]:
        errs = check_changes(self.config.changes)
        if errs:
            raise ConfigError(errs)
        return []

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        from imagesmith.builders.docker import client as dc

        if artifact.builder_id not in (BUILDER_ID, ARTIFICE_ID):
            raise BuildError(
                f"Unknown artifact type: {artifact.builder_id}\n"
                "Can only import from Docker builder and Artifice post-processor artifacts. "
                "If you are getting this error after having run the docker builder, it may "
                "be because you set commit: true in your Docker builder, so the image is "
                "already imported. "
            )
        if not artifact.files or not artifact.files[0]:
            raise BuildError("The artifact has no file to import.")
        repo = self.config.repository
        name = f"{repo}:{self.config.tag}" if self.config.tag else repo
        ui.message(f"Importing image: {artifact.id}")
        ui.message(f"Repository: {name}")
        client = await dc.call(dc.connect)
        try:
            image_id = await dc.call(_import, client, artifact.files[0], name, self.config)
        except OSError as e:
            raise BuildError(f"Error importing image: {e}") from None
        except Exception as e:
            if not dc.is_api_error(e):
                raise
            raise BuildError(f"Error importing image: {dc.explain(e)}") from None
        finally:
            client.close()
        ui.message(f"Imported ID: {image_id}")
        return image_artifact(IMPORT_ID, name, generated_data=artifact.generated_data)


def _import(client: Engine, path: str, name: str, config: DockerImportConfig) -> str:
    """Import the tar at ``path``; the new image's id."""
    from imagesmith.builders.docker import client as dc

    with open(path, "rb") as source:
        events = client.import_image(
            source, config.repository or None, config.tag or None, config.changes
        )
        for event in events:
            if "error" in event:
                raise BuildError(f"Error importing image: {str(event['error']).strip()}")
            status = str(event.get("status") or "")
    if config.repository:
        return str(client.inspect_image(name)["Id"])
    return dc.image_id_from_status(status)

"""``docker-tag``: give the image a build produced a repository name and tags.

Packer 1.6.6's behaviour and texts; ``tag`` (the old name of ``tags``) still works and
prints Packer's deprecation warning. ``repository`` is required at validate time
(Packer let the daemon reject an empty one at the end of the build).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from imagesmith.builders.docker.artifact import IMPORT_ID, TAG_ID, image_artifact
from imagesmith.errors import BuildError, ConfigError
from imagesmith.plugins import PostProcessor

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.ui.base import Ui

DEPRECATION = (
    'Deprecation warning: "tag" option has been replaced with "tags". In future versions '
    "of Packer, this configuration may not work. Please call `packer fix` on your template "
    "to update."
)


@dataclass
class DockerTagConfig:
    repository: str = ""
    tag: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    force: bool = False


class DockerTagPostProcessor(PostProcessor):
    type_name = "docker-tag"
    Config: ClassVar[type[DockerTagConfig]] = DockerTagConfig
    config: DockerTagConfig
    # Tagging an image and then deleting it would be pointless (Packer forces keep).
    keep_default = True
    force_keep = True

    def prepare(self) -> list[str]:
        if not self.config.repository:
            raise ConfigError(["repository must be specified"])
        return []

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        from imagesmith.builders.docker import client as dc

        if self.config.tag:
            ui.say(DEPRECATION)
        if artifact.builder_id not in (TAG_ID, IMPORT_ID):
            raise BuildError(
                f"Unknown artifact type: {artifact.builder_id}\n"
                "Can only tag from Docker builder artifacts."
            )
        repo = self.config.repository
        wanted: list[str | None] = [*self.config.tags, *self.config.tag] or [None]
        client = await dc.call(dc.connect)
        tagged: list[str] = []
        try:
            for tag in wanted:
                name = f"{repo}:{tag}" if tag is not None else repo
                ui.message(f"Tagging image: {artifact.id}")
                ui.message(f"Repository: {name}")
                target, version = (repo, tag) if tag is not None else dc.split_repo_tag(repo)
                try:
                    # Tagging moves an existing tag (what ``force`` asked of old engines).
                    await dc.call(client.tag, artifact.id, target, version)
                except Exception as e:
                    if not dc.is_api_error(e):
                        raise
                    raise BuildError(f"Error tagging image: {dc.explain(e)}") from None
                if tag is not None:
                    tagged.append(name)
        finally:
            client.close()
        last = tagged[-1] if tagged else repo
        return image_artifact(TAG_ID, last, tags=tagged, generated_data=artifact.generated_data)

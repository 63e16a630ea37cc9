"""``docker-push``: push a tagged image to its registry, with Packer 1.6.6's texts.

Login (``login``, or ``ecr_login`` with an Amazon ECR ``login_server``) lasts for this
push only: with the Engine API the credentials live in this process's client and are
never written to ``~/.docker/config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagesmith.builders.docker.artifact import IMPORT_ID, TAG_ID, image_artifact
from imagesmith.builders.docker.ecr import AwsAccessConfig, check_server, ecr_credentials
from imagesmith.config.fields import opt
from imagesmith.errors import BuildError, ConfigError
from imagesmith.plugins import PostProcessor

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.ui.base import Ui


@dataclass
class DockerPushConfig:
    aws: AwsAccessConfig = opt(default_factory=AwsAccessConfig, squash=True)
    login: bool = False
    login_username: str = ""
    login_password: str = opt("", secret=True)
    login_server: str = ""
    ecr_login: bool = False


class DockerPushPostProcessor(PostProcessor):
    type_name = "docker-push"
    Config: ClassVar[type[DockerPushConfig]] = DockerPushConfig
    config: DockerPushConfig
    keep_default = True

    def prepare(self) -> list[str]:
        if self.config.ecr_login:
            problem = check_server(self.config.login_server)
            if problem:
                raise ConfigError([problem])
        return []

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        from imagesmith.builders.docker import client as dc

        if artifact.builder_id not in (IMPORT_ID, TAG_ID):
            raise BuildError(
                f"Unknown artifact type: {artifact.builder_id}\n"
                "Can only import from docker-import and docker-tag artifacts."
            )
        c = self.config
        username, password = c.login_username, c.login_password
        if c.ecr_login:
            ui.message("Fetching ECR credentials...")
            username, password = await ecr_credentials(c.login_server, c.aws)
        tags = [str(t) for t in artifact.state("docker_tags") or []]
        names = [artifact.id, *tags]
        client = await dc.call(dc.connect)
        logged_in = False
        try:
            if c.login or c.ecr_login:
                ui.message("Logging in...")
                try:
                    await dc.login(client, c.login_server, username, password)
                except BuildError as e:
                    raise BuildError(f"Error logging in to Docker: {e}") from None
                logged_in = True
            for name in names:
                ui.message(f"Pushing: {name}")
                await dc.push(client, name)
        finally:
            if logged_in:
                ui.message("Logging out...")
                dc.logout(client, c.login_server)
            client.close()
        return image_artifact(
            IMPORT_ID, names[0], tags=tags, generated_data=artifact.generated_data
        )

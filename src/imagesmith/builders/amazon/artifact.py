"""The AMIs a build made, as an artifact (Packer's amazon Artifact)."""

from __future__ import annotations

from typing import Any

from imagesmith.builders.amazon.aws import AwsError, AwsSession
from imagesmith.builders.amazon.images import destroy_image
from imagesmith.engine.artifact import Artifact
from imagesmith.errors import BuildError, format_packer_multierror

BUILDER_ID = "mitchellh.amazonebs"


def artifact_id(amis: dict[str, str]) -> str:
    return ",".join(f"{region}:{ami}" for region, ami in sorted(amis.items()))


def artifact_text(amis: dict[str, str]) -> str:
    lines = [f"{region}: {ami}" for region, ami in sorted(amis.items())]
    return "AMIs were created:\n" + "\n".join(lines) + "\n"


class AMIArtifact(Artifact):
    """``id`` is ``region:ami,...`` sorted; ``destroy`` deregisters every AMI and deletes
    its snapshots (post-processors call it when the input artifact is not kept)."""

    def __init__(
        self, amis: dict[str, str], aws: AwsSession, generated_data: dict[str, Any]
    ) -> None:
        super().__init__(
            builder_id=BUILDER_ID,
            id=artifact_id(amis),
            text=artifact_text(amis),
            generated_data=generated_data,
            extra_state={
                "atlas.artifact.metadata": {f"region.{r}": ami for r, ami in amis.items()}
            },
        )
        self.amis = dict(amis)
        self._aws = aws

    async def destroy(self) -> None:
        errors = []
        for region, ami in sorted(self.amis.items()):
            try:
                await destroy_image(self._aws, region, ami)
            except AwsError as e:
                errors.append(f"Error deregistering AMI {ami} in {region}: {e}")
        if errors:
            raise BuildError(format_packer_multierror(errors))

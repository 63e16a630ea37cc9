"""The data late fields are rendered with: ``{{ .SourceAMI }}``, ``{{ .BuildRegion }}``...

Packer renders ``ami_description`` and the tag maps when the step that uses them runs,
with the source AMI's facts. Before the source AMI is known only ``BuildRegion`` has
a value. Tag keys are rendered as well as their values.
"""

from __future__ import annotations

from typing import Any

from imagesmith.builders.amazon.state import EBSState, Json
from imagesmith.ui.base import Ui

#: Keys this builder adds to the build data (``{{ build `SourceAMI` }}``).
GENERATED_KEYS = (
    "SourceAMIName",
    "BuildRegion",
    "SourceAMI",
    "SourceAMICreationDate",
    "SourceAMIOwner",
    "SourceAMIOwnerName",
)


def template_data(region: str, image: Json | None) -> dict[str, Any]:
    image = image or {}
    return {
        "BuildRegion": region,
        "SourceAMI": image.get("ImageId", ""),
        "SourceAMICreationDate": image.get("CreationDate", ""),
        "SourceAMIName": image.get("Name", ""),
        "SourceAMIOwner": image.get("OwnerId", ""),
        "SourceAMIOwnerName": image.get("ImageOwnerAlias", ""),
        "SourceAMITags": {t["Key"]: t["Value"] for t in image.get("Tags", []) or []},
    }


def generated_data(region: str, image: Json | None) -> dict[str, str]:
    data = template_data(region, image)
    return {key: str(data[key]) for key in GENERATED_KEYS}


def render(state: EBSState, text: str) -> str:
    """Render a late field with the build's template data."""
    if "{{" not in text:
        return text
    data = template_data(state.region, state.source_image)
    return state.renderer.render(text, data=data)


def render_tags(state: EBSState, tags: dict[str, str]) -> dict[str, str]:
    return {render(state, k): render(state, v) for k, v in tags.items()}


def report_tags(ui: Ui, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        ui.message(f'Adding tag: "{key}": "{value}"')


def ec2_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]

"""What stops a rehearsal before it starts, said in one sentence, with nothing left."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from conftest import rehearsal_containers
from imagesmith.errors import ImagesmithError
from imagesmith.rehearse import seam
from imagesmith.rehearse.cli import prepare_rehearsal

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("base_images")]

EBS = {
    "type": "amazon-ebs",
    "region": "us-east-1",
    "source_ami": "ami-5e414e24",
    "instance_type": "t2.micro",
    "ssh_username": "ec2-user",
    "ami_name": "x {{timestamp}}",
}


def _plan(tmp_path: Path, builders: list[dict[str, Any]]) -> Any:
    from imagesmith.template.planner import load_plan

    path = tmp_path / "template.json"
    path.write_text(json.dumps({"builders": builders}))
    plan = load_plan(
        str(path),
        vars=[],
        var_files=[],
        only=[],
        except_=[],
        debug=False,
        force=False,
        on_error="cleanup",
        run_uuid=str(uuid.uuid4()),
    )
    assert not plan.has_errors, plan.diagnostics
    return plan


def _refused(plan: Any, **kwargs: Any) -> str:
    said: list[str] = []
    with pytest.raises(ImagesmithError) as err:
        asyncio.run(prepare_rehearsal(plan, say=said.append, **kwargs))
    assert said == []  # refused before anything started or was announced
    assert seam.active() is None
    return str(err.value)


def test_template_without_amazon_builds(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [{"type": "null", "communicator": "none"}])
    assert (
        _refused(plan)
        == "-rehearse runs amazon-ebs builds, and this template has none (its builders: null)."
    )


def test_stand_in_image_missing_from_the_engine(tmp_path: Path, docker_client: Any) -> None:
    plan = _plan(tmp_path, [EBS])
    message = _refused(plan, image="imagesmith-test/absent:1")
    assert message == (
        "The image imagesmith-test/absent:1 that stands in for a source AMI is not on the "
        "local Docker engine: docker pull or build it, or choose another with -rehearse-image."
    )
    assert rehearsal_containers(docker_client) == []


def test_bad_map_file_is_named(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [EBS])
    bad = tmp_path / "map.json"
    bad.write_text(json.dumps({"sources": [{"family": "arch"}]}))
    message = _refused(plan, map_path=str(bad))
    assert message.startswith(f"{bad}: sources[0].family 'arch' is not one of")


def test_unreachable_docker_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(tmp_path, [EBS])
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    message = _refused(plan)
    assert message.startswith("A rehearsal runs instances on the local Docker engine, which cannot")
    assert message.endswith("start dockerd, or run scripts/quickstart.sh.")


def test_other_builders_run_as_usual_and_environment_is_restored(tmp_path: Path) -> None:
    plan = _plan(tmp_path, [EBS, {"type": "null", "communicator": "none"}])
    before = os.environ.get("AWS_ENDPOINT_URL")
    said: list[str] = []

    async def scenario() -> None:
        rehearsal = await prepare_rehearsal(plan, say=said.append)
        try:
            target = seam.active()
            assert target is not None and target.endpoint_url == rehearsal.endpoint_url
            assert os.environ["AWS_ENDPOINT_URL"] == rehearsal.endpoint_url
            assert "AWS_SESSION_TOKEN" not in os.environ
        finally:
            await rehearsal.close()

    asyncio.run(scenario())
    assert seam.active() is None
    assert os.environ.get("AWS_ENDPOINT_URL") == before
    assert "==> Rehearsal: Builds of type null run as usual: a rehearsal only emulates EC2." in said
    notices = [s for s in said if "is of no family the rehearsal knows" in s]
    assert len(notices) == 1 and "ami-5e414e24" in notices[0]

"""The shipped example, rehearsed through the CLI exactly as the quick start runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import rehearsal_containers, rehearsal_loops
from imagesmith.rehearse.images import AMAZON_STANDIN_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.aws, pytest.mark.usefixtures("base_images")]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ecs-ami"


def test_ecs_ami_example_rehearses_and_leaves_nothing(tmp_path: Path, docker_client: Any) -> None:
    workdir = tmp_path / "ecs-ami"
    # Without the manifest a quick-start run left there: the manifest post-processor
    # appends to an existing file, as Packer's does.
    shutil.copytree(EXAMPLE, workdir, ignore=shutil.ignore_patterns("manifest.json"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagesmith",
            "build",
            "-color=false",
            "-rehearse",
            f"-rehearse-image={AMAZON_STANDIN_IMAGE}",
            "packer.json",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr

    # The provisioners really ran over SSH in the instance container.
    assert "    amazon-ebs: ### Configuring Docker Volume Storage ###" in out
    assert "rehearsal: /dev/xvdcy formatted, not mounted" in out
    assert "    amazon-ebs: timezone is US/Eastern" in out
    assert "    amazon-ebs: cleanup-ok" in out
    assert "==> amazon-ebs: Uploading files/firstrun.sh => /home/ec2-user/firstrun.sh" in out

    manifest = json.loads((workdir / "manifest.json").read_text())
    (build,) = manifest["builds"]
    assert build["rehearsal"] is True
    region, ami = build["artifact_id"].split(":")
    assert region == "us-east-1" and re.fullmatch(r"ami-[0-9a-f]+", ami)

    # The AMI is a local image holding what the provisioners left.
    image = f"imagesmith-rehearsal/{ami}:latest"
    try:
        listing = docker_client.containers.run(
            image,
            ["sh", "-c", "cat /home/ec2-user/firstrun.sh >/dev/null && readlink /etc/localtime"],
            entrypoint=[],
            network_mode="none",
            remove=True,
        ).decode()
        assert listing.strip().endswith("US/Eastern")
        assert not docker_client.containers.run(
            image, ["ls", "/run/imagesmith"], entrypoint=[], network_mode="none", remove=True
        ).strip(), "the rehearsal marker must not reach the image"
    finally:
        docker_client.images.remove(image, force=True)
        for tag in docker_client.images.list(name=f"imagesmith-rehearsal/{ami}"):
            docker_client.images.remove(tag.id, force=True)

    assert rehearsal_containers(docker_client) == []
    assert rehearsal_loops() == []

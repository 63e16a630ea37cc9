"""The seed template end to end: the AMI, its tags, its snapshots, and nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from amazon.harness import (
    Leftovers,
    Project,
    forget_images,
    imagesmith,
    leftovers,
    normalise,
    own_images,
    run,
    tags_of,
)
from fixtures.moto import MotoServer

pytestmark = [pytest.mark.aws, pytest.mark.ssh]

REFERENCE = Path("/work/shared/reference/packer-1.6.6-amazon-ebs-build.txt")
MANIFEST = Path("/work/shared/reference/packer-1.6.6-manifest.json")
MACHINE_READABLE = Path("/work/shared/reference/packer-1.6.6-amazon-ebs-build-machine-readable.txt")


def test_seed_build_makes_the_ami_and_leaves_nothing_else(
    project: Project,
    aws_env: dict[str, str],
    emulator: MotoServer,
    remote_dir: Path,
    baseline: Leftovers,
) -> None:
    result = run(
        imagesmith("build", "-color=false", str(project.write())), cwd=project.root, env=aws_env
    )

    assert result.rc == 0, result.out
    images = own_images(emulator)
    images = [i for i in images if i["Name"] == project.builder["ami_name"]]
    assert len(images) == 1
    image = images[0]
    assert tags_of(image) == {
        "Name": "Docker in AWS ECS Base Image 2017.09.h",
        "SourceAMI": "ami-760aaa0f",
        "DockerVersion": "17.09.1-ce",
        "ECSAgentVersion": "1.17.0-2",
    }
    snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    assert snapshots
    described = emulator.ec2().describe_snapshots(SnapshotIds=snapshots)["Snapshots"]
    for snapshot in described:
        # tags land on the snapshots too (Packer's behaviour); the run id they carried
        # while the build lasted is gone, as from the AMI.
        assert tags_of(snapshot)["Name"] == "Docker in AWS ECS Base Image 2017.09.h"
        assert "imagesmith:run-id" not in tags_of(snapshot)
    assert f"us-east-1: {image['ImageId']}" in result.out
    assert (remote_dir / "firstrun.sh").read_text() == "#!/bin/sh\necho first run\n"

    left = leftovers(emulator, keep_images=(image["ImageId"],), baseline=baseline)
    assert left.empty(), left
    assert not list((Path(aws_env["IMAGESMITH_STATE_DIR"]) / "journal").glob("*.jsonl"))


def _reference_build(
    project: Project, env: dict[str, str], emulator: MotoServer, flag: str
) -> tuple[Any, list[str]]:
    """Build the template of Packer's reference runs (no cleanup.sh provisioner, the
    manifest post-processor); returns the run and its output lines in the reference's
    terms (its port, user and remote directory)."""
    # The reference's AMI name has a one-second resolution: an AMI of an earlier test of
    # the same second would take the name.
    forget_images(emulator, "docker-in-aws-ecs ")
    template = project.variant(ami_name="docker-in-aws-ecs {{timestamp}}")
    template["provisioners"] = [p for p in template["provisioners"] if "cleanup" not in str(p)]
    template["post-processors"] = [
        {"type": "manifest", "output": "manifest.json", "strip_path": True}
    ]
    result = run(imagesmith("build", flag, str(project.write(template))), cwd=project.root, env=env)
    assert result.rc == 0, result.out
    port = str(project.builder["ssh_port"])
    remote = template["provisioners"][-1]["destination"].rsplit("/", 1)[0]
    lines = [
        _timestamp(line).replace(port, "2222").replace(remote, "/home/ec2-user")
        .replace("istest", "ec2-user")
        for line in normalise(result.out)
    ]  # fmt: skip
    return result, lines


def _reference(path: Path) -> list[str]:
    return [_timestamp(line) for line in normalise(path.read_text())]


def _timestamp(line: str) -> str:
    return re.sub(r"^\d{10},", "<ts>,", line)


def test_seed_output_and_manifest_match_packer_reference(
    project: Project, aws_env: dict[str, str], emulator: MotoServer
) -> None:
    _, lines = _reference_build(project, aws_env, emulator, "-color=false")

    assert lines == [line for line in _reference(REFERENCE) if not line.startswith("exit status")]
    manifest = json.loads((project.root / "manifest.json").read_text())
    reference = json.loads(MANIFEST.read_text())
    (build,) = manifest["builds"]
    assert sorted(build) == sorted(reference["builds"][0])
    assert build["name"] == "amazon-ebs" and build["builder_type"] == "amazon-ebs"
    assert build["files"] is None and build["custom_data"] is None
    assert re.fullmatch(r"us-east-1:ami-[0-9a-f]{17}", build["artifact_id"])
    assert manifest["last_run_uuid"] == build["packer_run_uuid"]


def test_machine_readable_output_matches_packer_reference(
    project: Project, aws_env: dict[str, str], emulator: MotoServer
) -> None:
    _, lines = _reference_build(project, aws_env, emulator, "-machine-readable")

    assert lines == _reference(MACHINE_READABLE)

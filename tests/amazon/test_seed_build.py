"""The seed template end to end: the AMI, its tags, its snapshots, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from amazon.harness import (
    Leftovers,
    Project,
    imagesmith,
    leftovers,
    normalise,
    own_images,
    run,
    tags_of,
)
from fixtures.moto import FaultProxy, MotoServer

pytestmark = [pytest.mark.aws, pytest.mark.ssh]

REFERENCE = Path("/work/shared/reference/packer-1.6.6-amazon-ebs-build.txt")


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
        # tags land on the snapshots too (Packer's behaviour)
        assert tags_of(snapshot)["Name"] == "Docker in AWS ECS Base Image 2017.09.h"
    assert f"us-east-1: {image['ImageId']}" in result.out
    assert (remote_dir / "firstrun.sh").read_text() == "#!/bin/sh\necho first run\n"

    left = leftovers(emulator, keep_images=(image["ImageId"],), baseline=baseline)
    assert left.empty(), left
    assert not list((Path(aws_env["IMAGESMITH_STATE_DIR"]) / "journal").glob("*.jsonl"))


def test_seed_output_matches_packer_reference(
    project: Project, aws_env: dict[str, str], aws_proxy: FaultProxy
) -> None:
    # The reference run had no cleanup.sh provisioner.
    template = project.variant(ami_name="docker-in-aws-ecs {{timestamp}}")
    template["provisioners"] = [p for p in template["provisioners"] if "cleanup" not in str(p)]
    result = run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 0, result.out
    expected = normalise(REFERENCE.read_text())
    got = normalise(result.out)
    # The reference ran with a manifest post-processor and ec2-user's home; compare
    # the build's own lines.
    expected = [
        line.replace("2222", "<port>").replace("/home/ec2-user", "<remote>")
        for line in expected
        if "post-processor" not in line and not line.startswith("exit status")
    ]
    port = str(project.builder["ssh_port"])
    remote = template["provisioners"][-1]["destination"].rsplit("/", 1)[0]
    got = [
        line.replace(port, "<port>").replace(remote, "<remote>").replace("istest", "ec2-user")
        for line in got
    ]
    assert got == _one_artifact(expected)


def _one_artifact(lines: list[str]) -> list[str]:
    """The reference without its second artifact block (the manifest post-processor
    keeps the input artifact, so Packer listed the AMI twice)."""
    first = lines.index("--> amazon-ebs: AMIs were created:")
    second = lines.index("--> amazon-ebs: AMIs were created:", first + 1)
    return lines[:second]

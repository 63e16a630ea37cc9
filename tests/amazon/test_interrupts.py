"""Interrupts: SIGINT/SIGTERM to the process group at various steps leave nothing
behind; after SIGKILL, ``imagesmith cleanup`` removes what the build left."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest

from amazon.harness import (
    Leftovers,
    Project,
    imagesmith,
    leftovers,
    own_images,
    run,
    start,
    tags_of,
    wait_until,
)
from fixtures.moto import FaultProxy, MotoServer

pytestmark = [pytest.mark.aws, pytest.mark.ssh]

SLEEPING = [{"type": "shell", "inline": ["echo provisioning-started", "sleep 60"]}]

# (where, how to hold the build there, the output line that says it is there)
POINTS = [
    ("create-security-group", ("CreateSecurityGroup", 1.5), r"Creating temporary security group"),
    ("run-instances", ("RunInstances", 1.5), r"Launching a source AWS instance"),
    ("instance-wait", ("DescribeInstances", 3.0), r"Waiting for instance .* to become ready"),
    ("provisioning", None, r"provisioning-started"),
    ("create-image", ("CreateImage", 1.5), r"Creating AMI "),
    ("ami-wait", ("DescribeImages", 3.0), r"Waiting for AMI to become ready"),
]


def _journal(env: dict[str, str]) -> Path:
    return Path(env["IMAGESMITH_STATE_DIR"]) / "journal"


@pytest.mark.parametrize(("point", "hold", "line"), POINTS, ids=[p[0] for p in POINTS])
def test_sigint_to_the_process_group_cleans_up(
    project: Project,
    aws_proxy: FaultProxy,
    aws_env: dict[str, str],
    emulator: MotoServer,
    baseline: Leftovers,
    point: str,
    hold: tuple[str, float] | None,
    line: str,
) -> None:
    template = project.variant()
    if point in ("provisioning",):
        template["provisioners"] = SLEEPING
    if hold is not None:
        action, seconds = hold
        # The call is held in the proxy: the interrupt arrives while it is in flight.
        nth = 3 if (point == "ami-wait") else 1
        aws_proxy.delay(action, seconds, nth=nth)

    build = start(imagesmith("build", "-color=false", str(project.write(template))),
                  cwd=project.root, env=aws_env)  # fmt: skip
    build.wait_for(line)
    build.signal_group(signal.SIGINT)
    result = build.finish()

    assert result.rc == 1, result.out
    assert "Cancelling build after receiving interrupt" in result.out
    assert result.out.rstrip().endswith("Cleanly cancelled builds after being interrupted.")
    assert leftovers(emulator, baseline=baseline).empty(), result.out
    assert not list(_journal(aws_env).glob("*.jsonl"))


def test_sigterm_during_the_instance_wait_cleans_up(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    aws_proxy.delay("DescribeInstances", 3.0, nth=1)
    build = start(imagesmith("build", "-color=false", str(project.write())),
                  cwd=project.root, env=aws_env)  # fmt: skip
    build.wait_for(r"Waiting for instance .* to become ready")
    build.signal_group(signal.SIGTERM)
    result = build.finish()

    assert result.rc == 1
    assert "Cancelling build after receiving terminated" in result.out
    assert "==> amazon-ebs: Terminating the source AWS instance..." in result.out
    assert leftovers(emulator, baseline=baseline).empty(), result.out


def _killed_build(project: Project, aws_proxy: FaultProxy, env: dict[str, str], at: str) -> None:
    """Start the build, SIGKILL its process group once it is at ``at``."""
    template = project.variant()
    if at == "provisioning":
        template["provisioners"] = SLEEPING
        line = "provisioning-started"
    else:
        aws_proxy.delay("DescribeImages", 30.0, nth=3)
        line = "Waiting for AMI to become ready"
    build = start(imagesmith("build", "-color=false", str(project.write(template))),
                  cwd=project.root, env=env)  # fmt: skip
    build.wait_for(line)
    build.signal_group(signal.SIGKILL)
    build.finish()
    aws_proxy.clear()


@pytest.mark.parametrize("at", ["provisioning", "ami-wait"])
def test_cleanup_after_sigkill_removes_everything(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers, at: str,
) -> None:  # fmt: skip
    _killed_build(project, aws_proxy, aws_env, at)
    left = leftovers(emulator, baseline=baseline)
    assert left.instances and left.key_pairs and left.security_groups
    if at == "ami-wait":
        assert left.images
    journals = list(_journal(aws_env).glob("*.jsonl"))
    assert len(journals) == 1

    dry = run(imagesmith("cleanup", "-dry-run"), cwd=project.root, env=aws_env)
    assert dry.rc == 0, dry.out
    assert f"  instance {left.instances[0]} in us-east-1" in dry.out
    assert leftovers(emulator, baseline=baseline) == left

    result = run(imagesmith("cleanup"), cwd=project.root, env=aws_env)

    assert result.rc == 0, result.out
    assert f"Removed instance {left.instances[0]} in us-east-1" in result.out
    assert leftovers(emulator, baseline=baseline).empty(), result.out
    assert not list(_journal(aws_env).glob("*.jsonl"))
    again = run(imagesmith("cleanup"), cwd=project.root, env=aws_env)
    assert again.rc == 0 and "Nothing to clean up." in again.out


def test_cleanup_by_tag_needs_force_without_a_journal(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    _killed_build(project, aws_proxy, aws_env, "provisioning")
    left = leftovers(emulator, baseline=baseline)
    shutil.rmtree(_journal(aws_env))  # the machine that ran the build is gone

    listed = run(imagesmith("cleanup"), cwd=project.root, env=aws_env)
    assert listed.rc == 0, listed.out
    assert "Use -force to remove them" in listed.out
    assert f"  instance {left.instances[0]} in us-east-1" in listed.out
    assert leftovers(emulator, baseline=baseline) == left

    elsewhere = run(imagesmith("cleanup", "-force", "-region=us-west-2"), cwd=project.root,
                    env=aws_env)  # fmt: skip
    assert elsewhere.rc == 0 and "Nothing to clean up." in elsewhere.out
    assert leftovers(emulator, baseline=baseline) == left

    forced = run(imagesmith("cleanup", "-force"), cwd=project.root, env=aws_env)
    assert forced.rc == 0, forced.out
    assert leftovers(emulator, baseline=baseline).empty(), forced.out


def test_tagged_snapshots_of_a_lost_run_are_found_without_their_ami(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    # Killed while it took the run id off what it delivers: the AMI and its snapshots
    # still carry it. Someone deregisters the AMI by hand, and the machine that ran the
    # build (its journal) is gone: only the tag leads to the snapshots now.
    held = aws_proxy.delay("DeleteTags", 30.0)
    build = start(imagesmith("build", "-color=false", str(project.write())),
                  cwd=project.root, env=aws_env)  # fmt: skip
    build.wait_for("Deleting temporary keypair")
    wait_until(lambda: held.fired > 0)
    build.signal_group(signal.SIGKILL)
    build.finish()
    aws_proxy.clear()
    (image,) = [i for i in own_images(emulator) if i["Name"] == project.builder["ami_name"]]
    snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    described = emulator.ec2().describe_snapshots(SnapshotIds=snapshots)["Snapshots"]
    assert all("imagesmith:run-id" in tags_of(s) for s in described)
    emulator.ec2().deregister_image(ImageId=image["ImageId"])
    shutil.rmtree(_journal(aws_env))

    listed = run(imagesmith("cleanup", "-dry-run", "-force"), cwd=project.root, env=aws_env)
    assert listed.rc == 0, listed.out
    for snapshot in snapshots:
        assert f"  snapshot {snapshot} in us-east-1" in listed.out, listed.out

    forced = run(imagesmith("cleanup", "-force"), cwd=project.root, env=aws_env)
    assert forced.rc == 0, forced.out
    for snapshot in snapshots:
        assert f"Removed snapshot {snapshot} in us-east-1" in forced.out, forced.out
    assert leftovers(emulator, baseline=baseline).empty(), forced.out


def test_cleanup_leaves_running_builds_alone(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers
) -> None:
    template = project.variant()
    template["provisioners"] = SLEEPING
    build = start(imagesmith("build", "-color=false", str(project.write(template))),
                  cwd=project.root, env=aws_env)  # fmt: skip
    try:
        build.wait_for("provisioning-started")
        result = run(imagesmith("cleanup", "-force"), cwd=project.root, env=aws_env)
        assert result.rc == 0, result.out
        assert "is still running: its resources are left alone." in result.out
        assert leftovers(emulator, baseline=baseline).instances
    finally:
        build.signal_group(signal.SIGINT)
        build.finish()
    assert leftovers(emulator, baseline=baseline).empty()


def test_journal_records_each_resource_when_created(
    project: Project, aws_env: dict[str, str], aws_proxy: FaultProxy
) -> None:
    template = project.variant()
    template["provisioners"] = SLEEPING
    build = start(imagesmith("build", "-color=false", str(project.write(template))),
                  cwd=project.root, env=aws_env)  # fmt: skip
    try:
        build.wait_for("provisioning-started")
        (path,) = _journal(aws_env).glob("*.jsonl")
        records = [json.loads(line) for line in path.read_text().splitlines()]
        kinds = {r["kind"] for r in records if r["op"] == "add"}
        assert kinds == {"key-pair", "security-group", "instance"}
        assert all(r["region"] == "us-east-1" and r["build"] == "amazon-ebs" for r in records)
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    finally:
        build.signal_group(signal.SIGINT)
        build.finish()
    wait_until(lambda: not list(_journal(aws_env).glob("*.jsonl")), timeout=5)


def test_interrupt_while_copying_removes_the_copies(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    """Packer 1.6.6 leaves the copies in ami_regions behind."""
    template = project.variant(ami_regions=["us-west-2", "eu-west-1"])
    # Hold the wait for the copies (the 4th and 5th DescribeImages).
    aws_proxy.delay("DescribeImages", 3.0, nth=4)
    build = start(imagesmith("build", "-color=false", str(project.write(template))),
                  cwd=project.root, env=aws_env)  # fmt: skip
    build.wait_for("Waiting for all copies to complete")
    aws_proxy.delay("DescribeImages", 3.0, nth=5)
    build.signal_group(signal.SIGINT)
    result = build.finish()

    assert result.rc == 1, result.out
    assert (
        sum(line.startswith("==> amazon-ebs: Deregistered AMI id: ") for line in result.lines) == 3
    )
    regions = ("us-east-1", "us-west-2", "eu-west-1")
    assert leftovers(emulator, regions, baseline=baseline).empty(), result.out


def test_cleanup_says_when_it_could_not_search(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "IMAGESMITH_STATE_DIR": str(tmp_path / "state"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = run(imagesmith("cleanup"), cwd=tmp_path, env=env)

    assert result.rc == 1
    assert "Could not search us-east-1 for tagged resources: Unable to locate credentials" in (
        result.out
    )


def test_tag_search_finds_temporary_iam_resources(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers
) -> None:
    template = project.variant(
        temporary_iam_instance_profile_policy_document={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}],
        }
    )
    template["provisioners"] = SLEEPING
    build = start(imagesmith("build", "-color=false", str(project.write(template))),
                  cwd=project.root, env=aws_env)  # fmt: skip
    build.wait_for("provisioning-started")
    build.signal_group(signal.SIGKILL)
    build.finish()
    left = leftovers(emulator, baseline=baseline)
    assert left.roles and left.instance_profiles
    shutil.rmtree(_journal(aws_env))

    result = run(imagesmith("cleanup", "-force"), cwd=project.root, env=aws_env)

    assert result.rc == 0, result.out
    assert f"Removed iam-role {left.roles[0]} in us-east-1" in result.out
    assert leftovers(emulator, baseline=baseline).empty(), result.out

"""A failure at each step: Packer's error text, exit code 1, and nothing left behind.

The fault proxy answers one call with an error that no retry can fix; whatever the
build had created by then must be gone afterwards, the AMI of a failed wait included
(which Packer 1.6.6 leaves behind), and the journal must be empty.
"""

from __future__ import annotations

from pathlib import Path

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
)
from fixtures.moto import FaultProxy, MotoServer

pytestmark = [pytest.mark.aws, pytest.mark.ssh]

INJECTED = "InvalidParameterValue: injected failure"
ABORT_TRANSCRIPT = Path("/work/shared/reference/amazon-ebs-transcripts/out_abort.txt")
PROVISIONER_FAILS = Path("/work/shared/reference/packer-1.6.6-amazon-ebs-provisioner-fails.txt")

# (action, which call of it, what the build must say)
STEPS = [
    ("DescribeRegions", 1, f"error validating regions: {INJECTED}"),
    ("DescribeImages", 1, f"Error querying AMI: {INJECTED}"),
    ("DescribeImages", 2, f"Error querying AMI: {INJECTED}"),
    ("CreateKeyPair", 1, f"Error creating temporary keypair: {INJECTED}"),
    ("CreateSecurityGroup", 1, f"Error creating temporary security group: {INJECTED}"),
    ("AuthorizeSecurityGroupIngress", 1, f"Error authorizing temporary security group: {INJECTED}"),
    ("RunInstances", 1, f"Error launching source instance: {INJECTED}"),
    ("DescribeInstances", 1, "to become ready: " + INJECTED),
    ("StopInstances", 1, f"Error stopping instance: {INJECTED}"),
    ("DescribeInstances", 2, f"Error waiting for instance to stop: {INJECTED}"),
    ("CreateImage", 1, f"Error creating AMI: {INJECTED}"),
    ("DescribeImages", 3, "Error waiting for AMI: Failed with ResourceNotReady error"),
    ("CreateTags", 1, "Error adding tags to Resources"),
]


@pytest.mark.parametrize(("action", "nth", "message"), STEPS, ids=[f"{a}-{n}" for a, n, _ in STEPS])
def test_failure_at_each_step_cleans_up(
    project: Project,
    aws_proxy: FaultProxy,
    aws_env: dict[str, str],
    emulator: MotoServer,
    baseline: Leftovers,
    action: str,
    nth: int,
    message: str,
) -> None:
    aws_proxy.fail(action, nth=nth, code="InvalidParameterValue", status=400)

    result = run(
        imagesmith("build", "-color=false", str(project.write())), cwd=project.root, env=aws_env
    )

    assert result.rc == 1, result.out
    assert any(line.startswith("==> amazon-ebs: ") and message in line for line in result.lines), (
        result.out
    )
    assert "Build 'amazon-ebs' errored after" in result.out
    assert "==> Builds finished but no artifacts were created." in result.out
    assert leftovers(emulator, baseline=baseline).empty(), result.out
    assert not list((Path(aws_env["IMAGESMITH_STATE_DIR"]) / "journal").glob("*.jsonl"))


def test_untagged_snapshots_are_reported_and_the_build_goes_on(
    project: Project,
    aws_proxy: FaultProxy,
    aws_env: dict[str, str],
    emulator: MotoServer,
    baseline: Leftovers,
) -> None:
    # Without tags in the template, the run id goes on the snapshots in a call of its own.
    aws_proxy.fail("CreateTags", nth=1, code="InvalidParameterValue", status=400)
    template = project.variant(tags=None)

    result = run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 0, result.out
    assert aws_proxy.count("CreateTags") == 0  # the failed call was the only one
    (image,) = [i for i in own_images(emulator) if i["Name"] == project.builder["ami_name"]]
    snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    assert (
        f"==> amazon-ebs: Could not tag snapshots {', '.join(snapshots)} in us-east-1 with "
        f"imagesmith:run-id: {INJECTED}. imagesmith cleanup finds them through their AMI."
    ) in result.lines, result.out
    left = leftovers(emulator, keep_images=(image["ImageId"],), baseline=baseline)
    assert left.empty(), left


def test_ami_wait_failure_removes_the_ami_packer_would_leave(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    aws_proxy.fail("DescribeImages", nth=3, code="InvalidParameterValue", status=400)

    result = run(
        imagesmith("build", "-color=false", str(project.write())), cwd=project.root, env=aws_env
    )

    assert result.rc == 1
    lines = result.out.splitlines()
    wait_error = lines.index(
        "==> amazon-ebs: Error waiting for AMI: Failed with ResourceNotReady error, which can "
        "have a variety of causes. For help troubleshooting, check our docs: "
        "https://www.packer.io/docs/builders/amazon.html#resourcenotready-error"
    )
    assert lines[wait_error + 1] == (f"==> amazon-ebs: original error: {INJECTED}")
    removal = lines.index(
        "==> amazon-ebs: Deregistering the AMI and deleting associated snapshots because of "
        "cancellation, or error..."
    )
    assert lines[removal + 1].startswith("==> amazon-ebs: Deregistered AMI id: ami-")
    assert lines[removal + 2].startswith("==> amazon-ebs: Deleted snapshot: snap-")
    assert leftovers(emulator, baseline=baseline).empty()


def test_provisioner_failure_matches_packer_output(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers
) -> None:
    forget_images(emulator, "docker-in-aws-ecs ")
    template = project.variant(ami_name="docker-in-aws-ecs {{timestamp}}")
    template["provisioners"] = [
        *template["provisioners"][:2],
        {"type": "shell", "inline": ["echo about to fail", "exit 3"]},
    ]
    result = run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 1
    port = str(project.builder["ssh_port"])
    expected = [
        line.replace("2222", "<port>")
        for line in normalise(PROVISIONER_FAILS.read_text())
        if not line.startswith("exit status")
    ]
    got = [line.replace(port, "<port>") for line in normalise(result.out)]
    assert len(got) == len(expected), result.out
    for mine, packers in zip(got, expected, strict=True):
        # The shell provisioner adds which script failed to Packer's error text.
        assert mine == packers or mine.startswith(packers + " (the inline commands")
    assert leftovers(emulator, baseline=baseline).empty()


def test_throttled_build_still_succeeds(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    aws_proxy.throttle(0.3)

    result = run(
        imagesmith("build", "-color=false", str(project.write())), cwd=project.root, env=aws_env
    )

    assert result.rc == 0, result.out
    throttled = [c for c in aws_proxy.calls if c.injected]
    assert throttled, "the proxy throttled nothing"
    images = [
        i["ImageId"]
        for i in emulator.ec2().describe_images(Owners=["self"])["Images"]
        if i["Name"] == project.builder["ami_name"]
    ]
    assert len(images) == 1
    assert leftovers(emulator, keep_images=tuple(images), baseline=baseline).empty()


def test_server_errors_are_retried(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str]
) -> None:
    for action in ("RunInstances", "CreateImage", "DescribeInstances", "CreateTags"):
        aws_proxy.fail(action, code="InternalError", status=500, times=2)

    result = run(
        imagesmith("build", "-color=false", str(project.write())), cwd=project.root, env=aws_env
    )

    assert result.rc == 0, result.out
    assert aws_proxy.count("RunInstances") == 1  # idempotent retries: one instance only


def test_failure_after_the_region_copy_removes_the_copies(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    """Packer 1.6.6 leaves the copy in us-west-2 behind here."""
    template = project.variant(ami_regions=["us-west-2"], ami_description="described")
    aws_proxy.fail("ModifyImageAttribute", code="InvalidParameterValue", status=400)

    result = run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 1
    assert f"==> amazon-ebs: Error modify AMI attributes: {INJECTED}" in result.lines
    assert (
        sum(line.startswith("==> amazon-ebs: Deregistered AMI id: ") for line in result.lines) == 2
    )
    assert leftovers(emulator, ("us-east-1", "us-west-2"), baseline=baseline).empty(), result.out


def test_failed_copy_is_reported_and_every_ami_removed(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    template = project.variant(ami_regions=["us-west-2", "eu-west-1"])
    aws_proxy.fail("CopyImage", nth=2, code="InvalidParameterValue", status=400)

    result = run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 1
    assert "==> amazon-ebs: 1 error(s) occurred:" in result.lines
    assert any("to region (" in line and INJECTED in line for line in result.lines)
    regions = ("us-east-1", "us-west-2", "eu-west-1")
    assert leftovers(emulator, regions, baseline=baseline).empty(), result.out


def test_cleanup_failure_is_reported_and_left_for_imagesmith_cleanup(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    aws_proxy.fail("DeleteKeyPair", code="UnauthorizedOperation", status=403)

    result = run(
        imagesmith("build", "-color=false", str(project.write())), cwd=project.root, env=aws_env
    )

    assert result.rc == 0, result.out
    key = next(c.params["KeyName"] for c in aws_proxy.calls if c.action == "DeleteKeyPair")
    assert (
        f"==> amazon-ebs: Error cleaning up keypair. Please delete the key manually: {key}"
        in result.lines
    )
    image = next(
        i["ImageId"]
        for i in emulator.ec2().describe_images(Owners=["self"])["Images"]
        if i["Name"] == project.builder["ami_name"]
    )
    assert leftovers(emulator, keep_images=(image,), baseline=baseline).key_pairs == [key]

    cleanup = run(imagesmith("cleanup"), cwd=project.root, env=aws_env)
    assert cleanup.rc == 0, cleanup.out
    assert f"Removed key-pair {key} in us-east-1" in cleanup.out
    assert leftovers(emulator, keep_images=(image,), baseline=baseline).empty()


def test_failure_after_the_temporary_instance_profile_removes_it(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    template = project.variant(
        temporary_iam_instance_profile_policy_document={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}],
        }
    )
    aws_proxy.fail("RunInstances", code="InvalidParameterValue", status=400)

    result = run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 1
    tail = [line for line in result.lines if line.startswith("==> amazon-ebs: ")][-6:]
    assert tail == [
        "==> amazon-ebs: Detaching temporary role from instance profile...",
        "==> amazon-ebs: Removing policy from temporary role...",
        "==> amazon-ebs: Deleting temporary role...",
        "==> amazon-ebs: Deleting temporary instance profile...",
        "==> amazon-ebs: Deleting temporary security group...",
        "==> amazon-ebs: Deleting temporary keypair...",
    ]
    assert leftovers(emulator, baseline=baseline).empty(), result.out


def test_on_error_abort_leaves_everything_for_imagesmith_cleanup(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers
) -> None:
    template = project.variant()
    template["provisioners"] = [{"type": "shell", "inline": ["echo about to fail", "exit 3"]}]
    result = run(
        imagesmith("build", "-color=false", "-on-error=abort", str(project.write(template))),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 1
    reference = ABORT_TRANSCRIPT.read_text().splitlines()
    expected = [line for line in reference if "aborting" in line or "aborted:" in line]
    assert [line for line in result.lines if "aborting" in line or "aborted:" in line] == expected
    left = leftovers(emulator, baseline=baseline)
    assert left.instances and left.key_pairs and left.security_groups

    cleanup = run(imagesmith("cleanup"), cwd=project.root, env=aws_env)
    assert cleanup.rc == 0, cleanup.out
    assert leftovers(emulator, baseline=baseline).empty(), cleanup.out

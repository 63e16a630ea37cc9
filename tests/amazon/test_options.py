"""Builds that use the options beyond the seed template, against moto + OpenSSH."""

from __future__ import annotations

from typing import Any

import pytest

from amazon.harness import Leftovers, Project, imagesmith, leftovers, run, tags_of
from fixtures.moto import FaultProxy, MotoServer

pytestmark = [pytest.mark.aws, pytest.mark.ssh]

AMAZON = "137112412989"
SOURCE_FILTER = {
    "filters": {"name": "amzn-ami-hvm-*", "virtualization-type": "hvm"},
    "owners": [AMAZON],
    "most_recent": True,
}
PEER = "210987654321"


def _build(project: Project, env: dict[str, str], template: dict[str, Any]) -> Any:
    return run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=env,
    )


def _images(moto: MotoServer, name: str, region: str) -> list[dict[str, Any]]:
    images = moto.ec2(region).describe_images(Owners=["self"])["Images"]
    return [i for i in images if i["Name"] == name]


def _snapshot_ids(image: dict[str, Any]) -> list[str]:
    return [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]


def test_copy_permissions_description_and_tags(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers,
    aws_proxy: FaultProxy,
) -> None:  # fmt: skip
    template = project.variant(
        source_ami=None,
        source_ami_filter=SOURCE_FILTER,
        ena_support=True,
        ami_regions=["us-west-2"],
        ami_users=[PEER],
        snapshot_users=[PEER],
        ami_description="built from {{ .SourceAMIName }} in {{ .BuildRegion }}",
        tags={"Name": "sim", "Base_AMI_Name": "{{ .SourceAMIName }}", "Src": "{{ .SourceAMI }}"},
        snapshot_tags={"Snap": "yes", "Name": "snapshot-name"},
        run_tags={"Owner": "me", "Src": "{{ .SourceAMI }}"},
        run_volume_tags={"Vol": "{{ .BuildRegion }}"},
    )
    echo = (
        "echo source={{ build `SourceAMIName` }} owner={{ build `SourceAMIOwner` }} "
        "region={{ build `BuildRegion` }}"
    )
    template["provisioners"] = [{"type": "shell", "inline": [echo]}]
    result = _build(project, aws_env, template)

    assert result.rc == 0, result.out
    name = project.builder["ami_name"]
    (east,) = _images(emulator, name, "us-east-1")
    (west,) = _images(emulator, name, "us-west-2")
    candidates = emulator.ec2().describe_images(
        Owners=[AMAZON],
        Filters=[{"Name": k, "Values": [v]} for k, v in SOURCE_FILTER["filters"].items()],
    )["Images"]
    source = max(candidates, key=lambda i: i["CreationDate"])
    source_name = source["Name"]
    for image in (east, west):
        assert tags_of(image) == {
            "Name": "sim",
            "Base_AMI_Name": source_name,
            "Src": source["ImageId"],
        }
    # moto keeps no description: check what was asked of it.
    descriptions = {
        c.params["Description.Value"]
        for c in aws_proxy.calls
        if c.action == "ModifyImageAttribute" and "Description.Value" in c.params
    }
    assert descriptions == {f"built from {source_name} in us-east-1"}
    region = {"us-east-1": east, "us-west-2": west}
    for r, image in region.items():
        ec2 = emulator.ec2(r)
        launch = ec2.describe_image_attribute(
            ImageId=image["ImageId"], Attribute="launchPermission"
        )
        assert launch["LaunchPermissions"] == [{"UserId": PEER}]
        for snapshot in ec2.describe_snapshots(SnapshotIds=_snapshot_ids(image))["Snapshots"]:
            # tags on the snapshots too, snapshot_tags winning for a shared key
            assert tags_of(snapshot) == {**tags_of(image), "Snap": "yes", "Name": "snapshot-name"}
            # moto only applies the OperationType form; Packer (and we) send the
            # CreateVolumePermission form AWS documents: check the request itself.
            (permission,) = [
                c.params
                for c in aws_proxy.calls
                if c.action == "ModifySnapshotAttribute"
                and c.params["SnapshotId"] == snapshot["SnapshotId"]
            ]
            assert permission["CreateVolumePermission.Add.1.UserId"] == PEER
    assert f"    amazon-ebs: source={source_name} owner={AMAZON} region=us-east-1" in result.lines
    for line in (
        "==> amazon-ebs: Enabling Enhanced Networking (ENA)...",
        f"==> amazon-ebs: Copying/Encrypting AMI ({east['ImageId']}) to other regions...",
        "    amazon-ebs: Copying to: us-west-2",
        "    amazon-ebs: Waiting for all copies to complete...",
        "    amazon-ebs: Modifying: description",
        "    amazon-ebs: Modifying: users",
        '    amazon-ebs: Adding tag: "Owner": "me"',
        '    amazon-ebs: Adding tag: "Vol": "us-east-1"',
        '    amazon-ebs: Adding tag: "Snap": "yes"',
    ):
        assert line in result.lines, line
    # The instance carried the run tags, Packer's default Name, and the run id.
    instance_id = next(
        c.params["InstanceId.1"] for c in aws_proxy.calls if c.action == "TerminateInstances"
    )
    instance = emulator.ec2().describe_instances(InstanceIds=[instance_id])
    tags = tags_of(instance["Reservations"][0]["Instances"][0])
    assert tags["Owner"] == "me" and tags["Name"] == "Packer Builder"
    assert tags["Src"] == source["ImageId"] and "imagesmith:run-id" in tags
    kept = (east["ImageId"], west["ImageId"])
    assert leftovers(emulator, ("us-east-1", "us-west-2"), kept, baseline).empty()
    # The delivered AMIs no longer carry the run id (only leftovers do).
    assert "imagesmith:run-id" not in tags_of(east)


def test_encrypted_copy_and_temporary_instance_profile(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers
) -> None:
    template = project.variant(
        encrypt_boot=True,
        kms_key_id="alias/mykey",
        ami_regions=["us-west-2"],
        region_kms_key_ids={"us-west-2": "alias/theirs"},
        temporary_iam_instance_profile_policy_document={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["logs:*"], "Resource": ["*"]}],
        },
        tags={"Owner": "me"},
    )
    result = _build(project, aws_env, template)

    assert result.rc == 0, result.out
    name = project.builder["ami_name"]
    (east,) = _images(emulator, name, "us-east-1")
    (west,) = _images(emulator, name, "us-west-2")
    lines = result.lines
    created = next(line for line in lines if line.startswith("==> amazon-ebs: Creating AMI "))
    intermediary = created.split()[4]
    assert intermediary != name and len(intermediary) == 7
    for expected in (
        "==> amazon-ebs: Creating temporary instance profile for this instance: packer-",
        "==> amazon-ebs: Creating temporary role for this instance: packer-",
        "==> amazon-ebs: Attaching policy to the temporary role: packer-",
    ):
        assert any(line.startswith(expected) for line in lines), expected
    cleanup = (
        "==> amazon-ebs: Deregistering the AMI and deleting unencrypted temporary AMIs and "
        "snapshots",
        "==> amazon-ebs: Detaching temporary role from instance profile...",
        "==> amazon-ebs: Removing policy from temporary role...",
        "==> amazon-ebs: Deleting temporary role...",
        "==> amazon-ebs: Deleting temporary instance profile...",
    )
    tail = [line for line in lines if line in cleanup]
    assert tail == list(cleanup)
    assert "    amazon-ebs: Copying to: us-west-2" in lines
    assert "    amazon-ebs: Copying to: us-east-1" in lines
    assert f"us-east-1: {east['ImageId']}" in lines and f"us-west-2: {west['ImageId']}" in lines
    # The encrypted copies stand for the AMI in both regions: their snapshots get the
    # tags, and not the run id any more.
    for region, image in (("us-east-1", east), ("us-west-2", west)):
        snapshots = emulator.ec2(region).describe_snapshots(SnapshotIds=_snapshot_ids(image))
        for snapshot in snapshots["Snapshots"]:
            assert tags_of(snapshot) == {"Owner": "me"}, (region, snapshot)
    kept = (east["ImageId"], west["ImageId"])
    assert leftovers(emulator, ("us-east-1", "us-west-2"), kept, baseline).empty()


def test_spot_instance_through_an_instant_fleet(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers,
    aws_proxy: FaultProxy,
) -> None:  # fmt: skip
    template = project.variant(
        instance_type=None,
        spot_price="auto",
        spot_instance_types=["t3.micro", "t3a.micro"],
        spot_tags={"Spot": "yes"},
        run_tags={"Owner": "me"},
        run_volume_tags={"Vol": "{{ .BuildRegion }}"},
    )
    result = _build(project, aws_env, template)

    assert result.rc == 0, result.out
    lines = result.lines
    assert "==> amazon-ebs: Launching a spot AWS instance..." in lines
    assert "==> amazon-ebs: Interpolating tags for spot instance..." in lines
    assert "    amazon-ebs: Creating Spot Fleet launch template..." in lines
    assert "==> amazon-ebs: Stopping the source instance..." not in lines
    assert aws_proxy.count("CreateFleet") == 1 and aws_proxy.count("DeleteLaunchTemplate") == 1
    (image,) = _images(emulator, project.builder["ami_name"], "us-east-1")
    assert leftovers(emulator, keep_images=(image["ImageId"],), baseline=baseline).empty()


def test_force_deregister_replaces_the_previous_ami(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers
) -> None:
    first = _build(project, aws_env, project.variant())
    assert first.rc == 0, first.out
    name = project.builder["ami_name"]
    (old,) = _images(emulator, name, "us-east-1")

    refused = _build(project, aws_env, project.variant())
    assert refused.rc == 1
    assert (
        f"==> amazon-ebs: Error: AMI Name: '{name}' is used by an existing AMI: {old['ImageId']}"
        in refused.lines
    )

    second = _build(
        project, aws_env, project.variant(force_deregister=True, force_delete_snapshot=True)
    )
    assert second.rc == 0, second.out
    (new,) = _images(emulator, name, "us-east-1")
    assert new["ImageId"] != old["ImageId"]
    assert (
        "==> amazon-ebs: Force Deregister flag found, skipping prevalidating AMI Name"
        in second.lines
    )
    assert f"==> amazon-ebs: Deregistered AMI {name}, id: {old['ImageId']}" in second.lines
    for snapshot in _snapshot_ids(old):
        assert f"==> amazon-ebs: Deleted snapshot: {snapshot}" in second.lines
    assert leftovers(emulator, keep_images=(new["ImageId"],), baseline=baseline).empty()


def test_skip_create_ami_runs_the_build_without_an_ami(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers
) -> None:
    result = _build(project, aws_env, project.variant(skip_create_ami=True, ami_users=[PEER]))

    assert result.rc == 0, result.out
    assert "==> amazon-ebs: Skipping AMI creation..." in result.lines
    assert "==> amazon-ebs: Skipping AMI modify attributes..." in result.lines
    assert "==> Builds finished but no artifacts were created." in result.lines
    assert leftovers(emulator, baseline=baseline).empty()


def test_ed25519_key_and_imdsv2_instance(
    project: Project, aws_env: dict[str, str], aws_proxy: FaultProxy, emulator: MotoServer
) -> None:
    template = project.variant(
        temporary_key_pair_type="ed25519",
        metadata_options={"http_tokens": "required", "http_endpoint": "enabled"},
    )
    result = _build(project, aws_env, template)

    assert result.rc == 0, result.out
    (create,) = [c for c in aws_proxy.calls if c.action == "CreateKeyPair"]
    assert create.params["KeyType"] == "ed25519"
    (launch,) = [c for c in aws_proxy.calls if c.action == "RunInstances"]
    assert launch.params["MetadataOptions.HttpTokens"] == "required"


def test_post_processor_that_does_not_keep_the_ami_destroys_it(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers
) -> None:
    (project.root / "report.txt").write_text("built\n")
    template = project.variant(ami_regions=["us-west-2"])
    template["post-processors"] = [
        {"type": "artifice", "files": ["report.txt"], "keep_input_artifact": False}
    ]
    result = _build(project, aws_env, template)

    assert result.rc == 0, result.out
    assert "--> amazon-ebs: Created artifact from files: report.txt" in result.lines
    regions = ("us-east-1", "us-west-2")
    assert leftovers(emulator, regions, baseline=baseline).empty(), result.out


@pytest.mark.parametrize("tags", [{"Owner": "me"}, None], ids=["with-tags", "without-tags"])
def test_new_snapshots_carry_the_run_id_until_delivery(
    project: Project, aws_env: dict[str, str], emulator: MotoServer, baseline: Leftovers,
    aws_proxy: FaultProxy, tags: dict[str, str] | None,
) -> None:  # fmt: skip
    template = project.variant(tags=tags, snapshot_tags=None, ami_regions=["us-west-2"])
    result = _build(project, aws_env, template)

    assert result.rc == 0, result.out
    name = project.builder["ami_name"]
    (east,) = _images(emulator, name, "us-east-1")
    (west,) = _images(emulator, name, "us-west-2")
    for region, image in (("us-east-1", east), ("us-west-2", west)):
        snapshots = set(_snapshot_ids(image))
        tagged = [
            c.params
            for c in aws_proxy.calls
            if c.action == "CreateTags" and c.region == region
            and snapshots <= {v for k, v in c.params.items() if k.startswith("ResourceId.")}
        ]  # fmt: skip
        # One call per region: the run id alone, or with the template's tags.
        assert len(tagged) == 1, (region, tagged)
        keys = {v for k, v in tagged[0].items() if k.startswith("Tag.") and k.endswith(".Key")}
        assert keys == {"imagesmith:run-id", *(tags or {})}
        untagged = [
            c.params
            for c in aws_proxy.calls
            if c.action == "DeleteTags" and c.region == region
        ]  # fmt: skip
        (untag,) = untagged
        removed_from = {v for k, v in untag.items() if k.startswith("ResourceId.")}
        assert removed_from == {image["ImageId"], *snapshots}
        for snapshot in emulator.ec2(region).describe_snapshots(SnapshotIds=list(snapshots))[
            "Snapshots"
        ]:
            assert tags_of(snapshot) == (tags or {})
    # The copy is tagged at creation (moto ignores CopyImage's tags: seen on the wire).
    (copy,) = [c.params for c in aws_proxy.calls if c.action == "CopyImage"]
    assert copy["TagSpecification.1.ResourceType"] == "image"
    assert copy["TagSpecification.1.Tag.1.Key"] == "imagesmith:run-id"
    kept = (east["ImageId"], west["ImageId"])
    assert leftovers(emulator, ("us-east-1", "us-west-2"), kept, baseline).empty()

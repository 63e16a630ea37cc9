"""Options that shape the launch (network, groups, profile, user data, devices) and
how the build reaches AWS (assume_role, profiles); checked on the API calls made."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from amazon.harness import Leftovers, Project, imagesmith, leftovers, run
from fixtures.moto import Call, FaultProxy, MotoServer

pytestmark = [pytest.mark.aws, pytest.mark.ssh]


def _build(project: Project, env: dict[str, str], template: dict[str, Any]) -> Any:
    result = run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=env,
    )
    assert result.rc == 0, result.out
    return result


def _one(proxy: FaultProxy, action: str) -> Call:
    (call,) = [c for c in proxy.calls if c.action == action and not c.injected]
    return call


def _kept(moto: MotoServer, project: Project) -> tuple[str, ...]:
    images = moto.ec2().describe_images(Owners=["self"])["Images"]
    return tuple(i["ImageId"] for i in images if i["Name"] == project.builder["ami_name"])


def test_vpc_and_subnet_filters_with_a_public_ip(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    subnets = emulator.ec2().describe_subnets()["Subnets"]
    roomiest = max(subnets, key=lambda s: s["AvailableIpAddressCount"])
    template = project.variant(
        vpc_filter={"filters": {"isDefault": "true"}},
        subnet_filter={"filters": {"default-for-az": "true"}, "most_free": True},
    )
    result = _build(project, aws_env, template)

    vpc = emulator.ec2().describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])
    assert f"    amazon-ebs: Found VPC ID: {vpc['Vpcs'][0]['VpcId']}" in result.lines
    assert f"    amazon-ebs: Found Subnet ID: {roomiest['SubnetId']}" in result.lines
    launch = _one(aws_proxy, "RunInstances").params
    assert launch["NetworkInterface.1.SubnetId"] == roomiest["SubnetId"]
    assert launch["NetworkInterface.1.AssociatePublicIpAddress"] == "true"
    assert launch["NetworkInterface.1.DeleteOnTermination"] == "true"
    assert _one(aws_proxy, "CreateSecurityGroup").params["VpcId"] == vpc["Vpcs"][0]["VpcId"]
    assert leftovers(emulator, keep_images=_kept(emulator, project), baseline=baseline).empty()


def test_given_groups_and_instance_profile_are_used_not_created(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    iam = emulator.client("iam")
    name = f"given-{project.builder['ami_name'].split()[-1]}"
    iam.create_instance_profile(InstanceProfileName=name)
    try:
        template = project.variant(
            security_group_filter={"filters": {"group-name": "default"}},
            iam_instance_profile=name,
        )
        result = _build(project, aws_env, template)
    finally:
        iam.delete_instance_profile(InstanceProfileName=name)

    default = emulator.ec2().describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert f"    amazon-ebs: Found Security Group(s): {default[0]['GroupId']}" in result.lines
    assert aws_proxy.count("CreateSecurityGroup") == 0
    assert aws_proxy.count("GetInstanceProfile") == 1
    launch = _one(aws_proxy, "RunInstances").params
    assert launch["IamInstanceProfile.Name"] == name
    assert launch["SecurityGroupId.1"] == default[0]["GroupId"]
    assert leftovers(emulator, keep_images=_kept(emulator, project), baseline=baseline).empty()


def test_launch_parameters(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str]
) -> None:
    (project.root / "user-data.sh").write_text("#cloud-config\nruncmd: [echo hi]\n")
    template = project.variant(
        user_data_file="user-data.sh",
        no_ephemeral=True,
        ebs_optimized=True,
        shutdown_behavior="terminate",
        tenancy="default",
        enable_t2_unlimited=True,
        associate_public_ip_address=False,
        availability_zone="us-east-1c",
        ami_block_device_mappings=[
            {"device_name": "/dev/sdf", "volume_type": "gp3", "volume_size": 5}
        ],
    )
    _build(project, aws_env, template)

    launch = _one(aws_proxy, "RunInstances").params
    user_data = base64.b64decode(launch["UserData"]).decode()
    assert user_data == "#cloud-config\nruncmd: [echo hi]\n"
    assert launch["EbsOptimized"] == "true"
    assert launch["InstanceInitiatedShutdownBehavior"] == "terminate"
    assert launch["Placement.Tenancy"] == "default"
    assert launch["Placement.AvailabilityZone"] == "us-east-1c"
    assert launch["CreditSpecification.CpuCredits"] == "unlimited"
    ephemeral = {v for k, v in launch.items() if k.endswith(".DeviceName")}
    assert {"xvdca", "xvdcz", "/dev/xvdcy"} <= ephemeral
    image = _one(aws_proxy, "CreateImage").params
    assert image["BlockDeviceMapping.1.DeviceName"] == "/dev/sdf"
    assert image["BlockDeviceMapping.1.Ebs.VolumeType"] == "gp3"
    assert "BlockDeviceMapping.1.Ebs.Iops" not in image  # AWS's gp3 defaults apply


def test_assume_role_credentials_are_used_for_the_build(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str]
) -> None:
    template = project.variant(
        assume_role={
            "role_arn": "arn:aws:iam::123456789012:role/builder",
            "session_name": "imagesmith-test",
            "external_id": "ext-1",
        }
    )
    _build(project, aws_env, template)

    assume = _one(aws_proxy, "AssumeRole")
    assert assume.params["RoleArn"] == "arn:aws:iam::123456789012:role/builder"
    assert assume.params["ExternalId"] == "ext-1"
    ec2_keys = {c.access_key for c in aws_proxy.calls if c.action != "AssumeRole"}
    assert assume.access_key not in ec2_keys and len(ec2_keys) == 1


def test_profile_from_a_shared_credentials_file(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], tmp_path: Path
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[builder]\naws_access_key_id = AKIDFROMPROFILE\naws_secret_access_key = s3cr3t\n"
    )
    env = {
        k: v for k, v in aws_env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    template = project.variant(
        access_key=None,
        secret_key=None,
        token=None,
        profile="builder",
        shared_credentials_file=str(credentials),
    )
    _build(project, env, template)

    assert {c.access_key for c in aws_proxy.calls} == {"AKIDFROMPROFILE"}


def test_deprecation_on_every_ami(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str]
) -> None:
    # moto has no EnableImageDeprecation: the proxy answers for it.
    aws_proxy.answer(
        "EnableImageDeprecation",
        "<EnableImageDeprecationResponse><return>true</return></EnableImageDeprecationResponse>",
    )
    template = project.variant(deprecate_at="2030-01-31T00:00:00Z", ami_regions=["us-west-2"])
    result = _build(project, aws_env, template)

    calls = [c for c in aws_proxy.calls if c.action == "EnableImageDeprecation"]
    assert sorted(c.region for c in calls) == ["us-east-1", "us-west-2"]
    assert {c.params["DeprecateAt"] for c in calls} == {"2030-01-31T00:00:00Z"}
    assert sum("Enabling deprecation on AMI" in line for line in result.lines) == 2


def test_debug_mode_saves_the_temporary_key_and_removes_it(
    project: Project, aws_env: dict[str, str]
) -> None:
    result = run(
        imagesmith("build", "-color=false", "-debug", str(project.write())),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 0, result.out
    assert "    amazon-ebs: Saving key for debug purposes: ec2_amazon-ebs.pem" in result.lines
    assert not (project.root / "ec2_amazon-ebs.pem").exists()


def test_secrets_never_reach_the_output_or_the_journal(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str]
) -> None:
    aws_proxy.fail("CreateTags", code="InvalidParameterValue", status=400)
    env = {**aws_env, "AWS_SESSION_TOKEN": "session-token-that-must-not-show"}
    result = run(
        imagesmith("build", "-color=false", "-machine-readable", str(project.write())),
        cwd=project.root,
        env=env,
    )

    assert result.rc == 1
    for secret in (env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"], "PRIVATE KEY"):
        assert secret not in result.out


def test_a_missing_profile_fails_before_anything_is_created(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "credentials").write_text(
        "[other]\naws_access_key_id = A\naws_secret_access_key = B\n"
    )
    template = project.variant(
        access_key=None, secret_key=None, token=None, profile="nope",
        shared_credentials_file=str(tmp_path / "credentials"),
    )  # fmt: skip
    result = run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 1
    assert (
        "Error creating the AWS session: The config profile (nope) could not be found" in result.out
    )
    assert aws_proxy.calls == []


def test_vault_credentials_are_read_when_the_build_starts(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str]
) -> None:
    import http.server
    import json
    import threading

    requests: list[tuple[str, str]] = []

    class Vault(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append((self.path, self.headers.get("X-Vault-Token", "")))
            body = json.dumps(
                {
                    "data": {
                        "access_key": "AKIDFROMVAULT",
                        "secret_key": "vault-secret",
                        "security_token": None,
                    }
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Vault)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {k: v for k, v in aws_env.items() if not k.startswith("AWS_ACCESS_KEY_ID")}
        env.update(VAULT_ADDR=f"http://127.0.0.1:{server.server_address[1]}", VAULT_TOKEN="t0k")
        template = project.variant(
            access_key=None, secret_key=None, token=None,
            vault_aws_engine={"name": "builder", "ttl": "3600s"},
        )  # fmt: skip
        result = _build(project, env, template)
    finally:
        server.shutdown()

    assert requests == [("/v1/aws/creds/builder?ttl=3600s", "t0k")]
    assert "==> amazon-ebs: You're using Vault-generated AWS credentials." in result.out
    assert {c.access_key for c in aws_proxy.calls} == {"AKIDFROMVAULT"}
    assert "vault-secret" not in result.out


def test_encoded_authorization_messages_are_decoded(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str]
) -> None:
    aws_proxy.fail(
        "CreateKeyPair",
        code="UnauthorizedOperation",
        status=403,
        message="You are not authorized. Encoded authorization failure message: ZW5jb2RlZA",
    )
    aws_proxy.answer(
        "DecodeAuthorizationMessage",
        "<DecodeAuthorizationMessageResponse><DecodeAuthorizationMessageResult>"
        "<DecodedMessage>{&quot;allowed&quot;:false}</DecodedMessage>"
        "</DecodeAuthorizationMessageResult></DecodeAuthorizationMessageResponse>",
    )
    template = project.variant(decode_authorization_messages=True)
    result = run(
        imagesmith("build", "-color=false", str(project.write(template))),
        cwd=project.root,
        env=aws_env,
    )

    assert result.rc == 1
    assert (
        "==> amazon-ebs: Error creating temporary keypair: UnauthorizedOperation: You are not "
        'authorized. Encoded authorization failure message: {"allowed":false}'
    ) in result.lines


def test_skip_save_build_region_groups_sriov_and_tag_blocks(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer,
    baseline: Leftovers,
) -> None:  # fmt: skip
    template = project.variant(
        skip_save_build_region=True,
        ami_regions=["us-west-2"],
        ami_groups=["all"],
        sriov_support=True,
        temporary_security_group_source_cidrs=["10.0.0.0/8", "192.168.0.0/16"],
        tag=[{"key": "Block", "value": "{{ .BuildRegion }}"}],
        run_tag=[{"key": "RunBlock", "value": "yes"}],
        snapshot_tag=[{"key": "SnapBlock", "value": "yes"}],
        ssh_clear_authorized_keys=True,
        ssh_interface="private_ip",
    )
    result = _build(project, aws_env, template)

    assert "==> amazon-ebs: skip_build_region was set; not prevalidating AMI name" in result.lines
    assert "==> amazon-ebs: Enabling Enhanced Networking (SR-IOV)..." in result.lines
    assert (
        "==> amazon-ebs: Trying to remove ephemeral keys from authorized_keys files" in result.lines
    )
    ingress = _one(aws_proxy, "AuthorizeSecurityGroupIngress").params
    assert ingress["IpPermissions.1.IpRanges.1.CidrIp"] == "10.0.0.0/8"
    assert ingress["IpPermissions.1.IpRanges.2.CidrIp"] == "192.168.0.0/16"
    assert _one(aws_proxy, "ModifyInstanceAttribute").params["SriovNetSupport.Value"] == "simple"
    assert len(_one(aws_proxy, "CreateImage").params["Name"]) == 7  # an intermediary image
    assert [c.region for c in aws_proxy.calls if c.action == "CopyImage"] == ["us-west-2"]
    groups = [c.params for c in aws_proxy.calls if c.action == "ModifyImageAttribute"]
    assert [p.get("LaunchPermission.Add.1.Group") for p in groups] == ["all"]
    launch = _one(aws_proxy, "RunInstances").params
    assert ("RunBlock", "yes") in {
        (launch[k], launch[k.replace(".Key", ".Value")])
        for k in launch
        if k.startswith("TagSpecification.1.Tag.") and k.endswith(".Key")
    }

    name = project.builder["ami_name"]
    west = [i for i in emulator.ec2("us-west-2").describe_images(Owners=["self"])["Images"]
            if i["Name"] == name]  # fmt: skip
    east = [i for i in emulator.ec2().describe_images(Owners=["self"])["Images"]
            if i["Name"] in (name, _one(aws_proxy, "CreateImage").params["Name"])]  # fmt: skip
    assert len(west) == 1 and east == []
    tags = {t["Key"]: t["Value"] for t in west[0]["Tags"]}
    assert tags == {**project.builder["tags"], "SourceAMI": "ami-760aaa0f", "Block": "us-east-1"}
    assert f"us-west-2: {west[0]['ImageId']}" in result.lines
    regions = ("us-east-1", "us-west-2")
    assert leftovers(emulator, regions, (west[0]["ImageId"],), baseline).empty()


def test_given_subnet_and_security_groups(
    project: Project, aws_proxy: FaultProxy, aws_env: dict[str, str], emulator: MotoServer
) -> None:
    subnet = emulator.ec2().describe_subnets()["Subnets"][0]
    group = emulator.ec2().describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    template = project.variant(
        subnet_id=subnet["SubnetId"],
        vpc_id=subnet["VpcId"],
        security_group_id=group["GroupId"],
        associate_public_ip_address=False,
    )
    _build(project, aws_env, template)

    launch = _one(aws_proxy, "RunInstances").params
    assert launch["SubnetId"] == subnet["SubnetId"]
    assert launch["SecurityGroupId.1"] == group["GroupId"]
    assert launch["Placement.AvailabilityZone"] == subnet["AvailabilityZone"]
    assert aws_proxy.count("CreateSecurityGroup") == 0

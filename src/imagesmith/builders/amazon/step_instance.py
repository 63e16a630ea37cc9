"""StepRunSourceInstance and StepCleanupVolumes: the on-demand builder instance."""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from typing import Any

from imagesmith.builders.amazon import regions, tracking, waiters
from imagesmith.builders.amazon.aws import AwsError, finish_despite_cancel
from imagesmith.builders.amazon.block_devices import to_api
from imagesmith.builders.amazon.common import fail
from imagesmith.builders.amazon.state import EBSState, Json
from imagesmith.builders.amazon.template_data import ec2_tags, render_tags, report_tags
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step
from imagesmith.errors import BuildError

DEFAULT_NAME_TAG = "Packer Builder"
# Instance-store device names Packer maps to NoDevice with ``no_ephemeral``.
EPHEMERAL_DEVICES = [f"xvdc{c}" for c in "abcdefghijklmnopqrstuvwxyz"]


def user_data(state: EBSState, build: BuildRun) -> str | None:
    """The user data text, or None. Packer base64-encodes it unless it already is."""
    run = state.config.run
    if run.user_data_file:
        try:
            with open(run.user_data_file, encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            fail(build, f"Problem reading user data file: {e}")
    return run.user_data or None


def decoded_if_base64(text: str) -> bytes | None:
    """The bytes ``text`` encodes if it is valid base64 (Go's StdEncoding), else None."""
    try:
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def user_data_base64(text: str) -> str:
    """What Packer sends: the text as is when it is base64 already, else encoded."""
    if decoded_if_base64(text) is not None:
        return text
    return base64.b64encode(text.encode()).decode()


def ebs_source_image(state: EBSState, build: BuildRun) -> Json:
    """The source image, which must be EBS-backed to make an EBS AMI."""
    image = state.source_image or {}
    if image.get("RootDeviceType") != "ebs":
        fail(
            build,
            "The provided source AMI has an invalid root device type.\n"
            f"Expected 'ebs', got '{image.get('RootDeviceType', '')}'.",
        )
    return image


def launch_mappings(state: EBSState) -> list[Json]:
    mappings = to_api(state.config.launch_block_device_mappings)
    if state.config.no_ephemeral:
        mappings += [{"DeviceName": d, "NoDevice": ""} for d in EPHEMERAL_DEVICES]
    return mappings


def run_tags(
    state: EBSState, build: BuildRun, *, header: str, report_volume_tags: bool = True
) -> tuple[Json, Json]:
    """(instance tags, volume tags), rendered and reported under ``header``."""
    c = state.config
    try:
        tags = render_tags(state, c.run.run_tags)
        volume_tags = render_tags(state, c.run_volume_tags)
    except Exception as e:
        fail(build, f"Error tagging source instance: {e}")
    if "Name" not in tags:
        # Packer 1.6.6 names every builder instance so; reapers rely on it.
        tags["Name"] = DEFAULT_NAME_TAG
    build.ui.say(header)
    report_tags(build.ui, tags)
    if report_volume_tags:
        report_tags(build.ui, volume_tags)
    return tags, volume_tags


class StepRunSourceInstance(Step[EBSState]):
    """Launches the on-demand instance; sets ``instance`` (its description once
    running). Cleanup terminates it and waits until it is gone."""

    name = "StepRunSourceInstance"

    def __init__(self) -> None:
        self.instance_id = ""

    async def run(self, state: EBSState, build: BuildRun) -> None:
        c = state.config
        ui = build.ui
        text = user_data(state, build)
        ui.say("Launching a source AWS instance...")
        image = ebs_source_image(state, build)
        tags, volume_tags = run_tags(state, build, header="Adding tags to source instance")
        tag_on_create = not regions.is_china(state.region)

        params: dict[str, Any] = {
            "ImageId": image["ImageId"],
            "InstanceType": c.run.instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "EbsOptimized": c.run.ebs_optimized,
            "InstanceInitiatedShutdownBehavior": c.run.shutdown_behavior,
            # Makes a retried launch idempotent: never two instances for one build.
            "ClientToken": str(uuid.uuid4()),
        }
        if text:
            # boto3 base64-encodes UserData itself: hand it the bytes Packer would send.
            params["UserData"] = decoded_if_base64(text) or text.encode()
        if state.instance_profile:
            params["IamInstanceProfile"] = {"Name": state.instance_profile}
        mappings = launch_mappings(state)
        if mappings:
            params["BlockDeviceMappings"] = mappings
        placement = {}
        if state.availability_zone:
            placement["AvailabilityZone"] = state.availability_zone
        if c.run.tenancy:
            placement["Tenancy"] = c.run.tenancy
        if placement:
            params["Placement"] = placement
        if state.key_pair_name:
            params["KeyName"] = state.key_pair_name
        if c.run.enable_t2_unlimited:
            params["CreditSpecification"] = {"CpuCredits": "unlimited"}
        metadata = c.run.metadata_options.to_api()
        if metadata:
            params["MetadataOptions"] = metadata
        if tag_on_create:
            specs = [state.tracker.tag_spec("instance", tags)]
            if volume_tags:
                specs.append({"ResourceType": "volume", "Tags": ec2_tags(volume_tags)})
            params["TagSpecifications"] = specs
        params.update(network_params(state))

        async def launch() -> str:
            answer = await state.aws.call(
                "run_instances", retry_if=_iam_profile_not_ready, **params
            )
            instance_id = str(answer["Instances"][0]["InstanceId"])
            self.instance_id = instance_id
            state.tracker.created(tracking.INSTANCE, instance_id, state.region)
            return instance_id

        try:
            instance_id = await finish_despite_cancel(launch())
        except AwsError as e:
            if e.code == "VPCIdNotSpecified" and not state.subnet_id:
                fail(build, "Error launching source instance: a valid Subnet Id was not specified")
            fail(build, f"Error launching source instance: {e}")

        ui.message(f"Instance ID: {instance_id}")
        ui.say(f"Waiting for instance ({instance_id}) to become ready...")
        how = waiters.policy(c.access.aws_polling)
        try:
            answer = await waiters.instance_state(state.aws, instance_id, "running", how)
        except (waiters.WaiterError, AwsError) as e:
            ui.error(f"Error waiting for instance ({instance_id}) to become ready: {e}")
            await self._state_reason(state, build, instance_id)
            message = f"Error waiting for instance ({instance_id}) to become ready: {e}"
            raise BuildError(message) from None
        instance = answer["Reservations"][0]["Instances"][0]
        state.instance = instance
        record_extra_volumes(state, instance)

        if state.debug:
            for label, key in (
                ("Public DNS", "PublicDnsName"),
                ("Public IP", "PublicIpAddress"),
                ("Private IP", "PrivateIpAddress"),
            ):
                if instance.get(key):
                    ui.message(f"{label}: {instance[key]}")

        if not tag_on_create:
            await tag_instance_after_launch(state, build, instance, tags, volume_tags)
        await announce_to_rehearsal(state, instance, mappings)

    async def _state_reason(self, state: EBSState, build: BuildRun, instance_id: str) -> None:
        try:
            answer = await state.aws.call("describe_instances", InstanceIds=[instance_id])
            instance = answer["Reservations"][0]["Instances"][0]
        except (AwsError, IndexError, KeyError):
            return
        reason = instance.get("StateReason", {}).get("Message", "")
        transition = instance.get("StateTransitionReason", "")
        if reason or transition:
            build.ui.error(f"Instance state change details: {transition}: {reason}")

    async def cleanup(self, state: EBSState, build: BuildRun) -> None:
        if self.instance_id:
            await terminate_instance(state, build, self.instance_id)


def _iam_profile_not_ready(error: AwsError) -> bool:
    text = str(error)
    return error.code == "InvalidParameterValue" and (
        "iamInstanceProfile" in text or "Invalid IAM Instance Profile" in text
    )


def network_params(state: EBSState) -> Json:
    """Subnet and security groups: in a network interface when a public IP is asked for
    (it can only be set there), as plain parameters otherwise."""
    run = state.config.run
    if state.subnet_id and run.associate_public_ip_address:
        return {
            "NetworkInterfaces": [
                {
                    "DeviceIndex": 0,
                    "SubnetId": state.subnet_id,
                    "Groups": state.security_group_ids,
                    "AssociatePublicIpAddress": True,
                    "DeleteOnTermination": True,
                }
            ]
        }
    params: Json = {"SecurityGroupIds": state.security_group_ids}
    if state.subnet_id:
        params["SubnetId"] = state.subnet_id
    return params


def record_extra_volumes(state: EBSState, instance: Json) -> None:
    """Journal the volumes StepCleanupVolumes would delete, in case it never runs:
    EBS volumes that outlive the instance and are not the user's own launch devices."""
    kept = {d.device_name for d in state.config.launch_block_device_mappings}
    for mapping in instance.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs") or {}
        outlives = ebs.get("VolumeId") and not ebs.get("DeleteOnTermination", True)
        if outlives and mapping.get("DeviceName") not in kept:
            state.tracker.created(
                tracking.VOLUME, ebs["VolumeId"], state.region, instance=instance["InstanceId"]
            )


async def tag_instance_after_launch(
    state: EBSState, build: BuildRun, instance: Json, tags: Json, volume_tags: Json
) -> None:
    """Regions without tag-on-create: CreateTags on the instance, then its volumes."""
    not_yet = frozenset({"InvalidInstanceID.NotFound", "InvalidVolume.NotFound"})
    try:
        await state.aws.call(
            "create_tags",
            retry_codes=not_yet,
            Resources=[instance["InstanceId"]],
            Tags=[*ec2_tags(tags), state.tracker.tag()],
        )
    except AwsError as e:
        fail(build, f"Error tagging source instance: {e}")
    volumes = [
        m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs")
    ]
    if volume_tags and volumes:
        build.ui.say("Adding tags to source EBS Volumes")
        try:
            await state.aws.call(
                "create_tags", retry_codes=not_yet, Resources=volumes, Tags=ec2_tags(volume_tags)
            )
        except AwsError as e:
            fail(build, f"Error tagging source EBS Volumes on {instance['InstanceId']}: {e}")


async def announce_to_rehearsal(state: EBSState, instance: Json, mappings: list[Json]) -> None:
    """In a rehearsal, start the machine standing in for the instance."""
    if state.rehearsal is None:
        return
    from imagesmith.builders.amazon.keys import public_key_of

    state.connect_override = await state.rehearsal.backend.instance_launched(
        instance_id=instance["InstanceId"],
        ssh_username=state.config.comm.ssh_username,
        public_key=public_key_of(state.private_key) if state.private_key else "",
        block_devices=mappings,
    )


async def terminate_instance(state: EBSState, build: BuildRun, instance_id: str) -> None:
    ui = build.ui
    ui.say("Terminating the source AWS instance...")
    try:
        await state.aws.call("terminate_instances", InstanceIds=[instance_id])
    except AwsError as e:
        if e.code != "InvalidInstanceID.NotFound":
            ui.error(f"Error terminating instance, may still be around: {e}")
            return
    how = waiters.policy(state.config.access.aws_polling)
    try:
        await waiters.instance_state(state.aws, instance_id, "terminated", how)
    except (waiters.WaiterError, AwsError) as e:
        ui.error(f"Error waiting for instance ({instance_id}) to terminate: {e}")
        return
    state.tracker.gone(tracking.INSTANCE, instance_id, state.region)
    if state.rehearsal is not None:
        await state.rehearsal.backend.instance_terminated(instance_id=instance_id)


class StepCleanupVolumes(Step[EBSState]):
    """Nothing at run time. At cleanup (after the instance is terminated) deletes the
    volumes the source AMI attached with DeleteOnTermination=false; the user's
    ``launch_block_device_mappings`` keep their own setting."""

    name = "StepCleanupVolumes"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        return

    async def cleanup(self, state: EBSState, build: BuildRun) -> None:
        ui = build.ui
        instance = state.instance
        if instance is None:
            ui.say("No volumes to clean up, skipping")
            return
        ui.say("Cleaning up any extra volumes...")
        # Volumes deleted with the instance cannot be left over: only those that outlive
        # it are asked about (Packer describes them all).
        kept = {d.device_name for d in state.config.launch_block_device_mappings}
        devices = {
            m["Ebs"]["VolumeId"]: m.get("DeviceName", "")
            for m in instance.get("BlockDeviceMappings", [])
            if m.get("Ebs", {}).get("VolumeId")
            and not m["Ebs"].get("DeleteOnTermination", False)
            and m.get("DeviceName") not in kept
        }
        if not devices:
            ui.say("No volumes to clean up, skipping")
            return
        try:
            answer = await state.aws.call(
                "describe_volumes",
                Filters=[{"Name": "volume-id", "Values": list(devices)}],
            )
        except AwsError as e:
            ui.error(f"Error describing volumes: {e}")
            return
        doomed = [v["VolumeId"] for v in answer.get("Volumes", []) if v.get("State") == "available"]
        if not doomed:
            ui.say("No volumes to clean up, skipping")
            return
        for volume_id in doomed:
            ui.say(f"Destroying volume ({volume_id})...")
            try:
                await state.aws.call("delete_volume", VolumeId=volume_id)
            except AwsError as e:
                ui.say(f"Error deleting volume: {e}")
            else:
                state.tracker.gone(tracking.VOLUME, volume_id, state.region)


async def instance_host(state: EBSState) -> str:
    """The address to connect to (Packer's SSHHost): ``ssh_host``, the interface
    asked for, else the public IP in a VPC (private if none), else the public DNS.
    An empty answer is refreshed with DescribeInstances, 3 times 1 s apart."""
    comm = state.config.comm
    if state.connect_override is not None:
        return state.connect_override[0]
    if comm.ssh_host:
        return comm.ssh_host
    interface = state.config.run.ssh_interface
    if interface == "session_manager":
        return "localhost"
    keys: dict[str, tuple[str, ...]] = {
        "public_ip": ("PublicIpAddress",),
        "private_ip": ("PrivateIpAddress",),
        "public_dns": ("PublicDnsName",),
        "private_dns": ("PrivateDnsName",),
    }
    for attempt in range(3):
        instance = state.instance or {}
        wanted: tuple[str, ...]
        if interface:
            wanted = keys[interface]
        elif instance.get("VpcId"):
            wanted = ("PublicIpAddress", "PrivateIpAddress")
        else:
            wanted = ("PublicDnsName",)
        for key in wanted:
            if instance.get(key):
                return str(instance[key])
        if attempt < 2:
            await asyncio.sleep(1.0)
            try:
                answer = await state.aws.call("describe_instances", InstanceIds=[state.instance_id])
                state.instance = answer["Reservations"][0]["Instances"][0]
            except (AwsError, IndexError, KeyError):
                continue
    raise AwsError("couldn't determine address for instance")

"""Find and remove what interrupted amazon builds left behind (``imagesmith cleanup``).

Two sources, combined:

* the local journal (``imagesmith.journal``): every resource a run created and did not
  cross off. Runs still alive (their journal is locked) are never touched;
* the ``imagesmith:run-id`` tag, for runs whose journal is gone (another machine, a
  lost CI worker). Such resources may belong to a build still running elsewhere, so
  they are only removed with ``force``; without it they are listed.

Removal goes in dependency order: AMIs (with their snapshots), snapshots whose AMI is
gone, instances (waiting until they are terminated), launch templates, volumes,
instance profiles and roles, security groups, key pairs. A failure is reported and the
rest goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from imagesmith.builders.amazon import tracking
from imagesmith.builders.amazon.access import AccessConfig
from imagesmith.builders.amazon.aws import AwsError, AwsSession
from imagesmith.builders.amazon.images import GONE_SNAPSHOT, SNAPSHOT_BUSY, destroy_image
from imagesmith.builders.amazon.waiters import WaiterError, WaitPolicy, instance_state
from imagesmith.journal import Entry, Leftover

ORDER = {kind: i for i, kind in enumerate(tracking.KINDS)}
TERMINATE_WAIT = WaitPolicy(delay=5.0, max_attempts=120)
DEPENDENCY_TRIES = 12


async def discover_tagged(
    aws: AwsSession, region: str, known_runs: set[str], running: set[str]
) -> tuple[list[Leftover], list[Leftover]]:
    """Resources carrying the run-id tag in ``region``: (of known runs, of others)."""
    tag_filter = [{"Name": "tag-key", "Values": [tracking.RUN_ID_TAG]}]
    found: list[Entry] = []

    def add(kind: str, resource_id: str, tags: list[dict[str, str]] | None) -> None:
        run_id = next((t["Value"] for t in tags or [] if t["Key"] == tracking.RUN_ID_TAG), "")
        if run_id and run_id not in running:
            found.append(
                Entry(
                    run_id=run_id,
                    kind=kind,
                    id=resource_id,
                    region=region,
                    endpoint=aws.access.custom_endpoint_ec2,
                    profile=aws.access.profile,
                )
            )

    answer = await aws.call("describe_instances", region=region, Filters=tag_filter)
    for reservation in answer.get("Reservations", []):
        for instance in reservation["Instances"]:
            if instance["State"]["Name"] != "terminated":
                add(tracking.INSTANCE, instance["InstanceId"], instance.get("Tags"))
    answer = await aws.call("describe_images", region=region, Owners=["self"], Filters=tag_filter)
    for image in answer.get("Images", []):
        add(tracking.IMAGE, image["ImageId"], image.get("Tags"))
    answer = await aws.call(
        "describe_snapshots", region=region, OwnerIds=["self"], Filters=tag_filter
    )
    for snapshot in answer.get("Snapshots", []):
        add(tracking.SNAPSHOT, snapshot["SnapshotId"], snapshot.get("Tags"))
    answer = await aws.call("describe_security_groups", region=region, Filters=tag_filter)
    for group in answer.get("SecurityGroups", []):
        add(tracking.SECURITY_GROUP, group["GroupId"], group.get("Tags"))
    answer = await aws.call("describe_key_pairs", region=region, Filters=tag_filter)
    for pair in answer.get("KeyPairs", []):
        add(tracking.KEY_PAIR, pair["KeyName"], pair.get("Tags"))
    answer = await aws.call("describe_launch_templates", region=region, Filters=tag_filter)
    for template in answer.get("LaunchTemplates", []):
        add(tracking.LAUNCH_TEMPLATE, template["LaunchTemplateName"], template.get("Tags"))
    known = [Leftover(e) for e in found if e.run_id in known_runs]
    foreign = [Leftover(e) for e in found if e.run_id not in known_runs]
    return known, foreign


async def discover_tagged_iam(
    aws: AwsSession, region: str, known_runs: set[str], running: set[str]
) -> tuple[list[Leftover], list[Leftover]]:
    """Temporary roles and instance profiles (``packer-<uuid>``) carrying the run-id tag
    (IAM lists them without their tags: each candidate's tags are read)."""
    found: list[Entry] = []

    def add(kind: str, name: str, tags: list[dict[str, str]]) -> None:
        run_id = next((t["Value"] for t in tags if t["Key"] == tracking.RUN_ID_TAG), "")
        if run_id and run_id not in running:
            found.append(Entry(run_id=run_id, kind=kind, id=name, region=region))

    roles = await aws.call("list_roles", service="iam")
    for role in roles.get("Roles", []):
        name = role["RoleName"]
        if name.startswith("packer-"):
            tags = await aws.call("list_role_tags", service="iam", RoleName=name)
            add(tracking.ROLE, name, tags.get("Tags", []))
    profiles = await aws.call("list_instance_profiles", service="iam")
    for profile in profiles.get("InstanceProfiles", []):
        name = profile["InstanceProfileName"]
        if name.startswith("packer-"):
            answer = await aws.call("get_instance_profile", service="iam", InstanceProfileName=name)
            add(tracking.INSTANCE_PROFILE, name, answer["InstanceProfile"].get("Tags", []))
    known = [Leftover(e) for e in found if e.run_id in known_runs]
    foreign = [Leftover(e) for e in found if e.run_id not in known_runs]
    return known, foreign


def session_for(entry: Entry, default_region: str) -> AwsSession:
    access = AccessConfig(
        region=entry.region or default_region,
        profile=entry.profile,
        custom_endpoint_ec2=entry.endpoint,
    )
    return AwsSession(access)


async def remove_all(
    leftovers: list[Leftover],
    *,
    default_region: str,
    say: Callable[[str], None],
    error: Callable[[str], None],
) -> int:
    """Remove ``leftovers`` in dependency order; returns how many could not be."""
    failures = 0
    sessions: dict[tuple[str, str, str], AwsSession] = {}
    by_kind: dict[str, list[Leftover]] = {}
    for leftover in leftovers:
        by_kind.setdefault(leftover.entry.kind, []).append(leftover)

    def session(entry: Entry) -> AwsSession:
        key = (entry.region, entry.endpoint, entry.profile)
        if key not in sessions:
            sessions[key] = session_for(entry, default_region)
        return sessions[key]

    async def remove(leftover: Leftover) -> bool:
        entry = leftover.entry
        say(f"Removing {leftover.label}...")
        try:
            await _remove(session(entry), entry)
        except (AwsError, WaiterError) as e:
            error(f"Could not remove {leftover.label}: {e}")
            return False
        if leftover.journal is not None:
            leftover.journal.remove(entry)
        say(f"Removed {leftover.label}")
        return True

    for kind in sorted(by_kind, key=lambda k: ORDER.get(k, len(ORDER))):
        group = by_kind[kind]
        if kind == tracking.INSTANCE:
            # Terminating instances takes a while each: wait for them together.
            results = await asyncio.gather(*(remove(lo) for lo in group))
        else:
            results = [await remove(lo) for lo in group]
        failures += sum(not ok for ok in results)
    return failures


async def _remove(aws: AwsSession, entry: Entry) -> None:
    region = entry.region
    kind = entry.kind
    if kind == tracking.IMAGE:
        await destroy_image(aws, region, entry.id)
    elif kind == tracking.SNAPSHOT:
        # Usually gone with its AMI, removed just before.
        await _ignore_missing(
            aws.call(
                "delete_snapshot",
                region=region,
                retry_codes=SNAPSHOT_BUSY,
                tries=DEPENDENCY_TRIES,
                SnapshotId=entry.id,
            ),
            *GONE_SNAPSHOT,
        )
    elif kind == tracking.INSTANCE:
        await _ignore_missing(
            aws.call("terminate_instances", region=region, InstanceIds=[entry.id]),
            "InvalidInstanceID.NotFound",
        )
        try:
            await instance_state(aws, entry.id, "terminated", TERMINATE_WAIT, region=region)
        except AwsError as e:
            if e.code != "InvalidInstanceID.NotFound":
                raise
    elif kind == tracking.LAUNCH_TEMPLATE:
        await _ignore_missing(
            aws.call("delete_launch_template", region=region, LaunchTemplateName=entry.id),
            "InvalidLaunchTemplateName.NotFoundException",
        )
    elif kind == tracking.VOLUME:
        await _ignore_missing(
            aws.call(
                "delete_volume",
                region=region,
                retry_codes=("VolumeInUse", "IncorrectState"),
                tries=DEPENDENCY_TRIES,
                VolumeId=entry.id,
            ),
            "InvalidVolume.NotFound",
        )
    elif kind == tracking.INSTANCE_PROFILE:
        await _remove_instance_profile(aws, entry.id)
    elif kind == tracking.ROLE:
        await _remove_role(aws, entry.id)
    elif kind == tracking.SECURITY_GROUP:
        await _ignore_missing(
            aws.call(
                "delete_security_group",
                region=region,
                retry_codes=("DependencyViolation",),
                tries=DEPENDENCY_TRIES,
                GroupId=entry.id,
            ),
            "InvalidGroup.NotFound",
        )
    elif kind == tracking.KEY_PAIR:
        await aws.call("delete_key_pair", region=region, KeyName=entry.id)
    else:
        raise AwsError(f"unknown kind of resource {kind!r} in the journal")


async def _ignore_missing(call: Any, *codes: str) -> None:
    try:
        await call
    except AwsError as e:
        if e.code not in codes:
            raise


async def _remove_instance_profile(aws: AwsSession, name: str) -> None:
    try:
        answer = await aws.call("get_instance_profile", service="iam", InstanceProfileName=name)
    except AwsError as e:
        if e.code == "NoSuchEntity":
            return
        raise
    for role in answer["InstanceProfile"].get("Roles", []):
        await aws.call(
            "remove_role_from_instance_profile",
            service="iam",
            InstanceProfileName=name,
            RoleName=role["RoleName"],
        )
    await _ignore_missing(
        aws.call("delete_instance_profile", service="iam", InstanceProfileName=name),
        "NoSuchEntity",
    )


async def _remove_role(aws: AwsSession, name: str) -> None:
    try:
        answer = await aws.call("list_role_policies", service="iam", RoleName=name)
    except AwsError as e:
        if e.code == "NoSuchEntity":
            return
        raise
    for policy in answer.get("PolicyNames", []):
        await aws.call("delete_role_policy", service="iam", RoleName=name, PolicyName=policy)
    profiles = await aws.call("list_instance_profiles_for_role", service="iam", RoleName=name)
    for profile in profiles.get("InstanceProfiles", []):
        await aws.call(
            "remove_role_from_instance_profile",
            service="iam",
            InstanceProfileName=profile["InstanceProfileName"],
            RoleName=name,
        )
    await _ignore_missing(aws.call("delete_role", service="iam", RoleName=name), "NoSuchEntity")

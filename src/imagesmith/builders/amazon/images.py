"""An AMI's snapshots, and removing an AMI with them: shared by the steps, their
cleanups, the artifact's ``destroy`` and ``imagesmith cleanup``."""

from __future__ import annotations

from collections.abc import Callable

from imagesmith.builders.amazon.aws import AwsError, AwsSession
from imagesmith.builders.amazon.state import EBSState, Json
from imagesmith.builders.amazon.tracking import RUN_ID_TAG

GONE_IMAGE = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})
GONE_SNAPSHOT = frozenset({"InvalidSnapshot.NotFound"})
# A snapshot stays "in use" for a moment after its AMI is deregistered.
SNAPSHOT_BUSY = frozenset({"InvalidSnapshot.InUse"})
# Packer retries these on UnauthorizedOperation (IAM changes taking effect).
NOT_YET_AUTHORIZED = frozenset({"UnauthorizedOperation"})


async def tag_new_snapshots(
    state: EBSState, region: str, snapshots: list[str], say_error: Callable[[str], None]
) -> None:
    """Put the run-id tag on ``snapshots``, made for ``region``'s AMI that just became
    available (their ids were not known before). A failure is reported and the build
    goes on: the AMI, tagged from its creation, still leads ``imagesmith cleanup`` to
    them."""
    if not snapshots:
        return
    try:
        await state.aws.call(
            "create_tags",
            region=region,
            retry_codes=GONE_SNAPSHOT,
            Resources=snapshots,
            Tags=[state.tracker.tag()],
        )
    except AwsError as e:
        # The first line: the request id that follows is no use in a warning.
        said = str(e).splitlines()[0]
        say_error(
            f"Could not tag snapshots {', '.join(snapshots)} in {region} with "
            f"{RUN_ID_TAG}: {said}. imagesmith cleanup finds them through their AMI."
        )


def snapshot_ids(image: Json) -> list[str]:
    return [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings", [])
        if (m.get("Ebs") or {}).get("SnapshotId")
    ]


async def destroy_image(
    aws: AwsSession,
    region: str,
    image_id: str,
    *,
    report: Callable[[str], None] | None = None,
) -> bool:
    """Deregister ``image_id`` and delete its snapshots. Idempotent: an image already
    gone is not an error. Returns False when the image was not there at all.

    Snapshots are found in the image's block device mapping, or, for an image that
    never became available (its mapping may be empty), by the description EC2 gives
    the snapshots CreateImage makes.
    """
    say = report or (lambda _text: None)
    try:
        answer = await aws.call(
            "describe_images", region=region, retry_codes=NOT_YET_AUTHORIZED, ImageIds=[image_id]
        )
        images = answer.get("Images", [])
    except AwsError as e:
        if e.code not in GONE_IMAGE:
            raise
        images = []
    snapshots = snapshot_ids(images[0]) if images else []
    if images:
        try:
            await aws.call(
                "deregister_image",
                region=region,
                retry_codes=NOT_YET_AUTHORIZED,
                ImageId=image_id,
            )
        except AwsError as e:
            if e.code not in GONE_IMAGE:
                raise
        say(f"Deregistered AMI id: {image_id}")
    if not snapshots:
        snapshots = await _snapshots_by_description(aws, region, image_id)
    for snapshot in snapshots:
        try:
            await aws.call(
                "delete_snapshot",
                region=region,
                retry_codes=SNAPSHOT_BUSY | NOT_YET_AUTHORIZED,
                SnapshotId=snapshot,
            )
        except AwsError as e:
            if e.code not in GONE_SNAPSHOT:
                raise
            continue
        say(f"Deleted snapshot: {snapshot}")
    return bool(images or snapshots)


async def _snapshots_by_description(aws: AwsSession, region: str, image_id: str) -> list[str]:
    answer = await aws.call(
        "describe_snapshots",
        region=region,
        OwnerIds=["self"],
        Filters=[{"Name": "description", "Values": [f"Created by CreateImage(*) for {image_id}*"]}],
    )
    return [s["SnapshotId"] for s in answer.get("Snapshots", [])]

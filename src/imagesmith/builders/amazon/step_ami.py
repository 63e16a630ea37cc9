"""StepDeregisterAMI and stepCreateAMI: make room for the AMI, then make it."""

from __future__ import annotations

import secrets
import string
from typing import Any

from imagesmith.builders.amazon import tracking, waiters
from imagesmith.builders.amazon.aws import AwsError, finish_despite_cancel
from imagesmith.builders.amazon.block_devices import to_api
from imagesmith.builders.amazon.common import fail, prettify
from imagesmith.builders.amazon.images import destroy_image, snapshot_ids, tag_new_snapshots
from imagesmith.builders.amazon.state import EBSState
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step

RESOURCE_NOT_READY_HELP = (
    "Failed with ResourceNotReady error, which can have a variety of causes. For help "
    "troubleshooting, check our docs: "
    "https://www.packer.io/docs/builders/amazon.html#resourcenotready-error\n"
    "original error: "
)
# CreateImage right after the stop may see the instance still "stopping".
CREATE_IMAGE_TRIES = 40


def random_name(length: int = 7) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


class StepDeregisterAMI(Step[EBSState]):
    """``force_deregister``: deregister the AMIs of the same name, in every target region
    and then the build region (and their snapshots with ``force_delete_snapshot``)."""

    name = "StepDeregisterAMI"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        ami = state.config.ami
        if not ami.force_deregister or state.config.skip_create_ami:
            return
        for region in [*ami.ami_regions, state.region]:
            try:
                answer = await state.aws.call(
                    "describe_images",
                    region=region,
                    Owners=["self"],
                    Filters=[{"Name": "name", "Values": [ami.ami_name]}],
                )
            except AwsError as e:
                fail(build, f"Error describing AMI: {e}")
            for image in answer.get("Images", []):
                try:
                    await state.aws.call(
                        "deregister_image", region=region, ImageId=image["ImageId"]
                    )
                except AwsError as e:
                    fail(build, f"Error deregistering existing AMI: {e}")
                build.ui.say(f"Deregistered AMI {ami.ami_name}, id: {image['ImageId']}")
                if not ami.force_delete_snapshot:
                    continue
                for snapshot in snapshot_ids(image):
                    try:
                        await state.aws.call("delete_snapshot", region=region, SnapshotId=snapshot)
                    except AwsError as e:
                        fail(build, f"Error deleting existing snapshot: {e}")
                    build.ui.say(f"Deleted snapshot: {snapshot}")


class StepCreateAMI(Step[EBSState]):
    """CreateImage and wait for it; sets ``amis``, ``snapshots``, ``intermediary_image``.

    Unlike Packer, the cleanup also removes an AMI whose wait failed or was
    interrupted: it exists from CreateImage on, available or not.
    """

    name = "stepCreateAMI"

    def __init__(self) -> None:
        self.image_id = ""

    async def run(self, state: EBSState, build: BuildRun) -> None:
        c = state.config
        ui = build.ui
        if c.skip_create_ami:
            ui.say("Skipping AMI creation...")
            return
        name = c.ami.ami_name
        if c.ami.encrypt_boot is True or c.ami.skip_save_build_region:
            name = random_name()
            state.intermediary_image = True
        instance_id = state.instance_id
        ui.say(f"Creating AMI {name} from instance {instance_id}")

        params: dict[str, Any] = {
            "InstanceId": instance_id,
            "Name": name,
            "TagSpecifications": [state.tracker.tag_spec("image")],
        }
        if c.ami_block_device_mappings:
            params["BlockDeviceMappings"] = to_api(c.ami_block_device_mappings)

        async def create() -> str:
            answer = await state.aws.call(
                "create_image",
                retry_if=lambda e: "Instance is not in state" in str(e),
                tries=CREATE_IMAGE_TRIES,
                **params,
            )
            image_id = str(answer["ImageId"])
            self.image_id = image_id
            state.tracker.created(tracking.IMAGE, image_id, state.region, instance=instance_id)
            return image_id

        try:
            image_id = await finish_despite_cancel(create())
        except AwsError as e:
            fail(build, f"Error creating AMI: {e}")
        state.amis[state.region] = image_id
        if state.rehearsal is not None:
            await state.rehearsal.backend.image_created(
                instance_id=instance_id, image_id=image_id, image_name=name
            )

        ui.message(f"AMI: {image_id}")
        ui.say("Waiting for AMI to become ready...")
        how = waiters.policy(c.access.aws_polling, image=True)
        try:
            image = await waiters.image_available(state.aws, image_id, how)
        except (waiters.WaiterError, AwsError) as e:
            message = f"Error waiting for AMI: {RESOURCE_NOT_READY_HELP}{e}"
            message += await self._state_reason(state, image_id)
            fail(build, message)
        snapshots = state.snapshots[state.region] = snapshot_ids(image)
        if not state.run_id_with_tags(snapshots):
            region = state.region
            await tag_new_snapshots(state, region, state.new_snapshots(region), ui.error)

    async def _state_reason(self, state: EBSState, image_id: str) -> str:
        try:
            answer = await state.aws.call("describe_images", ImageIds=[image_id])
        except AwsError as e:
            return f". DescribeImages returned an error: {e}"
        images = answer.get("Images", [])
        if images and images[0].get("StateReason"):
            return (
                f". DescribeImages returned the state reason: {prettify(images[0]['StateReason'])}"
            )
        return ""

    async def cleanup(self, state: EBSState, build: BuildRun) -> None:
        if not self.image_id or not (build.halted or build.cancelled):
            return
        ui = build.ui
        ui.say(
            "Deregistering the AMI and deleting associated snapshots because of "
            "cancellation, or error..."
        )
        try:
            await destroy_image(state.aws, state.region, self.image_id, report=ui.say)
        except AwsError as e:
            ui.error(f"Error deregistering AMI, may still be around: {e}")
            return
        state.tracker.gone(tracking.IMAGE, self.image_id, state.region)

"""StepAMIRegionCopy: copy (and encrypt) the AMI to ``ami_regions``, in parallel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from imagesmith.builders.amazon import tracking, waiters
from imagesmith.builders.amazon.aws import AwsError, finish_despite_cancel
from imagesmith.builders.amazon.images import destroy_image, snapshot_ids, tag_new_snapshots
from imagesmith.builders.amazon.state import EBSState
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step
from imagesmith.errors import BuildError, format_packer_multierror


class StepAMIRegionCopy(Step[EBSState]):
    """Updates ``amis`` and ``snapshots`` with the copies. An intermediary image (for
    ``encrypt_boot`` or ``skip_save_build_region``) is copied into the build region
    too, replaces the original there, and is removed at cleanup.

    Unlike Packer, a build that fails or is interrupted after (or during) the copy
    removes the copies as well: they are AMIs of a build that did not finish.
    """

    name = "StepAMIRegionCopy"

    def __init__(self) -> None:
        self.source_image = ""
        self.copies: dict[str, str] = {}
        self.copy_snapshots: dict[str, list[str]] = {}

    async def run(self, state: EBSState, build: BuildRun) -> None:
        c = state.config
        ui = build.ui
        if c.skip_create_ami:
            ui.say("Skipping AMI region copy...")
            return
        targets = list(c.ami.ami_regions)
        if state.intermediary_image and not c.ami.skip_save_build_region:
            targets.append(state.region)
        if not targets:
            return
        self.source_image = state.amis[state.region]
        ui.say(f"Copying/Encrypting AMI ({self.source_image}) to other regions...")
        for region in targets:
            ui.message(f"Copying to: {region}")
        ui.message("Waiting for all copies to complete...")

        results = await asyncio.gather(
            *(self._copy(state, region, ui.error) for region in targets), return_exceptions=True
        )
        errors: list[str] = []
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                errors.append(str(result))
        if state.intermediary_image:
            # The copy stands for the build region's AMI from now on.
            del state.amis[state.region]
            state.snapshots.pop(state.region, None)
        for region, image_id in self.copies.items():
            state.amis[region] = image_id
            if region in self.copy_snapshots:
                state.snapshots[region] = self.copy_snapshots[region]
        if errors:
            message = format_packer_multierror(errors)
            ui.error(message)
            raise BuildError(message)

    async def _copy(self, state: EBSState, region: str, say_error: Callable[[str], None]) -> None:
        c = state.config
        params: dict[str, Any] = {
            "SourceRegion": state.region,
            "SourceImageId": self.source_image,
            "Name": c.ami.ami_name,
            "ClientToken": str(uuid.uuid4()),
            "TagSpecifications": [state.tracker.tag_spec("image")],
        }
        if c.ami.encrypt_boot is not None:
            params["Encrypted"] = c.ami.encrypt_boot
        key = c.ami.kms_key_id if region == state.region else c.ami.region_kms_key_ids.get(region)
        if key:
            params["KmsKeyId"] = key

        async def copy() -> str:
            answer = await state.aws.call("copy_image", region=region, **params)
            image_id = str(answer["ImageId"])
            self.copies[region] = image_id
            state.tracker.created(tracking.IMAGE, image_id, region)
            return image_id

        try:
            image_id = await finish_despite_cancel(copy())
        except AwsError as e:
            raise BuildError(
                f"Error Copying AMI ({self.source_image}) to region ({region}): {e}"
            ) from None
        how = waiters.policy(c.access.aws_polling, image=True)
        try:
            image = await waiters.image_available(state.aws, image_id, how, region=region)
        except (waiters.WaiterError, AwsError) as e:
            raise BuildError(
                f"Error waiting for AMI ({image_id}) in region ({region}): {e}"
            ) from None
        # Every snapshot of a copy is new, those of snapshots the user gave included.
        snapshots = self.copy_snapshots[region] = snapshot_ids(image)
        if not state.run_id_with_tags(snapshots):
            await tag_new_snapshots(state, region, snapshots, say_error)

    async def cleanup(self, state: EBSState, build: BuildRun) -> None:
        ui = build.ui
        if build.halted or build.cancelled:
            await self._remove_copies(state, build)
        if state.intermediary_image and self.source_image:
            ui.say("Deregistering the AMI and deleting unencrypted temporary AMIs and snapshots")
            try:
                await destroy_image(state.aws, state.region, self.source_image)
            except AwsError as e:
                ui.error(f"Error deregistering AMI, may still be around: {e}")
                return
            state.tracker.gone(tracking.IMAGE, self.source_image, state.region)

    async def _remove_copies(self, state: EBSState, build: BuildRun) -> None:
        if not self.copies:
            return
        ui = build.ui
        ui.say(
            "Deregistering the AMI and deleting associated snapshots because of "
            "cancellation, or error..."
        )
        for region, image_id in self.copies.items():
            try:
                await destroy_image(state.aws, region, image_id, report=ui.say)
            except AwsError as e:
                ui.error(
                    f"Error deregistering AMI ({image_id}) in {region}, may still be around: {e}"
                )
                continue
            state.tracker.gone(tracking.IMAGE, image_id, region)

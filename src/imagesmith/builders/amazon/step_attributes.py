"""After the AMIs exist: deprecation, launch/volume permissions, description, tags."""

from __future__ import annotations

from typing import Any

from imagesmith.builders.amazon.aws import AwsError
from imagesmith.builders.amazon.common import fail
from imagesmith.builders.amazon.state import EBSState
from imagesmith.builders.amazon.template_data import ec2_tags, render, render_tags, report_tags
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step

NOT_YET_TAGGABLE = frozenset({"InvalidAMIID.NotFound", "InvalidSnapshot.NotFound"})


class StepEnableDeprecation(Step[EBSState]):
    """``deprecate_at`` on every AMI of the build (copies included)."""

    name = "StepEnableDeprecation"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        when = state.config.ami.deprecate_at
        if not when or state.config.skip_create_ami:
            return
        for region, image_id in state.amis.items():
            build.ui.say(f'Enabling deprecation on AMI ({image_id}) in region "{region}" ...')
            try:
                await state.aws.call(
                    "enable_image_deprecation", region=region, ImageId=image_id, DeprecateAt=when
                )
            except AwsError as e:
                fail(build, f"Error enabling AMI deprecation on {image_id} in {region}: {e}")


class StepModifyAMIAttributes(Step[EBSState]):
    """Description, launch permissions, product codes and IMDS support of each AMI;
    volume permissions of each snapshot."""

    name = "StepModifyAMIAttributes"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        ami = state.config.ami
        if not (
            ami.ami_description
            or ami.ami_groups
            or ami.ami_users
            or ami.ami_product_codes
            or ami.snapshot_users
            or ami.snapshot_groups
            or ami.imds_support
        ):
            return
        ui = build.ui
        if state.config.skip_create_ami:
            ui.say("Skipping AMI modify attributes...")
            return
        try:
            description = render(state, ami.ami_description)
        except Exception as e:
            fail(build, f"Error interpolating AMI description: {e}")

        image_options = _image_options(state, description)
        for region, image_id in state.amis.items():
            ui.say(f"Modifying attributes on AMI ({image_id})...")
            for label, options in image_options:
                ui.message(f"Modifying: {label}")
                try:
                    await state.aws.call(
                        "modify_image_attribute", region=region, ImageId=image_id, **options
                    )
                except AwsError as e:
                    fail(build, f"Error modify AMI attributes: {e}")

        snapshot_options = _snapshot_options(state)
        for region, snapshots in state.snapshots.items():
            for snapshot in snapshots:
                ui.say(f"Modifying attributes on snapshot ({snapshot})...")
                for label, options in snapshot_options:
                    ui.message(f"Modifying: {label}")
                    try:
                        await state.aws.call(
                            "modify_snapshot_attribute",
                            region=region,
                            SnapshotId=snapshot,
                            **options,
                        )
                    except AwsError as e:
                        fail(build, f"Error modify snapshot attributes: {e}")


def _image_options(state: EBSState, description: str) -> list[tuple[str, dict[str, Any]]]:
    ami = state.config.ami
    options: list[tuple[str, dict[str, Any]]] = []
    if description:
        options.append(("description", {"Description": {"Value": description}}))
    if ami.ami_groups:
        permissions = [{"Group": g} for g in ami.ami_groups]
        options.append(
            ("groups", {"UserGroups": ami.ami_groups, "LaunchPermission": {"Add": permissions}})
        )
    if ami.ami_users:
        permissions = [{"UserId": u} for u in ami.ami_users]
        options.append(
            ("users", {"UserIds": ami.ami_users, "LaunchPermission": {"Add": permissions}})
        )
    if ami.ami_product_codes:
        options.append(("product codes", {"ProductCodes": ami.ami_product_codes}))
    if ami.imds_support:
        options.append(("imds_support", {"ImdsSupport": {"Value": ami.imds_support}}))
    return options


def _snapshot_options(state: EBSState) -> list[tuple[str, dict[str, Any]]]:
    ami = state.config.ami
    options: list[tuple[str, dict[str, Any]]] = []
    if ami.snapshot_groups:
        permissions = [{"Group": g} for g in ami.snapshot_groups]
        options.append(
            (
                "groups",
                {"GroupNames": ami.snapshot_groups, "CreateVolumePermission": {"Add": permissions}},
            )
        )
    if ami.snapshot_users:
        permissions = [{"UserId": u} for u in ami.snapshot_users]
        options.append(
            (
                "users",
                {"UserIds": ami.snapshot_users, "CreateVolumePermission": {"Add": permissions}},
            )
        )
    return options


class StepCreateTags(Step[EBSState]):
    """``tags`` on every AMI and its snapshots, then ``snapshot_tags`` on the snapshots
    (winning over ``tags`` for a shared key)."""

    name = "StepCreateTags"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        ami = state.config.ami
        if not ami.tags and not ami.snapshot_tags:
            return
        ui = build.ui
        if state.config.skip_create_ami:
            ui.say("Skipping AMI create tags...")
            return
        for region, image_id in state.amis.items():
            ui.say(f"Adding tags to AMI ({image_id})...")
            # The snapshots are known from the wait for the AMI; Packer describes the
            # AMI again here to find them.
            snapshots = state.snapshots.get(region, [])
            for snapshot in snapshots:
                ui.say(f"Tagging snapshot: {snapshot}")
            try:
                # Rendered per region, but BuildRegion stays the build region.
                image_tags = render_tags(state, ami.tags)
                snapshot_tags = render_tags(state, ami.snapshot_tags)
            except Exception as e:
                fail(build, f"Error tagging AMI: {e}")
            ui.say("Creating AMI tags")
            report_tags(ui, image_tags)
            ui.say("Creating snapshot tags")
            report_tags(ui, snapshot_tags)

            resources = [image_id, *snapshots]
            try:
                if image_tags:
                    tags = ec2_tags(image_tags)
                    if state.run_id_with_tags(snapshots):
                        # The new snapshots' run-id tag rides along (the AMI has it).
                        tags.append(state.tracker.tag())
                    await state.aws.call(
                        "create_tags",
                        region=region,
                        retry_codes=NOT_YET_TAGGABLE,
                        Resources=resources,
                        Tags=tags,
                    )
                if snapshot_tags and snapshots:
                    resources = snapshots
                    await state.aws.call(
                        "create_tags",
                        region=region,
                        retry_codes=NOT_YET_TAGGABLE,
                        Resources=snapshots,
                        Tags=ec2_tags(snapshot_tags),
                    )
            except AwsError as e:
                fail(build, f"Error adding tags to Resources ({resources}): {e}")

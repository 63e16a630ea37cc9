"""StepPreValidate: checks that need AWS but cost nothing (regions, VPC, AMI name)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from imagesmith.builders.amazon.aws import AwsError
from imagesmith.builders.amazon.common import fail, go_list
from imagesmith.builders.amazon.state import EBSState, Json
from imagesmith.builders.amazon.step_source import prefetch_source
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step

VAULT_WAIT_TRIES = 11
NAME_KEY = "ami-name"


class StepPreValidate(Step[EBSState]):
    """Reads the config; sets nothing. Fails before anything is created."""

    name = "StepPreValidate"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        c = state.config
        ui = build.ui
        if not c.access.vault_aws_engine.empty():
            await self._wait_for_vault_credentials(state, build)
        # The checks below and the source AMI's lookup only read: send them together.
        prefetch_source(state)
        if self._checks_name(state):
            state.prefetch(NAME_KEY, self._name_query(state))
        if not c.access.skip_region_validation:
            await self._validate_regions(state, build)

        if c.ami.force_deregister:
            ui.say("Force Deregister flag found, skipping prevalidating AMI Name")
            return
        if c.ami.skip_save_build_region:
            ui.say("skip_build_region was set; not prevalidating AMI name")
            return
        if c.skip_create_ami:
            ui.say("skip_create_ami was set; not prevalidating AMI name")
            return

        ui.say("Prevalidating any provided VPC information")
        run = c.run
        if run.vpc_id and not run.subnet_id and run.subnet_filter.empty():
            await self._check_default_vpc(state, build, run.vpc_id)

        ui.say(f"Prevalidating AMI Name: {c.ami.ami_name}")
        try:
            answer = await (state.take(NAME_KEY) or self._name_query(state))
        except AwsError as e:
            fail(build, f"Error querying AMI: {e}")
        images = answer.get("Images", [])
        if images:
            fail(
                build,
                f"Error: AMI Name: '{images[0]['Name']}' is used by an existing AMI: "
                f"{images[0]['ImageId']}",
            )

    @staticmethod
    def _checks_name(state: EBSState) -> bool:
        c = state.config
        return not (c.ami.force_deregister or c.ami.skip_save_build_region or c.skip_create_ami)

    @staticmethod
    def _name_query(state: EBSState) -> Awaitable[Json]:
        # Packer 1.6.6 leaves out the owner, so that anyone's public AMI of the same name
        # stops the build; only the account's own AMIs can clash.
        return state.aws.call(
            "describe_images",
            Owners=["self"],
            Filters=[{"Name": "name", "Values": [state.config.ami.ami_name]}],
        )

    async def _validate_regions(self, state: EBSState, build: BuildRun) -> None:
        wanted = [*state.config.ami.ami_regions, state.region]
        try:
            answer = await state.aws.call("describe_regions")
        except AwsError as e:
            fail(build, f"error validating regions: {e}")
        available = [r["RegionName"] for r in answer.get("Regions", [])]
        invalid = [r for r in wanted if r not in available]
        if invalid:
            fail(
                build,
                f"error validating regions: Invalid region(s): {go_list(invalid)}, "
                f"available regions: {go_list(available)}",
            )

    async def _check_default_vpc(self, state: EBSState, build: BuildRun, vpc_id: str) -> None:
        try:
            answer = await state.aws.call("describe_vpcs", VpcIds=[vpc_id])
        except AwsError as e:
            fail(build, f"Error retrieving VPC information for vpc_id {vpc_id}: {e}")
        vpcs = answer.get("Vpcs", [])
        if not vpcs or not vpcs[0].get("IsDefault"):
            fail(
                build,
                "Error: subnet_id or subnet_filter must be provided for non-default VPCs "
                f"({vpc_id})",
            )

    async def _wait_for_vault_credentials(self, state: EBSState, build: BuildRun) -> None:
        """Vault's new IAM user takes a while to be known to EC2: retry on AuthFailure."""
        build.ui.say(
            "You're using Vault-generated AWS credentials. It may take a few moments for "
            "them to become available on AWS. Waiting..."
        )
        for attempt in range(VAULT_WAIT_TRIES):
            try:
                await state.aws.call("describe_regions")
                return
            except AwsError as e:
                if e.code != "AuthFailure":
                    raise
            await asyncio.sleep(min(30.0, 0.5 * 2**attempt))
        fail(
            build,
            "Was unable to Authenticate to AWS using Vault-Generated Credentials within the "
            "retry timeout.",
        )

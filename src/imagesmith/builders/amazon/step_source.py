"""StepSourceAMIInfo and StepNetworkInfo: what to launch, and where."""

from __future__ import annotations

import random
from typing import Any

from imagesmith.builders.amazon.aws import AwsError
from imagesmith.builders.amazon.common import fail, filters, prettify
from imagesmith.builders.amazon.state import EBSState
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step

PREFETCH_KEY = "source-image"


def source_query(state: EBSState) -> dict[str, Any]:
    """DescribeImages parameters for ``source_ami`` / ``source_ami_filter``."""
    run = state.config.run
    params: dict[str, Any] = {}
    wanted = run.source_ami_filter.all_filters()
    if wanted:
        params["Filters"] = filters(wanted)
    if run.source_ami:
        params["ImageIds"] = [run.source_ami]
    if run.source_ami_filter.owners:
        params["Owners"] = run.source_ami_filter.owners
    return params


def prefetch_source(state: EBSState) -> None:
    state.prefetch(PREFETCH_KEY, state.aws.call("describe_images", **source_query(state)))


class StepSourceAMIInfo(Step[EBSState]):
    """Resolves ``source_ami`` / ``source_ami_filter``; sets ``source_image``."""

    name = "StepSourceAMIInfo"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        run = state.config.run
        params = source_query(state)
        # StepPreValidate started this call, so that both wait on the network together.
        started = state.take(PREFETCH_KEY)
        try:
            answer = await (started or state.aws.call("describe_images", **params))
        except AwsError as e:
            fail(build, f"Error querying AMI: {e}")

        images = answer.get("Images", [])
        if not images:
            fail(build, f"No AMI was found matching filters: {prettify(params)}")
        if len(images) > 1 and not run.source_ami_filter.most_recent:
            fail(
                build,
                "Your query returned more than one result. Please try a more specific "
                "search, or set most_recent to true.",
            )
        image = (
            max(images, key=lambda i: i.get("CreationDate", "")) if len(images) > 1 else images[0]
        )
        build.ui.message(f"Found Image ID: {image['ImageId']}")

        ami = state.config.ami
        if ami.ena_support is True or ami.sriov_support:
            virt = ami.ami_virtualization_type
            if virt and virt != "hvm":
                fail(build, f"Cannot enable enhanced networking, AMIVirtType '{virt}' is not HVM")
            if not virt and image.get("VirtualizationType") != "hvm":
                fail(
                    build,
                    f"Cannot enable enhanced networking, source AMI '{image['ImageId']}' "
                    "is not HVM",
                )
        state.source_image = image


class StepNetworkInfo(Step[EBSState]):
    """Resolves ``vpc_filter`` / ``subnet_filter``; sets ``vpc_id``, ``subnet_id`` and
    ``availability_zone`` (each may stay empty: the default VPC, AWS's choice)."""

    name = "StepNetworkInfo"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        run = state.config.run
        state.vpc_id = run.vpc_id
        state.subnet_id = run.subnet_id
        state.availability_zone = run.availability_zone

        if not state.vpc_id and not run.vpc_filter.empty():
            await self._find_vpc(state, build)
        if not state.subnet_id and not run.subnet_filter.empty():
            await self._find_subnet(state, build)
        if state.subnet_id and (not state.availability_zone or not state.vpc_id):
            try:
                answer = await state.aws.call("describe_subnets", SubnetIds=[state.subnet_id])
            except AwsError as e:
                fail(build, f"Describing the subnet: {state.subnet_id} returned error: {e}.")
            subnet = answer["Subnets"][0]
            state.availability_zone = state.availability_zone or subnet["AvailabilityZone"]
            state.vpc_id = state.vpc_id or subnet["VpcId"]

    async def _find_vpc(self, state: EBSState, build: BuildRun) -> None:
        params: dict[str, Any] = {"Filters": filters(state.config.run.vpc_filter.all_filters())}
        try:
            answer = await state.aws.call("describe_vpcs", **params)
        except AwsError as e:
            fail(build, f"Error querying VPCs: {e}")
        vpcs = answer.get("Vpcs", [])
        if len(vpcs) != 1:
            fail(
                build,
                f"Exactly one VPC should match the filter, but {len(vpcs)} VPC's was found "
                f"matching filters: {prettify(params)}",
            )
        state.vpc_id = vpcs[0]["VpcId"]
        build.ui.message(f"Found VPC ID: {state.vpc_id}")

    async def _find_subnet(self, state: EBSState, build: BuildRun) -> None:
        options = state.config.run.subnet_filter
        wanted = {**options.all_filters(), "state": "available"}
        if state.vpc_id:
            wanted["vpc-id"] = state.vpc_id
        if state.availability_zone:
            wanted["availabilityZone"] = state.availability_zone
        params: dict[str, Any] = {"Filters": filters(wanted)}
        try:
            answer = await state.aws.call("describe_subnets", **params)
        except AwsError as e:
            fail(build, f"Error querying Subnets: {e}")
        subnets = answer.get("Subnets", [])
        if not subnets:
            fail(build, f"No Subnets was found matching filters: {prettify(params)}")
        if len(subnets) > 1 and not options.most_free and not options.random:
            fail(
                build,
                f"Your filter matched {len(subnets)} Subnets. Please try a more specific "
                "search, or set random or most_free to true.",
            )
        if options.most_free:
            subnet = max(subnets, key=lambda s: s.get("AvailableIpAddressCount", 0))
        elif options.random:
            subnet = random.choice(subnets)
        else:
            subnet = subnets[0]
        state.subnet_id = subnet["SubnetId"]
        build.ui.message(f"Found Subnet ID: {state.subnet_id}")

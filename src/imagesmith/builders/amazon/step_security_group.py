"""StepSecurityGroup: the groups the instance runs in (given, filtered, or temporary)."""

from __future__ import annotations

import asyncio
from typing import Any

from imagesmith.builders.amazon import tracking
from imagesmith.builders.amazon.aws import AwsError, finish_despite_cancel
from imagesmith.builders.amazon.common import fail, filters, go_list
from imagesmith.builders.amazon.state import EBSState
from imagesmith.builders.amazon.waiters import NOT_FOUND_GROUP
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step
from imagesmith.template.functions import time_ordered_uuid

DELETE_TRIES = 5
DELETE_DELAY = 5.0


def connect_port(state: EBSState) -> int:
    """The port the temporary group opens: the communicator's (0 for ``none``)."""
    comm = state.config.comm
    if comm.type == "ssh":
        return comm.port
    if comm.type == "winrm":
        return comm.winrm_port or (5986 if comm.winrm_use_ssl else 5985)
    return 0


class StepSecurityGroup(Step[EBSState]):
    """Sets ``security_group_ids``."""

    name = "StepSecurityGroup"

    def __init__(self) -> None:
        self.created = ""

    async def run(self, state: EBSState, build: BuildRun) -> None:
        run = state.config.run
        if run.security_group_ids:
            try:
                await state.aws.call("describe_security_groups", GroupIds=run.security_group_ids)
            except AwsError as e:
                fail(build, f"Couldn't find specified security group: {e}")
            state.security_group_ids = list(run.security_group_ids)
            return
        if not run.security_group_filter.empty():
            wanted = run.security_group_filter.all_filters()
            if state.vpc_id:
                wanted["vpc-id"] = state.vpc_id
            try:
                answer = await state.aws.call("describe_security_groups", Filters=filters(wanted))
            except AwsError as e:
                fail(build, f"Couldn't find security groups for filter: {e}")
            groups = [g["GroupId"] for g in answer.get("SecurityGroups", [])]
            if not groups:
                fail(build, "Couldn't find security groups for filter: no group matched")
            build.ui.message(f"Found Security Group(s): {', '.join(groups)}")
            state.security_group_ids = groups
            return
        await self._create_temporary(state, build)

    async def _create_temporary(self, state: EBSState, build: BuildRun) -> None:
        ui = build.ui
        name = f"packer_{time_ordered_uuid()}"
        ui.say(f"Creating temporary security group for this instance: {name}")
        params: dict[str, Any] = {
            "GroupName": name,
            "Description": "Temporary group for Packer",
            "TagSpecifications": [state.tracker.tag_spec("security-group")],
        }
        if state.vpc_id:
            params["VpcId"] = state.vpc_id

        async def create() -> str:
            answer = await state.aws.call("create_security_group", **params)
            group_id = str(answer["GroupId"])
            self.created = group_id
            state.tracker.created(tracking.SECURITY_GROUP, group_id, state.region, name=name)
            return group_id

        try:
            group_id = await finish_despite_cancel(create())
        except AwsError as e:
            fail(build, f"Error creating temporary security group: {e}")
        state.security_group_ids = [group_id]

        run = state.config.run
        if run.ssh_interface == "session_manager" and (
            run.iam_instance_profile or run.temporary_iam_instance_profile_policy_document
        ):
            return
        port = connect_port(state)
        cidrs = run.source_cidrs
        ui.say(
            f"Authorizing access to port {port} from {go_list(cidrs)} in the temporary "
            "security groups..."
        )
        try:
            # Packer first polls DescribeSecurityGroups until the group is visible; the
            # authorisation itself retries on "not found", which saves that call.
            await state.aws.call(
                "authorize_security_group_ingress",
                retry_codes=NOT_FOUND_GROUP,
                GroupId=group_id,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "IpRanges": [{"CidrIp": cidr} for cidr in cidrs],
                    }
                ],
            )
        except AwsError as e:
            fail(build, f"Error authorizing temporary security group: {e}")

    async def cleanup(self, state: EBSState, build: BuildRun) -> None:
        if not self.created:
            return
        build.ui.say("Deleting temporary security group...")
        last: AwsError | None = None
        for attempt in range(DELETE_TRIES):
            if attempt:
                # The instance's network interface may take a moment to go away.
                await asyncio.sleep(DELETE_DELAY)
            try:
                await state.aws.call("delete_security_group", GroupId=self.created)
            except AwsError as e:
                if e.code not in NOT_FOUND_GROUP:
                    last = e
                    continue
            state.tracker.gone(tracking.SECURITY_GROUP, self.created, state.region)
            return
        build.ui.error(
            "Error cleaning up security group. Please delete the group manually: "
            f"err: {last}; security group ID: {self.created}"
        )

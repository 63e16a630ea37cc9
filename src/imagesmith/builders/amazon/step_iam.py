"""StepIamInstanceProfile: the instance profile (given, or temporary with its role)."""

from __future__ import annotations

import contextlib
import json

from imagesmith.builders.amazon import tracking
from imagesmith.builders.amazon.aws import AwsError, finish_despite_cancel
from imagesmith.builders.amazon.common import fail
from imagesmith.builders.amazon.state import EBSState
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step
from imagesmith.template.functions import time_ordered_uuid

ASSUME_ROLE_POLICY = (
    '{"Version": "2012-10-17","Statement": [{"Effect": "Allow","Principal": '
    '{"Service": "ec2.amazonaws.com"},"Action": "sts:AssumeRole"}]}'
)
# IAM is eventually consistent: a new role or profile may be unknown for a moment.
NOT_YET = frozenset({"NoSuchEntity"})


class StepIamInstanceProfile(Step[EBSState]):
    """Sets ``instance_profile``. A temporary profile, role and inline policy are named
    ``packer-<uuid>`` and removed at cleanup in reverse order."""

    name = "StepIamInstanceProfile"

    def __init__(self) -> None:
        self.profile = ""
        self.role = ""
        self.policy = ""
        self.attached = False

    async def run(self, state: EBSState, build: BuildRun) -> None:
        run = state.config.run
        if run.iam_instance_profile:
            if not run.skip_profile_validation:
                try:
                    await state.aws.call(
                        "get_instance_profile",
                        service="iam",
                        InstanceProfileName=run.iam_instance_profile,
                    )
                except AwsError as e:
                    fail(build, f"Couldn't find specified instance profile: {e}")
            state.instance_profile = run.iam_instance_profile
            return
        document = run.temporary_iam_instance_profile_policy_document
        if document is None:
            return

        ui = build.ui
        name = f"packer-{time_ordered_uuid()}"
        tags = [state.tracker.tag()]
        ui.say(f"Creating temporary instance profile for this instance: {name}")

        async def create_profile() -> None:
            await state.aws.call(
                "create_instance_profile", service="iam", InstanceProfileName=name, Tags=tags
            )
            self.profile = name
            state.tracker.created(tracking.INSTANCE_PROFILE, name, state.region)

        try:
            await finish_despite_cancel(create_profile())
        except AwsError as e:
            fail(build, f"Error creating instance profile: {e}")

        ui.say(f"Creating temporary role for this instance: {name}")

        async def create_role() -> None:
            await state.aws.call(
                "create_role",
                service="iam",
                RoleName=name,
                Description="Temporary role for Packer",
                AssumeRolePolicyDocument=ASSUME_ROLE_POLICY,
                Tags=tags,
            )
            self.role = name
            state.tracker.created(tracking.ROLE, name, state.region, profile=name, policy=name)

        try:
            await finish_despite_cancel(create_role())
        except AwsError as e:
            fail(build, f"Error creating role: {e}")

        ui.say(f"Attaching policy to the temporary role: {name}")
        policy = json.dumps(document.to_json_data(), separators=(",", ":"))
        try:
            await state.aws.call(
                "put_role_policy",
                service="iam",
                retry_codes=NOT_YET,
                RoleName=name,
                PolicyName=name,
                PolicyDocument=policy,
            )
            self.policy = name
            await state.aws.call(
                "add_role_to_instance_profile",
                service="iam",
                retry_codes=NOT_YET,
                RoleName=name,
                InstanceProfileName=name,
            )
            self.attached = True
        except AwsError as e:
            fail(build, f"Error attaching policy to role: {e}")
        state.instance_profile = name

    async def cleanup(self, state: EBSState, build: BuildRun) -> None:
        ui = build.ui
        aws = state.aws
        if self.attached:
            ui.say("Detaching temporary role from instance profile...")
            try:
                await aws.call(
                    "remove_role_from_instance_profile",
                    service="iam",
                    InstanceProfileName=self.profile,
                    RoleName=self.role,
                )
            except AwsError as e:
                ui.error(f"Error {e}. Please delete the role manually: {self.role}")
        if self.policy:
            ui.say("Removing policy from temporary role...")
            # As in Packer, a failure here is not reported: deleting the role says why.
            with contextlib.suppress(AwsError):
                await aws.call(
                    "delete_role_policy", service="iam", RoleName=self.role, PolicyName=self.policy
                )
        if self.role:
            ui.say("Deleting temporary role...")
            try:
                await aws.call("delete_role", service="iam", RoleName=self.role)
            except AwsError as e:
                ui.error(f"Error {e}. Please delete the role manually: {self.role}")
            else:
                state.tracker.gone(tracking.ROLE, self.role, state.region)
        if self.profile:
            ui.say("Deleting temporary instance profile...")
            try:
                await aws.call(
                    "delete_instance_profile", service="iam", InstanceProfileName=self.profile
                )
            except AwsError as e:
                ui.error(f"Error {e}. Please delete the instance profile manually: {self.profile}")
            else:
                state.tracker.gone(tracking.INSTANCE_PROFILE, self.profile, state.region)

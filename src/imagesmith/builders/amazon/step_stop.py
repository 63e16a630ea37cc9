"""After provisioning: clear temporary keys, stop the instance, set its attributes."""

from __future__ import annotations

import asyncio

from imagesmith.builders.amazon import waiters
from imagesmith.builders.amazon.aws import AwsError
from imagesmith.builders.amazon.common import fail
from imagesmith.builders.amazon.retry import backoff
from imagesmith.builders.amazon.state import EBSState
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step

STOP_TRIES = 6


class StepCleanupTempKeys(Step[EBSState]):
    """``ssh_clear_authorized_keys``: remove the temporary key from authorized_keys
    (the user's and root's) before the AMI is made."""

    name = "StepCleanupTempKeys"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        comm = state.config.comm
        if not comm.ssh_clear_authorized_keys or comm.type != "ssh":
            return
        name = comm.temporary_key_pair_name
        if not name or state.comm is None:
            return
        build.ui.say("Trying to remove ephemeral keys from authorized_keys files")
        for command in (
            f"sed -i.bak '/ {name}$/d' ~/.ssh/authorized_keys; rm ~/.ssh/authorized_keys.bak",
            f"sudo sed -i.bak '/ {name}$/d' /root/.ssh/authorized_keys; "
            "sudo rm /root/.ssh/authorized_keys.bak",
        ):
            try:
                await state.comm.run(command)
            except Exception:
                # As in Packer: a machine without sudo or without the file is fine.
                continue


class StepStopEBSBackedInstance(Step[EBSState]):
    """Stops the instance and waits for ``stopped`` (skipped for spot instances, which
    cannot be stopped; their AMI is made from the running instance)."""

    name = "StepStopEBSBackedInstance"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        c = state.config
        if c.run.is_spot:
            return
        ui = build.ui
        instance_id = state.instance_id
        if not c.run.disable_stop_instance:
            ui.say("Stopping the source instance...")
            for attempt in range(STOP_TRIES):
                ui.message("Stopping instance")
                try:
                    await state.aws.call("stop_instances", InstanceIds=[instance_id])
                    break
                except AwsError as e:
                    if e.code != "InvalidInstanceID.NotFound" or attempt + 1 == STOP_TRIES:
                        fail(build, f"Error stopping instance: {e}")
                await asyncio.sleep(backoff(attempt, 10.0, 60.0))
        else:
            ui.say("Automatic instance stop disabled. Please stop instance manually.")

        ui.say("Waiting for the instance to stop...")
        how = waiters.policy(c.access.aws_polling)
        try:
            answer = await waiters.instance_state(state.aws, instance_id, "stopped", how)
        except (waiters.WaiterError, AwsError) as e:
            fail(build, f"Error waiting for instance to stop: {e}")
        state.instance = answer["Reservations"][0]["Instances"][0]


class StepModifyEBSBackedInstance(Step[EBSState]):
    """``sriov_support`` / ``ena_support`` on the stopped instance, so the AMI has them."""

    name = "StepModifyEBSBackedInstance"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        ami = state.config.ami
        ui = build.ui
        instance_id = state.instance_id
        if ami.sriov_support:
            ui.say("Enabling Enhanced Networking (SR-IOV)...")
            try:
                await state.aws.call(
                    "modify_instance_attribute",
                    InstanceId=instance_id,
                    SriovNetSupport={"Value": "simple"},
                )
            except AwsError as e:
                fail(build, f"Error enabling Enhanced Networking (SR-IOV) on {instance_id}: {e}")
        if ami.ena_support is not None:
            verb = "Enabling" if ami.ena_support else "Disabling"
            ui.say(f"{verb} Enhanced Networking (ENA)...")
            try:
                await state.aws.call(
                    "modify_instance_attribute",
                    InstanceId=instance_id,
                    EnaSupport={"Value": ami.ena_support},
                )
            except AwsError as e:
                fail(
                    build,
                    f"Error {verb.lower()} Enhanced Networking (ENA) on {instance_id}: {e}",
                )

"""Reaching the instance: WinRM password, SSM tunnel, SSH, and the build data."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
from typing import Any

from imagesmith.builders.amazon.aws import AwsError
from imagesmith.builders.amazon.common import fail
from imagesmith.builders.amazon.state import EBSState
from imagesmith.builders.amazon.step_instance import instance_host
from imagesmith.builders.amazon.template_data import generated_data
from imagesmith.communicators.connect import StepConnect
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step
from imagesmith.golang import format_duration

SSM_PLUGIN = "session-manager-plugin"


class StepGetPassword(Step[EBSState]):
    """WinRM's auto-generated Administrator password. The WinRM communicator is not
    available (configuration checks say so), so this step only keeps its place in the
    step list: ``-on-error=abort`` names it as Packer does."""

    name = "StepGetPassword"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        return


class StepCreateSSMTunnel(Step[EBSState]):
    """``ssh_interface: session_manager``: an SSM port-forwarding session to the
    instance's SSH port, through AWS's ``session-manager-plugin`` program; sets
    ``connect_override`` to the local end.

    Not covered by the tests here: the emulator has no Session Manager.
    """

    name = "StepCreateSSMTunnel"

    def __init__(self) -> None:
        self.session_id = ""
        self.process: asyncio.subprocess.Process | None = None

    async def run(self, state: EBSState, build: BuildRun) -> None:
        run = state.config.run
        if run.ssh_interface != "session_manager":
            return
        plugin = shutil.which(SSM_PLUGIN)
        if plugin is None:
            fail(
                build,
                f"ssh_interface session_manager needs AWS's {SSM_PLUGIN} program on the PATH; "
                "install it (see the AWS Systems Manager documentation) and run again.",
            )
        if run.pause_before_ssm:
            build.ui.say(
                f"Waiting {format_duration(float(run.pause_before_ssm))} before establishing "
                "the SSM session..."
            )
            await asyncio.sleep(float(run.pause_before_ssm))
        local_port = run.session_manager_port or _free_port()
        parameters = {
            "portNumber": [str(state.config.comm.port)],
            "localPortNumber": [str(local_port)],
        }
        request: dict[str, Any] = {
            "Target": state.instance_id,
            "DocumentName": "AWS-StartPortForwardingSession",
            "Parameters": parameters,
        }
        try:
            session = await state.aws.call(
                "start_session",
                service="ssm",
                retry_codes=("TargetNotConnected",),
                **request,
            )
        except AwsError as e:
            fail(build, f"Error establishing SSM session: {e}")
        self.session_id = str(session["SessionId"])
        endpoint = state.aws.client("ssm").meta.endpoint_url
        response = {k: session[k] for k in ("SessionId", "TokenValue", "StreamUrl")}
        self.process = await asyncio.create_subprocess_exec(
            plugin,
            json.dumps(response),
            state.region,
            "StartSession",
            state.config.access.profile,
            json.dumps(request),
            endpoint,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        state.connect_override = ("localhost", local_port)

    async def cleanup(self, state: EBSState, build: BuildRun) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            with contextlib.suppress(ProcessLookupError):
                await self.process.wait()
        if self.session_id:
            try:
                await state.aws.call("terminate_session", service="ssm", SessionId=self.session_id)
            except AwsError as e:
                build.ui.error(f"Error terminating SSM Session {self.session_id}: {e}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AmazonStepConnect(StepConnect[EBSState]):
    """The shared StepConnect, told where the instance is: its address is looked up
    (and refreshed while EC2 has none yet) before the first attempt."""

    def __init__(self, state: EBSState) -> None:
        super().__init__(
            state.config.comm,
            host=lambda s: s.connect_host,
            port=_port,
            private_key=lambda s: s.private_key.encode() if s.private_key else None,
        )

    async def run(self, state: EBSState, build: BuildRun) -> None:
        if state.config.comm.type == "ssh":
            try:
                state.connect_host = await instance_host(state)
            except AwsError as e:
                fail(build, f"Error waiting for SSH: {e}")
        await super().run(state, build)
        state.comm = self.communicator


def _port(state: EBSState) -> int:
    if state.connect_override is not None:
        return state.connect_override[1]
    return state.config.comm.port


class StepSetGeneratedData(Step[EBSState]):
    """Adds SourceAMI, SourceAMIName, BuildRegion... to the build data."""

    name = "StepSetGeneratedData"

    async def run(self, state: EBSState, build: BuildRun) -> None:
        data: dict[str, Any] = generated_data(state.region, state.source_image)
        build.generated_data.update(data)

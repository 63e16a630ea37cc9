"""StepKeyPair: the key the builder logs in with (temporary, given, or from an agent)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from imagesmith.builders.amazon import tracking
from imagesmith.builders.amazon.aws import AwsError, finish_despite_cancel
from imagesmith.builders.amazon.common import fail
from imagesmith.builders.amazon.state import EBSState
from imagesmith.engine.build import BuildRun
from imagesmith.engine.step import Step

# CreateKeyPair is retried on any error but these, which another try cannot fix.
PERMANENT_ERRORS = frozenset(
    {
        "AuthFailure",
        "UnauthorizedOperation",
        "InvalidKeyPair.Duplicate",
        "InvalidKeyPair.Format",
        "InvalidParameterValue",
        "MissingParameter",
        "OptInRequired",
        "Blocked",
    }
)


class StepKeyPair(Step[EBSState]):
    """Sets ``key_pair_name`` and ``private_key``.

    The temporary key pair is created by EC2 (as Packer does; ``temporary_key_pair_type``
    picks rsa or ed25519). Its private key only ever lives in memory, and in
    ``ec2_<build>.pem`` under ``-debug`` (removed at cleanup).
    """

    name = "StepKeyPair"

    def __init__(self) -> None:
        self.created = ""
        self.debug_key_path = ""

    async def run(self, state: EBSState, build: BuildRun) -> None:
        comm = state.config.comm
        ui = build.ui
        if comm.ssh_private_key_file:
            ui.say("Using existing SSH private key")
            path = os.path.expanduser(comm.ssh_private_key_file)
            if not os.access(path, os.R_OK):
                fail(build, f"Error loading configured private key file: cannot read {path}")
            state.key_pair_name = comm.ssh_keypair_name
            return
        if comm.ssh_agent_auth and not comm.ssh_keypair_name:
            ui.say("Using SSH Agent with key pair in Source AMI")
            return
        if comm.ssh_agent_auth:
            ui.say(f"Using SSH Agent for existing key pair {comm.ssh_keypair_name}")
            state.key_pair_name = comm.ssh_keypair_name
            return
        if not comm.temporary_key_pair_name:
            ui.say("Not using temporary keypair")
            state.key_pair_name = ""
            return

        name = comm.temporary_key_pair_name
        ui.say(f"Creating temporary keypair: {name}")
        params: dict[str, Any] = {
            "KeyName": name,
            "TagSpecifications": [state.tracker.tag_spec("key-pair")],
        }
        if comm.temporary_key_pair_type:
            params["KeyType"] = comm.temporary_key_pair_type

        async def create() -> str:
            answer = await state.aws.call(
                "create_key_pair",
                retry_if=lambda e: e.code not in PERMANENT_ERRORS,
                **params,
            )
            # From here on the key pair exists: record it before anything else.
            self.created = name
            state.tracker.created(tracking.KEY_PAIR, name, state.region)
            return str(answer["KeyMaterial"])

        try:
            material = await finish_despite_cancel(create())
        except AwsError as e:
            fail(build, f"Error creating temporary keypair: {e}")
        state.key_pair_name = name
        state.private_key = material

        if state.debug:
            self.debug_key_path = f"ec2_{state.build_name}.pem"
            ui.message(f"Saving key for debug purposes: {self.debug_key_path}")
            fd = os.open(self.debug_key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(material)

    async def cleanup(self, state: EBSState, build: BuildRun) -> None:
        if not self.created:
            return
        ui = build.ui
        ui.say("Deleting temporary keypair...")
        try:
            await state.aws.call("delete_key_pair", KeyName=self.created)
        except AwsError:
            ui.error(f"Error cleaning up keypair. Please delete the key manually: {self.created}")
        else:
            state.tracker.gone(tracking.KEY_PAIR, self.created, state.region)
        state.private_key = ""
        if self.debug_key_path:
            with contextlib.suppress(FileNotFoundError):
                try:
                    os.remove(self.debug_key_path)
                except OSError as e:
                    ui.error(f"Error removing debug key '{self.debug_key_path}': {e}")

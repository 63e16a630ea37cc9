"""``amazon-ebs``: build an EBS-backed AMI from a source AMI (Packer's amazon-ebs).

The build is Packer 1.6.6's list of steps, with its output and API calls, and with
what Packer lacks: every resource journalled and tagged with the run id the moment it
exists, and cleanups that also remove the AMIs of a build that did not finish.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from imagesmith.builders.amazon.artifact import BUILDER_ID, AMIArtifact
from imagesmith.builders.amazon.config import LATE_FIELDS, EBSConfig
from imagesmith.builders.amazon.template_data import GENERATED_KEYS
from imagesmith.config.decode import RenderFailure
from imagesmith.errors import BuildError, ConfigError
from imagesmith.plugins import Builder
from imagesmith.template.functions import clean_ami_name

if TYPE_CHECKING:
    from imagesmith.builders.amazon.state import EBSState
    from imagesmith.engine.artifact import Artifact
    from imagesmith.engine.build import BuildRun
    from imagesmith.engine.step import Step


class AmazonEBSBuilder(Builder):
    type_name = "amazon-ebs"
    builder_id = BUILDER_ID
    Config: ClassVar[type[EBSConfig]] = EBSConfig
    config: EBSConfig
    template_functions: ClassVar[dict[str, Any]] = {"clean_resource_name": clean_ami_name}
    #: API calls of the last run, by operation (for benchmarks and tests).
    api_calls: dict[str, int]

    def prepare(self) -> list[str]:
        c = self.config
        if self.info.force:
            c.ami.force_deregister = True
        self._parse_late_fields()
        errs, warnings = c.validate()
        if errs:
            raise ConfigError(errs)
        return warnings

    def generated_data_keys(self) -> tuple[str, ...]:
        return GENERATED_KEYS

    def _parse_late_fields(self) -> None:
        """Packer parses the templates of the fields it renders later, and reports a
        syntax error (``invalid '<key>': ...``) at once, alone."""
        c = self.config
        values: dict[str, Any] = {
            "ami_description": c.ami.ami_description,
            "run_tags": c.run.run_tags,
            "run_tag": [[t.key, t.value] for t in c.run.run_tag],
            "run_volume_tags": c.run_volume_tags,
            "run_volume_tag": [[t.name, t.value] for t in c.run_volume_tag],
            "spot_tags": c.run.spot_tags or {},
            "spot_tag": [[t.key, t.value] for t in c.run.spot_tag],
            "snapshot_tags": c.ami.snapshot_tags,
            "snapshot_tag": [[t.key, t.value] for t in c.ami.snapshot_tag],
            "tags": c.ami.tags,
            "tag": [[t.key, t.value] for t in c.ami.tag],
        }
        for key in LATE_FIELDS:
            for text in _strings(values[key]):
                if "{{" not in text:
                    continue
                try:
                    self.info.renderer.render(text)
                except Exception as e:
                    message = str(e)
                    if message.startswith("template: ") and "executing" not in message:
                        raise RenderFailure(f"invalid '{key}': {message} in:\n\n{text}") from None

    async def run(self, build: BuildRun) -> Artifact | None:
        from imagesmith import journal
        from imagesmith.builders.amazon.aws import AwsError, AwsSession
        from imagesmith.builders.amazon.state import EBSState
        from imagesmith.builders.amazon.tracking import Tracker
        from imagesmith.rehearse import seam

        c = self.config
        rehearsal = seam.active()
        aws = AwsSession(c.access, rehearsal=rehearsal)
        run_journal = journal.for_run(self.info.run_uuid)
        tracker = Tracker(
            run_journal,
            build=self.info.name,
            endpoint=_endpoint(c.access.custom_endpoint_ec2),
            profile=c.access.profile,
            journalled=rehearsal is None,
        )
        state = EBSState(
            config=c,
            aws=aws,
            tracker=tracker,
            renderer=self.info.renderer,
            build_name=self.info.name,
            region=aws.region,
            debug=self.info.debug,
            rehearsal=rehearsal,
        )
        if rehearsal is None and not c.access.vault_aws_engine.empty():
            from imagesmith.builders.amazon.vault import read_credentials

            access_key, secret_key, token = await asyncio.to_thread(
                read_credentials, c.access.vault_aws_engine
            )
            aws.use_credentials(access_key, secret_key, token)

        try:
            await aws.warm()
        except AwsError as e:
            # Credentials or configuration botocore cannot use (a profile that is not
            # there...): nothing was created, nothing to clean up.
            raise BuildError(f"Error creating the AWS session: {e}") from None
        if c.comm.type == "ssh":
            # Only now: before, it would take the CPU from the client's creation.
            _preload_ssh()
        run_journal.open()
        try:
            await build.run_steps(self._steps(state, build), state)
            if build.cancelled:
                # Interrupted while the last cleanups ran: there will be no artifact.
                await asyncio.shield(_discard(state, build))
                return None
            if not state.amis or c.skip_create_ami:
                return None
            await _deliver(state, build)
        finally:
            await state.drop_prefetched()
            run_journal.release()
            self.api_calls = dict(aws.counter.counts)
            # botocore's models and the SSH stack live until the process ends: once the
            # build is over, take them out of the collector's sight. Its final pass at
            # interpreter exit otherwise walks them all (~0.2 s).
            gc.freeze()
        return AMIArtifact(state.amis, aws, dict(build.generated_data))

    def _steps(self, state: EBSState, build: BuildRun) -> list[Step[EBSState]]:
        from imagesmith.builders.amazon import (
            step_ami,
            step_attributes,
            step_connect,
            step_copy,
            step_iam,
            step_instance,
            step_keypair,
            step_prevalidate,
            step_security_group,
            step_source,
            step_spot,
            step_stop,
        )

        c = self.config
        launch: Step[EBSState] = (
            step_spot.StepRunSpotInstance()
            if c.run.is_spot
            else step_instance.StepRunSourceInstance()
        )
        steps: list[Step[EBSState]] = [
            step_prevalidate.StepPreValidate(),
            step_source.StepSourceAMIInfo(),
            step_source.StepNetworkInfo(),
            step_keypair.StepKeyPair(),
            step_security_group.StepSecurityGroup(),
            step_iam.StepIamInstanceProfile(),
            step_instance.StepCleanupVolumes(),
            launch,
            step_connect.StepGetPassword(),
            step_connect.StepCreateSSMTunnel(),
            step_connect.AmazonStepConnect(state),
            step_connect.StepSetGeneratedData(),
            build.provision_step(lambda s: s.comm),
            step_stop.StepCleanupTempKeys(),
            step_stop.StepStopEBSBackedInstance(),
            step_stop.StepModifyEBSBackedInstance(),
            step_ami.StepDeregisterAMI(),
            step_ami.StepCreateAMI(),
            step_copy.StepAMIRegionCopy(),
        ]
        if c.ami.deprecate_at:
            steps.append(step_attributes.StepEnableDeprecation())
        steps += [
            step_attributes.StepModifyAMIAttributes(),
            step_attributes.StepCreateTags(),
        ]
        return steps


async def _deliver(state: EBSState, build: BuildRun) -> None:
    """The AMIs are the build's now: take the run-id tag off them and their snapshots,
    and cross them off the journal, so that ``imagesmith cleanup`` never takes them for
    leftovers."""
    from imagesmith.builders.amazon import tracking
    from imagesmith.builders.amazon.aws import AwsError

    for region, image_id in state.amis.items():
        resources = [image_id, *state.snapshots.get(region, [])]
        try:
            await state.aws.call(
                "delete_tags",
                region=region,
                retry_codes=("InvalidAMIID.NotFound",),
                Resources=resources,
                Tags=[{"Key": tracking.RUN_ID_TAG}],
            )
        except AwsError as e:
            build.ui.error(
                f"Could not remove the {tracking.RUN_ID_TAG} tag from AMI {image_id} in "
                f"{region} and its snapshots: {e}. Remove it by hand from "
                f"{', '.join(resources)}: imagesmith cleanup -force would take them for "
                "leftovers."
            )
        # Delivered either way: the journal must never lead cleanup to it.
        state.tracker.gone(tracking.IMAGE, image_id, region)


async def _discard(state: EBSState, build: BuildRun) -> None:
    """Remove the AMIs of a build interrupted after its last step."""
    from imagesmith.builders.amazon import tracking
    from imagesmith.builders.amazon.aws import AwsError
    from imagesmith.builders.amazon.images import destroy_image

    if not state.amis:
        return
    build.ui.say(
        "Deregistering the AMI and deleting associated snapshots because of cancellation, "
        "or error..."
    )
    for region, image_id in state.amis.items():
        try:
            await destroy_image(state.aws, region, image_id, report=build.ui.say)
        except AwsError as e:
            build.ui.error(f"Error deregistering AMI {image_id}, may still be around: {e}")
            continue
        state.tracker.gone(tracking.IMAGE, image_id, region)


def _preload_ssh() -> None:
    """Import the SSH client (asyncssh, ~0.1 s of CPU) in a thread while the first API
    calls wait on the network, rather than when the instance is up."""

    from imagesmith.communicators import sshlib

    threading.Thread(target=sshlib.load, name="preload-ssh", daemon=True).start()


def _endpoint(custom: str) -> str:
    """The EC2 endpoint to note in the journal, so that cleanup talks to the same API."""
    return (
        custom
        or os.environ.get("AWS_ENDPOINT_URL_EC2", "")
        or os.environ.get("AWS_ENDPOINT_URL", "")
    )


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []

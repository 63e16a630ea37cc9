"""What the steps of one amazon-ebs build share.

Each step's docstring says which of these fields it reads and which it sets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagesmith.builders.amazon.aws import AwsSession
    from imagesmith.builders.amazon.config import EBSConfig
    from imagesmith.builders.amazon.tracking import Tracker
    from imagesmith.communicators.base import Communicator
    from imagesmith.engine.context import Renderer
    from imagesmith.rehearse.seam import RehearsalTarget

#: A decoded AWS answer or resource description (boto3 gives plain dicts).
Json = dict[str, Any]


@dataclass
class EBSState:
    config: EBSConfig
    aws: AwsSession
    tracker: Tracker
    renderer: Renderer
    build_name: str
    region: str
    debug: bool = False
    rehearsal: RehearsalTarget | None = None

    # StepSourceAMIInfo
    source_image: Json | None = None
    # StepNetworkInfo
    vpc_id: str = ""
    subnet_id: str = ""
    availability_zone: str = ""
    # StepKeyPair: the key pair name given to RunInstances, and the temporary key's
    # private half (a key file of the user's is read by the communicator itself).
    key_pair_name: str = ""
    private_key: str = ""
    # StepSecurityGroup
    security_group_ids: list[str] = field(default_factory=list)
    # StepIamInstanceProfile
    instance_profile: str = ""
    # StepRunSourceInstance / StepRunSpotInstance
    instance: Json | None = None
    # Where SSH listens when something other than the instance's address says so
    # (a rehearsal's stand-in machine).
    connect_override: tuple[str, int] | None = None
    connect_host: str = ""
    # StepConnect
    comm: Communicator | None = None
    # stepCreateAMI and after: region -> AMI id, region -> snapshot ids.
    amis: dict[str, str] = field(default_factory=dict)
    snapshots: dict[str, list[str]] = field(default_factory=dict)
    intermediary_image: bool = False

    # Read-only calls started ahead of the step that needs their answer.
    prefetched: dict[str, asyncio.Future[Json]] = field(default_factory=dict)

    def new_snapshots(self, region: str) -> list[str]:
        """The snapshots of ``region``'s AMI that the build made: all but those that
        ``ami_block_device_mappings`` name by id, which are the user's own (a copy's
        snapshots are all new, with ids of their own)."""
        given = self._given_snapshots()
        return [s for s in self.snapshots.get(region, []) if s not in given]

    def run_id_with_tags(self, snapshots: list[str]) -> bool:
        """Whether the run-id tag goes on an AMI's new ``snapshots`` with the template's
        ``tags`` (StepCreateTags puts them on the AMI and all its snapshots in one call),
        saving a call of its own: when there are such tags, and no snapshot of the
        user's among the AMI's."""
        return bool(self.config.ami.tags) and not self._given_snapshots() & set(snapshots)

    def _given_snapshots(self) -> set[str]:
        return {d.snapshot_id for d in self.config.ami_block_device_mappings if d.snapshot_id}

    def prefetch(self, key: str, call: Awaitable[Json]) -> None:
        self.prefetched[key] = asyncio.ensure_future(call)

    def take(self, key: str) -> asyncio.Future[Json] | None:
        return self.prefetched.pop(key, None)

    async def drop_prefetched(self) -> None:
        """Cancel what no step took (the build stopped before), errors included."""
        for future in self.prefetched.values():
            future.cancel()
            with contextlib.suppress(BaseException):
                await future
        self.prefetched.clear()

    @property
    def instance_id(self) -> str:
        return str(self.instance["InstanceId"]) if self.instance else ""

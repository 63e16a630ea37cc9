"""Every resource a build creates is journalled and tagged with the run id.

The journal (``imagesmith.journal``) lets ``imagesmith cleanup`` find what a killed
run left on this machine; the ``imagesmith:run-id`` tag lets it find the same
resources from any machine when the journal is gone. The tag is put on at creation
(``TagSpecifications``) wherever the API allows it, so a resource never exists
untagged, and it is taken off the AMIs a build delivers: only leftovers carry it.

The snapshots CreateImage and CopyImage make are the exception: their ids are known
once the AMI is available, and they are tagged then (``images.tag_new_snapshots``, or
in StepCreateTags' call with the template's ``tags``). Until then they are found
through their AMI, which is tagged and journalled from its creation.
"""

from __future__ import annotations

import time
from typing import Any

from imagesmith.journal import Entry, Journal

RUN_ID_TAG = "imagesmith:run-id"

# Journal kinds, in the order cleanup removes them.
IMAGE = "image"
SNAPSHOT = "snapshot"
INSTANCE = "instance"
LAUNCH_TEMPLATE = "launch-template"
VOLUME = "volume"
INSTANCE_PROFILE = "iam-instance-profile"
ROLE = "iam-role"
SECURITY_GROUP = "security-group"
KEY_PAIR = "key-pair"
KINDS = (
    IMAGE,
    SNAPSHOT,
    INSTANCE,
    LAUNCH_TEMPLATE,
    VOLUME,
    INSTANCE_PROFILE,
    ROLE,
    SECURITY_GROUP,
    KEY_PAIR,
)


class Tracker:
    """The journal and run-id tag of one build."""

    def __init__(
        self,
        journal: Journal,
        *,
        build: str,
        endpoint: str = "",
        profile: str = "",
        journalled: bool = True,
    ) -> None:
        self.journal = journal
        self.run_id = journal.run_id
        self.build = build
        self.endpoint = endpoint
        self.profile = profile
        # A rehearsal's emulator goes away with the run: nothing to journal.
        self.journalled = journalled

    def tag(self) -> dict[str, str]:
        return {"Key": RUN_ID_TAG, "Value": self.run_id}

    def tag_spec(self, resource_type: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
        """A ``TagSpecifications`` entry: the user's ``tags`` plus the run-id tag."""
        items = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        return {"ResourceType": resource_type, "Tags": [*items, self.tag()]}

    def created(self, kind: str, resource_id: str, region: str, **extra: Any) -> None:
        if not self.journalled:
            return
        self.journal.add(
            Entry(
                run_id=self.run_id,
                kind=kind,
                id=resource_id,
                region=region,
                build=self.build,
                created=time.time(),
                endpoint=self.endpoint,
                profile=self.profile,
                extra=extra,
            )
        )

    def gone(self, kind: str, resource_id: str, region: str) -> None:
        """The resource was removed, or handed over to the user (an AMI delivered)."""
        if self.journalled:
            self.journal.remove(kind, region, resource_id)

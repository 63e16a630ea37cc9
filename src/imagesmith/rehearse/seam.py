"""The seam between the amazon builders and a rehearsal.

A rehearsal runs the real amazon-ebs code path against an EC2 emulator on loopback.
The emulator answers every API call, but its instances do not boot: an
``InstanceBackend`` gives each launched instance a body (a local container with an SSH
server) and turns "create the AMI" into a local image.

The builder asks ``active()`` once per build. ``None`` means a real build, and the
builder does exactly what it does without this module. Otherwise it must:

* send every AWS client (ec2, iam, sts) to ``target.endpoint_url`` with
  ``target.credentials()``, ignoring the template's credentials, profile, assume_role
  and custom endpoints, so that nothing of a rehearsal can reach AWS;
* after RunInstances and the wait for ``running``, call ``instance_launched`` and
  connect to the ``(host, port)`` it returns instead of the instance's address;
* after CreateImage succeeded (the AMI id is known), call ``image_created``;
* when it terminates the instance (cleanup, success or not), call
  ``instance_terminated``.

The rehearsal itself calls ``close`` at the end of the run, which removes whatever a
build left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class InstanceBackend(Protocol):
    async def instance_launched(
        self,
        *,
        instance_id: str,
        ssh_username: str,
        public_key: str,
        block_devices: list[dict[str, Any]],
    ) -> tuple[str, int]:
        """Start the machine standing in for ``instance_id``; return where SSH listens.

        ``public_key`` is the build's temporary key in OpenSSH format (``ssh-rsa AAAA...``)
        and is authorised for ``ssh_username``, who gets passwordless sudo.
        ``block_devices`` are the instance's ``launch_block_device_mappings`` as sent to
        RunInstances (``DeviceName``, ``Ebs``...).
        """
        ...

    async def image_created(self, *, instance_id: str, image_id: str, image_name: str) -> None:
        """Save the machine of ``instance_id`` as the local image of AMI ``image_id``."""
        ...

    async def instance_terminated(self, *, instance_id: str) -> None:
        """Remove the machine of ``instance_id``. Unknown ids are ignored."""
        ...

    async def close(self) -> None:
        """Remove every machine still present."""
        ...


@dataclass(frozen=True)
class RehearsalTarget:
    """Where a rehearsing amazon builder sends its API calls, and who runs its instances."""

    endpoint_url: str
    backend: InstanceBackend
    access_key: str = "rehearsal"
    secret_key: str = "rehearsal"  # the emulator accepts any key

    def credentials(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.session.Session`` or ``boto3.client``."""
        return {"aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key}


_active: RehearsalTarget | None = None


def active() -> RehearsalTarget | None:
    """The rehearsal in progress in this process, or ``None`` for a real build."""
    return _active


def activate(target: RehearsalTarget) -> None:
    global _active
    _active = target


def deactivate() -> None:
    global _active
    _active = None

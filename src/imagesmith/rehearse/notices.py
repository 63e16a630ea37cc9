"""What a rehearsal cannot do as EC2 would, said once at the start of the run.

Each notice names the build and the setting, and says what happens instead; the run
goes on. The facts are read from the amazon builders' decoded configuration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from imagesmith.rehearse.machine import loop_volumes_supported


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for name in path:
        if obj is None:
            return default
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return default if obj is None else obj


def extra_volumes(config: Any) -> list[tuple[str, int]]:
    """(device name, size in GiB) of the launch block devices beyond the root device."""
    found = []
    for device in _get(config, "launch_block_device_mappings", default=[]):
        name = _get(device, "device_name", default="")
        if name and not _get(device, "no_device", default=False):
            found.append((name, int(_get(device, "volume_size", default=0) or 0)))
    return found


def build_notices(name: str, config: Any) -> list[str]:
    """The notices one amazon build's configuration calls for."""
    notes = []
    instance_type = _get(config, "run", "instance_type", default="")
    if instance_type:
        notes.append(
            f"{name}: instance_type {instance_type} is not rehearsed: the instance is a "
            "container sharing this machine's kernel, processors and memory."
        )
    volumes = extra_volumes(config)
    if volumes:
        listed = ", ".join(f"{dev} ({size} GiB)" if size else dev for dev, size in volumes)
        if loop_volumes_supported():
            notes.append(
                f"{name}: the EBS volumes {listed} are sparse files on loop devices inside "
                "the container: scripts can partition, format and mkswap them, but mount and "
                "swapon are refused (in a container they would act on this machine)."
            )
        else:
            notes.append(
                f"{name}: the EBS volumes {listed} are absent from the container (loop-file "
                "stand-ins need root and losetup)."
            )
    if _get(config, "comm", "ssh_password") and not _get(config, "comm", "ssh_private_key_file"):
        notes.append(
            f"{name}: ssh_password logins are not rehearsed: the stand-in only accepts the "
            "build's key, so set ssh_private_key_file or let the build make a key pair."
        )
    if _get(config, "run", "user_data") or _get(config, "run", "user_data_file"):
        notes.append(f"{name}: user_data is not run: the stand-in has no cloud-init.")
    if _get(config, "run", "spot_price") not in (None, "", "0"):
        notes.append(f"{name}: the spot request is emulated; the instance is a container.")
    if _get(config, "run", "iam_instance_profile") or _get(
        config, "run", "temporary_iam_instance_profile_policy_document"
    ):
        notes.append(
            f"{name}: the instance profile exists only in the emulator: no AWS "
            "credentials reach the instance."
        )
    regions = _get(config, "ami", "ami_regions", default=[])
    if regions:
        notes.append(
            f"{name}: the copies to {', '.join(regions)} exist only in the emulator; the "
            "local image is the build region's AMI."
        )
    return notes


def general_notices() -> list[str]:
    return [
        "Security groups, subnets and public addresses are emulated: SSH goes to the "
        "container on a loopback port.",
    ]


def unique(notes: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(notes))

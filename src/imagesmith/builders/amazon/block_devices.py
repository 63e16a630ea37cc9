"""``launch_block_device_mappings`` and ``ami_block_device_mappings`` entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Highest IOPS per GiB for provisioned-IOPS volumes.
IOPS_RATIOS = {"io1": 50, "io2": 500}
MIN_IOPS, MAX_IOPS = 100, 64000
MIN_IOPS_GP3, MAX_IOPS_GP3 = 3000, 16000
MIN_THROUGHPUT, MAX_THROUGHPUT = 125, 1000


@dataclass
class BlockDevice:
    device_name: str = ""
    delete_on_termination: bool = False
    # None keeps the encryption of the source snapshot.
    encrypted: bool | None = None
    iops: int = 0
    throughput: int = 0
    no_device: bool = False
    snapshot_id: str = ""
    virtual_name: str = ""
    volume_type: str = ""
    volume_size: int = 0
    kms_key_id: str = ""

    def validate(self) -> str | None:
        """The first problem of this device, in Packer's order and words."""
        if not self.device_name:
            return (
                "The `device_name` must be specified for every device in the block device mapping."
            )
        if self.kms_key_id and self.encrypted is False:
            return (
                f"The device {self.device_name}, must also have `encrypted: true` when "
                "setting a kms_key_id."
            )
        ratio = IOPS_RATIOS.get(self.volume_type)
        if ratio is not None and self.volume_size != 0:
            if self.iops // self.volume_size > ratio:
                return (
                    f"{self.device_name}: the maximum ratio of provisioned IOPS to requested "
                    f"volume size (in GiB) is {ratio}:1 for {self.volume_type} volumes"
                )
            if not MIN_IOPS <= self.iops <= MAX_IOPS:
                return (
                    f"IOPS must be between {MIN_IOPS} and {MAX_IOPS} for device {self.device_name}"
                )
        if self.volume_type == "gp3":
            # Packer 1.6.6 demands both values for gp3; AWS (and later Packer) default
            # them to 125 MiB/s and 3000 IOPS, so only values given are checked.
            if self.throughput and not MIN_THROUGHPUT <= self.throughput <= MAX_THROUGHPUT:
                return (
                    f"Throughput must be between {MIN_THROUGHPUT} and {MAX_THROUGHPUT} for "
                    f"device {self.device_name}"
                )
            if self.iops and not MIN_IOPS_GP3 <= self.iops <= MAX_IOPS_GP3:
                return (
                    f"IOPS must be between {MIN_IOPS_GP3} and {MAX_IOPS_GP3} for device "
                    f"{self.device_name}"
                )
        elif self.throughput > 0:
            return f"Throughput is not available for device {self.device_name}"
        return None

    def to_api(self) -> dict[str, Any]:
        """The EC2 ``BlockDeviceMapping`` structure for this device."""
        mapping: dict[str, Any] = {"DeviceName": self.device_name}
        if self.no_device:
            mapping["NoDevice"] = ""
            return mapping
        if self.virtual_name:
            # Only instance-store names mean anything; any other name yields a bare
            # mapping, as in Packer.
            if self.virtual_name.startswith("ephemeral"):
                mapping["VirtualName"] = self.virtual_name
            return mapping

        ebs: dict[str, Any] = {"DeleteOnTermination": self.delete_on_termination}
        if self.volume_type:
            ebs["VolumeType"] = self.volume_type
        if self.volume_size > 0:
            ebs["VolumeSize"] = self.volume_size
        if self.volume_type in ("io1", "io2", "gp3") and self.iops > 0:
            ebs["Iops"] = self.iops
        if self.volume_type == "gp3" and self.throughput > 0:
            ebs["Throughput"] = self.throughput
        if self.snapshot_id:
            ebs["SnapshotId"] = self.snapshot_id
        if self.encrypted is not None:
            ebs["Encrypted"] = self.encrypted
        if self.kms_key_id:
            ebs["KmsKeyId"] = self.kms_key_id
        mapping["Ebs"] = ebs
        return mapping


def validate_all(devices: list[BlockDevice]) -> list[str]:
    return [problem for d in devices if (problem := d.validate()) is not None]


def to_api(devices: list[BlockDevice]) -> list[dict[str, Any]]:
    return [d.to_api() for d in devices]

"""The whole ``amazon-ebs`` configuration, and the checks Packer makes in ``Prepare``."""

from __future__ import annotations

from dataclasses import dataclass, field

from imagesmith.builders.amazon import block_devices
from imagesmith.builders.amazon.access import AccessConfig
from imagesmith.builders.amazon.ami_config import AMIConfig, VolumeTagBlock, merge_tag_blocks
from imagesmith.builders.amazon.block_devices import BlockDevice
from imagesmith.builders.amazon.run_config import RunConfig
from imagesmith.communicators.config import CommunicatorConfig
from imagesmith.config.fields import opt

SPOT_MODIFICATION_ERROR = (
    "Spot instances do not support modification, which is required when either "
    "`ena_support` or `sriov_support` are set. Please ensure you use an AMI that already "
    "has either SR-IOV or ENA enabled."
)
SPOT_AUTO_PRODUCT_WARNING = (
    "spot_price_auto_product is deprecated and no longer necessary for Packer builds. In "
    "future versions of Packer, inclusion of spot_price_auto_product will error your "
    "builds. Please take a look at our current documentation to understand how Packer "
    "requests Spot instances."
)

#: Fields rendered by the steps with the ``{{ .SourceAMI }}`` family of data; their
#: templates are only parsed when the configuration is checked.
LATE_FIELDS = (
    "ami_description",
    "run_tags",
    "run_tag",
    "run_volume_tags",
    "run_volume_tag",
    "spot_tags",
    "spot_tag",
    "snapshot_tags",
    "snapshot_tag",
    "tags",
    "tag",
)


@dataclass
class EBSConfig:
    access: AccessConfig = opt(default_factory=AccessConfig, squash=True)
    ami: AMIConfig = opt(default_factory=AMIConfig, squash=True)
    run: RunConfig = opt(default_factory=RunConfig, squash=True)
    comm: CommunicatorConfig = opt(default_factory=CommunicatorConfig, squash=True)

    ami_block_device_mappings: list[BlockDevice] = field(default_factory=list)
    launch_block_device_mappings: list[BlockDevice] = field(default_factory=list)
    run_volume_tags: dict[str, str] = opt(default_factory=dict, late=True)
    run_volume_tag: list[VolumeTagBlock] = opt(default_factory=list, late=True)
    no_ephemeral: bool = False
    # From later Packer releases: run every step but the AMI ones (no artifact).
    skip_create_ami: bool = False

    def validate(self) -> tuple[list[str], list[str]]:
        """(errors, warnings), errors in Packer's order: access, AMI, AMI devices,
        launch devices, run (communicator first), then the builder's own checks."""
        region = self.access.effective_region()
        merge_tag_blocks(self.run_volume_tags, self.run_volume_tag)

        errs = self.access.validate()
        errs += self.ami.validate(region, self.access.skip_region_validation)
        errs += block_devices.validate_all(self.ami_block_device_mappings)
        errs += block_devices.validate_all(self.launch_block_device_mappings)
        errs += self.run.validate(self.comm)
        if self.run.is_spot and (self.ami.ena_support is True or self.ami.sriov_support):
            errs.append(SPOT_MODIFICATION_ERROR)

        warnings = []
        if self.run.spot_price_auto_product:
            warnings.append(SPOT_AUTO_PRODUCT_WARNING)
        return errs, warnings

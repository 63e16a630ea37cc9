"""The options that describe the AMI a build produces (Packer's ``AMIConfig``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from imagesmith.builders.amazon import regions
from imagesmith.config.fields import opt
from imagesmith.template.functions import clean_ami_name


@dataclass
class KeyValue:
    """A ``filter`` block of ``source_ami_filter``."""

    key: str = ""
    value: str = ""


@dataclass
class NameValue:
    """A ``filter`` block of the VPC, subnet and security group filters."""

    name: str = ""
    value: str = ""


@dataclass
class TagBlock:
    """A ``tag`` / ``run_tag`` / ``snapshot_tag`` / ``spot_tag`` block: rendered when
    used, with the source AMI's data, like the tag maps."""

    key: str = opt("", late=True)
    value: str = opt("", late=True)


@dataclass
class VolumeTagBlock:
    """A ``run_volume_tag`` block (Packer names its key ``name`` there)."""

    name: str = opt("", late=True)
    value: str = opt("", late=True)


Block = KeyValue | NameValue | TagBlock | VolumeTagBlock


def merge_tag_blocks(tags: dict[str, str], blocks: Sequence[Block]) -> None:
    """Copy ``tag``-style blocks into the matching map; blocks win, empty keys are dropped."""
    for block in blocks:
        key = block.name if isinstance(block, NameValue | VolumeTagBlock) else block.key
        if key:
            tags[key] = block.value


@dataclass
class AMIConfig:
    ami_name: str = ""
    ami_description: str = opt("", late=True)
    ami_virtualization_type: str = ""
    ami_users: list[str] = field(default_factory=list)
    ami_groups: list[str] = field(default_factory=list)
    ami_product_codes: list[str] = field(default_factory=list)
    ami_regions: list[str] = field(default_factory=list)
    tags: dict[str, str] = opt(default_factory=dict, late=True)
    tag: list[TagBlock] = opt(default_factory=list, late=True)
    # None leaves the instance's ENA attribute alone.
    ena_support: bool | None = None
    sriov_support: bool = False
    force_deregister: bool = False
    force_delete_snapshot: bool = False
    # None keeps the source's encryption; True makes an encrypted copy.
    encrypt_boot: bool | None = None
    kms_key_id: str = ""
    region_kms_key_ids: dict[str, str] = field(default_factory=dict)
    skip_save_build_region: bool = False
    snapshot_tags: dict[str, str] = opt(default_factory=dict, late=True)
    snapshot_tag: list[TagBlock] = opt(default_factory=list, late=True)
    snapshot_users: list[str] = field(default_factory=list)
    snapshot_groups: list[str] = field(default_factory=list)
    # From later Packer releases, relied upon by current templates.
    imds_support: str = ""
    deprecate_at: str = ""

    def validate(self, build_region: str, skip_region_validation: bool) -> list[str]:
        """Packer's AMIConfig checks. Also drops duplicate regions and the build region
        from ``ami_regions``, as Packer does while checking."""
        errs: list[str] = []
        merge_tag_blocks(self.snapshot_tags, self.snapshot_tag)
        merge_tag_blocks(self.tags, self.tag)

        if not self.ami_name:
            errs.append("ami_name must be specified")
        for region in self.region_kms_key_ids:
            if region not in self.ami_regions:
                errs.append(f"Region {region} is in region_kms_key_ids but not in ami_regions")
        errs.extend(self._prepare_regions(build_region, skip_region_validation))
        errs.extend(self._sharing_errors())

        if not 3 <= len(self.ami_name) <= 128:
            errs.append("ami_name must be between 3 and 128 characters long")
        if self.ami_name != clean_ami_name(self.ami_name):
            errs.append(
                "AMIName should only contain alphanumeric characters, parentheses (()), "
                "square brackets ([]), spaces ( ), periods (.), slashes (/), dashes (-), "
                "single quotes ('), at-signs (@), or underscores(_). You can use the "
                "`clean_resource_name` template filter to automatically clean your ami name."
            )
        if self.imds_support not in ("", "v2.0"):
            errs.append(
                f'imds_support: "{self.imds_support}" is not valid; the only value is "v2.0".'
            )
        if self.deprecate_at and parse_rfc3339(self.deprecate_at) is None:
            errs.append(
                f'deprecate_at: "{self.deprecate_at}" is not an RFC 3339 time such as '
                '"2030-01-31T00:00:00Z".'
            )
        return errs

    def _prepare_regions(self, build_region: str, skip_validation: bool) -> list[str]:
        errs: list[str] = []
        seen: set[str] = set()
        kept: list[str] = []
        for region in self.ami_regions:
            if region in seen:
                continue
            seen.add(region)
            if self.region_kms_key_ids and region not in self.region_kms_key_ids:
                errs.append(f"Region {region} is in ami_regions but not in region_kms_key_ids")
            if region == build_region:
                # The AMI is built there already; Packer drops it silently.
                continue
            if not skip_validation and not regions.is_known(region):
                errs.append(regions.unknown_message("ami_regions", region))
            kept.append(region)
        self.ami_regions = kept
        return errs

    def _sharing_errors(self) -> list[str]:
        errs: list[str] = []
        encrypted = self.encrypt_boot is True
        if self.ami_users:
            if not self.kms_key_id and encrypted:
                errs.append("Cannot share AMI encrypted with default KMS key")
            for key in self.region_kms_key_ids.values():
                if not key:
                    errs.append("Cannot share AMI encrypted with default KMS key for other regions")

        keys = [self.kms_key_id] if self.kms_key_id else []
        keys += [k for k in self.region_kms_key_ids.values() if k]
        if keys and not encrypted:
            errs.append(
                "If you have set either region_kms_key_ids or kms_key_id, encrypt_boot must "
                "also be true."
            )
        errs.extend(f'"{k}" is not a valid KMS Key Id.' for k in keys if not valid_kms_key(k))

        if self.snapshot_users:
            if not self.kms_key_id and not self.region_kms_key_ids and encrypted:
                errs.append("Cannot share snapshot encrypted with default KMS key")
            for key in self.region_kms_key_ids.values():
                if not key:
                    errs.append("Cannot share snapshot encrypted with default KMS key")
        return errs


_KMS_KEY_ID = r"(mrk-)?[a-f0-9-]+$"
_KMS_ALIAS = r"alias/[a-zA-Z0-9:/_-]+$"
_KMS_ARN = r"^arn:aws(-[a-z-]+)?:kms:([a-z]{2}-(gov-)?[a-z]+-\d)?:(\d{12}):"
_KMS_PATTERNS = [
    re.compile("^" + _KMS_KEY_ID),
    re.compile("^" + _KMS_ALIAS),
    re.compile(_KMS_ARN + "key/" + _KMS_KEY_ID),
    re.compile(_KMS_ARN + _KMS_ALIAS),
]


def valid_kms_key(key: str) -> bool:
    """Key id, alias, or their ARNs (multi-region ``mrk-`` keys included, which Packer
    1.6.6 wrongly refuses)."""
    return any(p.match(key) for p in _KMS_PATTERNS)


def parse_rfc3339(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None

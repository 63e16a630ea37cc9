"""The options of the builder instance and its network (Packer's ``RunConfig``)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any

from imagesmith.builders.amazon.ami_config import (
    KeyValue,
    NameValue,
    TagBlock,
    merge_tag_blocks,
)
from imagesmith.communicators.config import CommunicatorConfig
from imagesmith.config.fields import Duration, opt
from imagesmith.template.functions import time_ordered_uuid

DEFAULT_WINDOWS_PASSWORD_TIMEOUT = 20 * 60.0
SSH_INTERFACES = ("public_ip", "private_ip", "public_dns", "private_dns", "session_manager")
KEY_PAIR_TYPES = ("rsa", "ed25519")
ZERO = Duration(0)


@dataclass
class AmiFilterOptions:
    """``source_ami_filter``."""

    filters: dict[str, str] = field(default_factory=dict)
    filter: list[KeyValue] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    most_recent: bool = False

    def all_filters(self) -> dict[str, str]:
        merged = dict(self.filters)
        merge_tag_blocks(merged, self.filter)
        return merged

    def empty(self) -> bool:
        return not self.owners and not self.all_filters()


@dataclass
class ResourceFilter:
    """``vpc_filter`` and ``security_group_filter``."""

    filters: dict[str, str] = field(default_factory=dict)
    filter: list[NameValue] = field(default_factory=list)

    def all_filters(self) -> dict[str, str]:
        merged = dict(self.filters)
        merge_tag_blocks(merged, self.filter)
        return merged

    def empty(self) -> bool:
        return not self.all_filters()


@dataclass
class SubnetFilterOptions(ResourceFilter):
    """``subnet_filter``."""

    most_free: bool = False
    random: bool = False


@dataclass
class PolicyStatement:
    Effect: str = ""
    Action: list[str] = field(default_factory=list)
    Resource: list[str] = field(default_factory=list)


@dataclass
class PolicyDocument:
    """``temporary_iam_instance_profile_policy_document``."""

    Version: str = ""
    Statement: list[PolicyStatement] = field(default_factory=list)

    def to_json_data(self) -> dict[str, Any]:
        return {
            "Version": self.Version,
            "Statement": [
                {"Effect": s.Effect, "Action": s.Action, "Resource": s.Resource}
                for s in self.Statement
            ],
        }


@dataclass
class MetadataOptions:
    """``metadata_options``: the instance metadata service of the builder instance."""

    http_endpoint: str = ""
    http_tokens: str = ""
    http_put_response_hop_limit: int = 0
    instance_metadata_tags: str = ""

    def validate(self) -> list[str]:
        errs: list[str] = []
        checks = (
            ("http_endpoint", self.http_endpoint, ("enabled", "disabled")),
            ("http_tokens", self.http_tokens, ("optional", "required")),
            ("instance_metadata_tags", self.instance_metadata_tags, ("enabled", "disabled")),
        )
        for key, value, allowed in checks:
            if value and value not in allowed:
                errs.append(
                    f"metadata_options.{key} requires either {allowed[0]} or {allowed[1]} "
                    "as its value"
                )
        if not 0 <= self.http_put_response_hop_limit <= 64:
            errs.append(
                "metadata_options.http_put_response_hop_limit requires a number between 1 and 64"
            )
        return errs

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.http_endpoint:
            out["HttpEndpoint"] = self.http_endpoint
        if self.http_tokens:
            out["HttpTokens"] = self.http_tokens
        if self.http_put_response_hop_limit:
            out["HttpPutResponseHopLimit"] = self.http_put_response_hop_limit
        if self.instance_metadata_tags:
            out["InstanceMetadataTags"] = self.instance_metadata_tags
        return out


@dataclass
class RunConfig:
    associate_public_ip_address: bool = False
    availability_zone: str = ""
    block_duration_minutes: int = 0
    disable_stop_instance: bool = False
    ebs_optimized: bool = False
    enable_t2_unlimited: bool = False
    iam_instance_profile: str = ""
    skip_profile_validation: bool = False
    temporary_iam_instance_profile_policy_document: PolicyDocument | None = None
    shutdown_behavior: str = ""
    instance_type: str = ""
    security_group_filter: ResourceFilter = opt(default_factory=ResourceFilter)
    run_tags: dict[str, str] = opt(default_factory=dict, late=True)
    run_tag: list[TagBlock] = opt(default_factory=list, late=True)
    security_group_id: str = ""
    security_group_ids: list[str] = field(default_factory=list)
    source_ami: str = ""
    source_ami_filter: AmiFilterOptions = opt(default_factory=AmiFilterOptions)
    spot_instance_types: list[str] = field(default_factory=list)
    spot_price: str = ""
    spot_price_auto_product: str = ""
    spot_tags: dict[str, str] | None = opt(None, late=True)
    spot_tag: list[TagBlock] = opt(default_factory=list, late=True)
    subnet_filter: SubnetFilterOptions = opt(default_factory=SubnetFilterOptions)
    subnet_id: str = ""
    tenancy: str = ""
    temporary_security_group_source_cidrs: list[str] = field(default_factory=list)
    user_data: str = ""
    user_data_file: str = ""
    vpc_filter: ResourceFilter = opt(default_factory=ResourceFilter)
    vpc_id: str = ""
    windows_password_timeout: Duration = ZERO
    ssh_interface: str = ""
    pause_before_ssm: Duration = ZERO
    session_manager_port: int = 0
    metadata_options: MetadataOptions = opt(default_factory=MetadataOptions)

    @property
    def is_spot(self) -> bool:
        return self.spot_price not in ("", "0")

    @property
    def password_timeout(self) -> float:
        return float(self.windows_password_timeout or DEFAULT_WINDOWS_PASSWORD_TIMEOUT)

    @property
    def source_cidrs(self) -> list[str]:
        return self.temporary_security_group_source_cidrs or ["0.0.0.0/0"]

    def validate(self, comm: CommunicatorConfig) -> list[str]:
        """Packer's RunConfig checks, in its order and with its texts. Also settles what
        Packer settles here: the temporary key pair name and the default values."""
        if not (
            comm.ssh_keypair_name
            or comm.temporary_key_pair_name
            or comm.ssh_private_key_file
            or comm.ssh_password
        ):
            comm.temporary_key_pair_name = f"packer_{time_ordered_uuid()}"
        if not self.shutdown_behavior:
            self.shutdown_behavior = "stop"
        merge_tag_blocks(self.run_tags, self.run_tag)
        if self.spot_tag:
            self.spot_tags = self.spot_tags or {}
            merge_tag_blocks(self.spot_tags, self.spot_tag)

        errs = comm.validate()
        if self.ssh_interface and self.ssh_interface not in SSH_INTERFACES:
            errs.append(f"Unknown interface type: {self.ssh_interface}")
        if self.ssh_interface == "session_manager":
            if comm.type != "ssh":
                errs.append(
                    "session_manager connectivity is not supported with the "
                    f'"{comm.type}" communicator; please use "ssh"'
                )
            if (
                not self.iam_instance_profile
                and not self.temporary_iam_instance_profile_policy_document
            ):
                errs.append(
                    "no iam_instance_profile defined; session_manager connectivity requires "
                    "a valid instance profile with AmazonSSMManagedInstanceCore permissions. "
                    "Alternatively a temporary_iam_instance_profile_policy_document can be used."
                )
        if comm.ssh_keypair_name:
            if comm.type == "winrm" and not comm.winrm_password and not comm.ssh_private_key_file:
                errs.append(
                    "ssh_private_key_file must be provided to retrieve the winrm password "
                    "when using ssh_keypair_name."
                )
            elif not comm.ssh_private_key_file and not comm.ssh_agent_auth:
                errs.append(
                    "ssh_private_key_file must be provided or ssh_agent_auth enabled when "
                    "ssh_keypair_name is specified."
                )
        if comm.temporary_key_pair_type and comm.temporary_key_pair_type not in KEY_PAIR_TYPES:
            errs.append("temporary_key_pair_type requires either rsa or ed25519 as its value")

        errs.extend(self._source_and_type_errors())
        errs.extend(self._launch_errors())
        errs.extend(self.metadata_options.validate())
        return errs

    def _source_and_type_errors(self) -> list[str]:
        errs: list[str] = []
        if not self.source_ami and self.source_ami_filter.empty():
            errs.append("A source_ami or source_ami_filter must be specified")
        if not self.source_ami and not self.source_ami_filter.owners:
            errs.append("For security reasons, your source AMI filter must declare an owner.")
        if not self.instance_type and not self.spot_instance_types:
            errs.append("either instance_type or spot_instance_types must be specified")
        if self.instance_type and self.spot_instance_types:
            errs.append("either instance_type or spot_instance_types must be specified, not both")
        if self.block_duration_minutes % 60 != 0:
            errs.append("block_duration_minutes must be multiple of 60")
        if self.spot_tags is not None and not self.is_spot:
            errs.append("spot_tags should not be set when not requesting a spot instance")
        return errs

    def _launch_errors(self) -> list[str]:
        errs: list[str] = []
        if self.user_data and self.user_data_file:
            errs.append("Only one of user_data or user_data_file can be specified.")
        elif self.user_data_file and not os.path.exists(self.user_data_file):
            errs.append(f"user_data_file not found: {self.user_data_file}")
        if self.security_group_id:
            if self.security_group_ids:
                errs.append("Only one of security_group_id or security_group_ids can be specified.")
            else:
                self.security_group_ids = [self.security_group_id]
                self.security_group_id = ""
        for cidr in self.temporary_security_group_source_cidrs:
            if not _valid_cidr(cidr):
                errs.append(
                    "Error parsing CIDR in temporary_security_group_source_cidrs: invalid "
                    f"CIDR address: {cidr}"
                )
        if self.shutdown_behavior not in ("stop", "terminate"):
            errs.append("shutdown_behavior only accepts 'stop' or 'terminate' values.")
        if self.enable_t2_unlimited:
            if self.spot_price:
                errs.append("Error: T2 Unlimited cannot be used in conjunction with Spot Instances")
            family, dot, _ = self.instance_type.partition(".")
            if not dot:
                errs.append(f"Error determining main Instance Type from: {self.instance_type}")
            elif family != "t2":
                errs.append(
                    f"Error: T2 Unlimited enabled with a non-T2 Instance Type: {self.instance_type}"
                )
        if self.tenancy not in ("", "default", "dedicated", "host"):
            errs.append(f"Error: Unknown tenancy type {self.tenancy}")
        return errs


def _valid_cidr(text: str) -> bool:
    """Go's ``net.ParseCIDR``: an address with a prefix length, host bits allowed."""
    if "/" not in text:
        return False
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True

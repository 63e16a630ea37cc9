"""How a build reaches AWS: credentials, region, endpoints and retry/poll tuning.

These are Packer 1.6.6's ``AccessConfig`` options. Only their checks live here; the
boto3 session that uses them is built in ``aws`` when a build runs, so that
``validate`` never imports boto3.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field

from imagesmith.builders.amazon import regions
from imagesmith.config.fields import opt

DEFAULT_MAX_RETRIES = 10


@dataclass
class AssumeRoleConfig:
    """``assume_role``: STS AssumeRole before anything else."""

    role_arn: str = ""
    duration_seconds: int = 0
    external_id: str = ""
    policy: str = ""
    policy_arns: list[str] = field(default_factory=list)
    session_name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    transitive_tag_keys: list[str] = field(default_factory=list)


@dataclass
class VaultAWSEngineOptions:
    """``vault_aws_engine``: credentials issued by HashiCorp Vault's AWS engine."""

    name: str = ""
    role_arn: str = ""
    ttl: str = ""
    engine_name: str = ""

    def empty(self) -> bool:
        return not (self.name or self.role_arn or self.ttl or self.engine_name)


@dataclass
class PollingConfig:
    """``aws_polling``: waiter delay and attempts (override the environment)."""

    delay_seconds: int = 0
    max_attempts: int = 0


@dataclass
class AccessConfig:
    access_key: str = opt("", secret=True)
    secret_key: str = opt("", secret=True)
    token: str = opt("", secret=True)
    region: str = ""
    profile: str = ""
    shared_credentials_file: str = ""
    custom_endpoint_ec2: str = ""
    decode_authorization_messages: bool = False
    insecure_skip_tls_verify: bool = False
    max_retries: int = 0
    mfa_code: str = opt("", secret=True)
    skip_metadata_api_check: bool = False
    skip_credential_validation: bool = False
    skip_region_validation: bool = False
    assume_role: AssumeRoleConfig = opt(default_factory=AssumeRoleConfig)
    vault_aws_engine: VaultAWSEngineOptions = opt(default_factory=VaultAWSEngineOptions)
    aws_polling: PollingConfig = opt(default_factory=PollingConfig)

    @property
    def retries(self) -> int:
        """SDK request retries: Packer raises the SDK's default of 3 to 10."""
        return self.max_retries if self.max_retries > 0 else DEFAULT_MAX_RETRIES

    def effective_region(self) -> str:
        """The build region: the template's, else the environment's or the profile's."""
        if self.region:
            return self.region
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if os.environ.get(name):
                return os.environ[name]
        return _profile_region(self.profile or os.environ.get("AWS_PROFILE", "default"))

    def validate(self) -> list[str]:
        """Packer's AccessConfig checks, then the region check Packer defers to the
        build (a typo in a region should not cost an instance launch)."""
        errs: list[str] = []
        if not self.vault_aws_engine.empty():
            if self.access_key:
                errs.append(
                    "If you have set vault_aws_engine, you must not set the access_key or "
                    "secret_key."
                )
            errs.extend(self.vault_aws_engine_errors())
        if bool(self.access_key) != bool(self.secret_key):
            errs.append("`access_key` and `secret_key` must both be either set or not set.")

        region = self.effective_region()
        if not region:
            errs.append(
                "region must be specified: set it in the template, or in AWS_REGION, "
                "AWS_DEFAULT_REGION or the profile's shared config."
            )
        elif not self.skip_region_validation and not regions.is_known(region):
            errs.append(regions.unknown_message("region", region))
        if self.assume_role.duration_seconds and not (
            900 <= self.assume_role.duration_seconds <= 43200
        ):
            errs.append(
                "assume_role.duration_seconds must be between 900 and 43200 seconds "
                f"(got {self.assume_role.duration_seconds})."
            )
        return errs

    def vault_aws_engine_errors(self) -> list[str]:
        # Packer reads the secret during validation and reports what Vault says; the
        # credentials are read when the build starts here, so only the shape is checked.
        if not self.vault_aws_engine.name:
            return ["vault_aws_engine.name must be set to the Vault role to read credentials of."]
        return []


def _profile_region(profile: str) -> str:
    """The ``region`` of a profile in the shared config file (``~/.aws/config``)."""
    path = os.environ.get("AWS_CONFIG_FILE") or os.path.expanduser("~/.aws/config")
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except (OSError, configparser.Error):
        return ""
    section = profile if profile == "default" else f"profile {profile}"
    if parser.has_option(section, "region"):
        return parser.get(section, "region").strip()
    return ""

"""Configuration checks: Packer 1.6.6's messages and order, before any API call.

One template with a builder per case is validated by ``packer validate`` and by
``imagesmith validate``; their outputs must be the same. Then the checks imagesmith
adds (Packer finds these problems only once the build has started, or not at all).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from amazon.harness import imagesmith, run

BASE: dict[str, Any] = {
    "type": "amazon-ebs",
    "region": "us-east-1",
    "source_ami": "ami-760aaa0f",
    "instance_type": "t2.micro",
    "ssh_username": "ec2-user",
    "ami_name": "imagesmith-config-test",
    "access_key": "AKIDCONFIGTEST",
    "secret_key": "config-test-secret",
    "skip_region_validation": True,
}

# name -> keys changed from BASE (None removes a key)
CASES: dict[str, dict[str, Any]] = {
    "ok": {},
    # (imagesmith also wants a region, Packer only at build time: see below)
    "empty": {k: None for k in BASE if k not in ("type", "skip_region_validation", "region")},
    "keys-and-name": {"secret_key": None, "ami_name": "a:b"},
    "devices": {
        "launch_block_device_mappings": [
            {"volume_type": "gp2"},
            {"device_name": "/dev/a", "volume_type": "io1", "volume_size": 10, "iops": 50},
            {"device_name": "/dev/b", "kms_key_id": "k", "encrypted": False},
            {"device_name": "/dev/d", "volume_type": "io2", "volume_size": 1, "iops": 600},
            {"device_name": "/dev/e", "volume_type": "io2", "volume_size": 1000, "iops": 70000},
            {"device_name": "/dev/f", "volume_type": "gp2", "throughput": 300},
        ],
        "ami_block_device_mappings": [{"volume_type": "gp2"}],
    },
    "regions-and-keys": {
        "ami_regions": ["us-west-2", "us-west-2", "us-east-1"],
        "region_kms_key_ids": {"eu-west-1": "alias/x"},
        "encrypt_boot": True,
        "ami_users": ["123456789012"],
        "snapshot_users": ["123456789012"],
    },
    "default-key-sharing": {
        "ami_regions": ["us-west-2"],
        "region_kms_key_ids": {"us-west-2": ""},
        "encrypt_boot": True,
        "ami_users": ["123456789012"],
        "snapshot_users": ["123456789012"],
    },
    "kms-without-encryption": {"kms_key_id": "alias/foo"},
    "bad-kms": {"kms_key_id": "not a key!", "encrypt_boot": True},
    "t2-unlimited": {"enable_t2_unlimited": True, "spot_price": "0.1", "instance_type": "m5.large"},
    "session-manager": {"ssh_interface": "session_manager", "ssh_keypair_name": "k"},
    "many-run-problems": {
        "ssh_keypair_name": "k",
        "user_data": "a",
        "user_data_file": "/nonexistent",
        "security_group_id": "sg-1",
        "security_group_ids": ["sg-2"],
        "temporary_security_group_source_cidrs": ["1.2.3.4/33", "10.0.0.0/8"],
        "block_duration_minutes": 30,
        "spot_tags": {"a": "b"},
        "instance_type": "",
        "source_ami": "",
        "shutdown_behavior": "explode",
        "tenancy": "shared",
        "ssh_interface": "carrier_pigeon",
    },
    "filter-without-owner": {
        "source_ami": "",
        "source_ami_filter": {"filters": {"name": "x"}},
        "spot_instance_types": ["t2.micro"],
    },
    "spot-and-ena": {"spot_price": "auto", "ena_support": True, "sriov_support": True},
    "user-data-missing": {"user_data_file": "/nonexistent/user-data"},
    "spot-auto-product": {"spot_price": "auto", "spot_price_auto_product": "Linux/UNIX"},
    "wrong-types": {"tags": "foo", "sriov_support": "maybe", "launch_block_device_mappings": "x"},
    "unknown-keys": {"bogus": 1, "source_ami_filter": {"owners": ["self"], "nope": 2}},
    "late-field-syntax": {"tags": {"{{ nope }}": "x"}},
    "ssh-key-file": {"ssh_private_key_file": "/nonexistent/key"},
}


def _template() -> dict[str, Any]:
    builders = []
    for name, changes in CASES.items():
        builder = {**BASE, "name": name}
        for key, value in changes.items():
            if value is None:
                builder.pop(key, None)
            else:
                builder[key] = value
        builders.append(builder)
    return {"builders": builders}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PACKER_"))}
    env["CHECKPOINT_DISABLE"] = "1"
    return env


@pytest.mark.packer
@pytest.mark.skipif(shutil.which("packer") is None, reason="packer 1.6.6 is not installed")
def test_validate_matches_packer(tmp_path: Path) -> None:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(_template(), indent=2))

    packer = run(["packer", "validate", str(path)], cwd=tmp_path, env=_env())
    mine = run(imagesmith("validate", str(path)), cwd=tmp_path, env=_env())

    assert mine.rc == packer.rc == 1
    assert _by_build(mine.out) == _by_build(packer.out)


def _by_build(out: str) -> dict[str, str]:
    """Each build's diagnostic (Packer prints builds in no fixed order)."""
    blocks: dict[str, str] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith(("Error: ", "Warning: ")) and '"' in line:
            current = line.split('"')[1]
            # imagesmith adds where the build is declared to the summary.
            blocks[current] = line.split(" (/", 1)[0] + "\n"
        elif current:
            blocks[current] += line + "\n"
    return {k: v.strip() for k, v in blocks.items()}


# -- what imagesmith checks beyond Packer -----------------------------------------------------


def _validate(tmp_path: Path, **changes: Any) -> tuple[int, str]:
    builder = {**BASE}
    for key, value in changes.items():
        if value is None:
            builder.pop(key, None)
        else:
            builder[key] = value
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [builder]}))
    result = run(imagesmith("validate", str(path)), cwd=tmp_path, env=_env())
    return result.rc, result.out


def test_unknown_regions_are_reported_before_any_api_call(tmp_path: Path) -> None:
    rc, out = _validate(
        tmp_path, region="us-eats-1", ami_regions=["eu-west-1", "eu-nowhere-3"],
        skip_region_validation=None,
    )  # fmt: skip

    assert rc == 1
    assert 'region: "us-eats-1" is not an AWS region this version knows.' in out
    assert 'ami_regions: "eu-nowhere-3" is not an AWS region' in out
    assert "eu-west-1" not in out


def test_region_may_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    builder = {k: v for k, v in BASE.items() if k != "region"}
    path.write_text(json.dumps({"builders": [builder]}))
    env = {**_env(), "AWS_DEFAULT_REGION": "eu-west-1", "HOME": str(tmp_path)}
    assert run(imagesmith("validate", str(path)), cwd=tmp_path, env=env).rc == 0

    env.pop("AWS_DEFAULT_REGION")
    result = run(imagesmith("validate", str(path)), cwd=tmp_path, env=env)
    assert result.rc == 1
    assert "region must be specified" in result.out


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"temporary_key_pair_type": "dsa"},
            "temporary_key_pair_type requires either rsa or ed25519",
        ),
        ({"imds_support": "v1"}, 'imds_support: "v1" is not valid'),
        ({"deprecate_at": "next tuesday"}, 'deprecate_at: "next tuesday" is not an RFC 3339 time'),
        (
            {"metadata_options": {"http_tokens": "sometimes", "http_put_response_hop_limit": 99}},
            "metadata_options.http_tokens requires either optional or required",
        ),
    ],
    ids=["key-type", "imds", "deprecate", "metadata"],
)
def test_checks_of_newer_options(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    rc, out = _validate(tmp_path, **changes)
    assert rc == 1
    assert message in out.replace("\n", " ")


@pytest.mark.parametrize(
    "changes",
    [
        {"launch_block_device_mappings": [{"device_name": "/dev/sdb", "volume_type": "gp3"}]},
        {"kms_key_id": "mrk-1234abcd12ab34cd56ef1234567890ab", "encrypt_boot": True},
        {"temporary_key_pair_type": "ed25519"},
        {"metadata_options": {"http_tokens": "required", "http_put_response_hop_limit": 2}},
        {"imds_support": "v2.0", "deprecate_at": "2030-01-31T00:00:00Z", "skip_create_ami": True},
        {"ami_name": "{{ clean_resource_name `docker:in/aws {{ecs}}` }}"},
    ],
    ids=["gp3-defaults", "multi-region-key", "ed25519", "imdsv2", "newer-ami-options", "clean"],
)
def test_options_newer_packer_accepts(tmp_path: Path, changes: dict[str, Any]) -> None:
    rc, out = _validate(tmp_path, **changes)
    assert (rc, out) == (0, "")


def test_validate_does_not_import_the_cloud_libraries(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [BASE]}))
    code = (
        "import sys\n"
        "from imagesmith.cli.main import main\n"
        f"rc = main(['validate', {str(path)!r}])\n"
        "heavy = [m for m in ('boto3', 'botocore', 'asyncssh') if m in sys.modules]\n"
        "print('heavy:', heavy, 'rc:', rc)\n"
    )
    result = run([sys.executable, "-c", code], cwd=tmp_path, env=_env())
    assert "heavy: [] rc: 0" in result.out, result.out


def test_secrets_are_never_printed(tmp_path: Path) -> None:
    rc, out = _validate(tmp_path, ami_name="x", secret_key="s3cr3t-value-for-test")
    assert rc == 1
    assert "s3cr3t-value-for-test" not in out


def test_every_problem_is_reported_at_once_decoding_errors_included(tmp_path: Path) -> None:
    # Packer stops at the first kind: decoding errors (unknown key, wrong type), then on
    # a second run the conflicting options. imagesmith reports all of them in one run.
    rc, out = _validate(
        tmp_path, bogus_key=1, tags="Name=x", spot_price="auto", ena_support=True,
        region="us-eats-1", skip_region_validation=None,
    )  # fmt: skip

    assert rc == 1
    assert "'tags' expected a map, got 'string'" in out
    assert "Spot instances do not support modification" in out
    assert 'region: "us-eats-1" is not an AWS region this version knows.' in out
    # Unknown keys are reported once the types are right, as in Packer.
    assert "bogus_key" not in out

    rc, out = _validate(tmp_path, bogus_key=1, spot_price="auto", ena_support=True)
    assert rc == 1
    assert "3 errors occurred:" not in out and "2 errors occurred:" in out
    assert "unknown configuration key: '\"bogus_key\"'" in out
    assert "Spot instances do not support modification" in out


def test_a_field_that_did_not_decode_is_not_also_reported_missing(tmp_path: Path) -> None:
    rc, out = _validate(tmp_path, instance_type=["t2.micro"], ami_name=None)
    assert rc == 1
    assert "'instance_type' expected type 'string', got unconvertible type" in out
    assert "ami_name must be specified" in out
    assert "An instance_type must be specified" not in out

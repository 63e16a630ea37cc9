"""``fix`` against packer 1.6.6: the same rewritten template, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.packer import Differential, needs_packer, same_usage_output

OLD = {
    "_comment": "<b> & c",
    "variables": {"x": "<y>"},
    "builders": [
        {
            "type": "amazon-ebs",
            "ssh_wait_timeout": "5m",
            "ami_name": "a {{clean_ami_name `x`}} {{ clean_image_name `y` }} {{.CreateTime}}",
            "iso_md5": "abc",
            "shutdown_behaviour": "stop",
            "enhanced_networking": True,
            "ssh_private_ip": True,
            "temporary_security_group_source_cidr": "1.2.3.4/32",
            "spot_price_auto_product": "x",
            "ssh_key_path": "k",
            "ssh_disable_agent": True,
            "region": "us-east-1",
        },
        {
            "type": "qemu",
            "iso_checksum_type": "sha256",
            "iso_checksum": "deadbeef",
            "disk_size": 1000,
            "ssh_host_port_min": 1,
            "ssh_host_port_max": 2,
            "ssh_skip_nat_mapping": True,
        },
        {"type": "docker", "image": "x", "commit": True, "login_email": "a@b"},
        {
            "type": "virtualbox-iso",
            "iso_checksum_type": "none",
            "iso_checksum": "",
            "iso_checksum_url": "http://sums",
            "ssh_host_port_min": 3,
        },
        {"type": "virtualbox", "guest_additions_attach": True, "name": "vb"},
        {"type": "vmware", "name": "vm"},
        {"type": "vmware-iso", "name": "esx", "remote_type": "esx5"},
        {"type": "proxmox", "name": "px"},
        {"type": "vsphere-iso", "network": "n", "networkCard": "c", "disk_size": 5},
        {"type": "hyperv-vmcx", "clone_from_vmxc_path": "p", "cpu": 2, "ram_size": 512},
        {"type": "parallels-iso", "headless": True, "guest_os_distribution": "u"},
        {"type": "scaleway", "access_key": "k"},
        {"type": "azure-chroot", "shared_image_destination": {"exlude_from_latest": True}},
    ],
    "provisioners": [
        {"type": "ansible-local", "galaxycommand": "g", "playbook_file": "p"},
        {"type": "powershell", "elevated_user": "a`$b", "environment_vars": ["X=``y"]},
        {"type": "shell", "inline": ["x"], "override": {"virtualbox": {"inline": ["y"]}}},
    ],
    "post-processors": [
        {"type": "manifest", "filename": "out.json"},
        [
            {"type": "docker-tag", "tag": "latest", "repository": "r"},
            {"type": "docker-tag", "tag": "a, b", "tags": ["b", "c"]},
        ],
        {"type": "docker-tag", "repository": "r"},
        {"type": "vagrant", "aws": {"a": 1}},
        "docker-push",
    ],
}


CASES: dict[str, Any] = {
    "every fixer": OLD,
    "numbers and escapes": {
        "builders": [
            {
                "type": "null",
                "x": 1.5,
                "y": 1e21,
                "z": 1e-7,
                "w": 100000000,
                "u": "\u2028\b\f\x01é&<>",
            }
        ]
    },
    "nothing to fix": {
        "builders": [{"type": "null"}],
        "provisioners": [{"type": "shell", "inline": ["a"]}],
    },
    "no builders": '{"a": 1} x',
    "fails to validate": {
        "builders": [{"type": "null", "only": ["q"]}],
        "provisioners": [{"type": "shell", "only": ["zz"]}],
    },
    "builder not a map": {"builders": ["x"]},
    "array": "[1]",
    "empty": "",
    "truncated": '{"builders": [',
}


@needs_packer
@pytest.mark.packer
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("validate", [[], ["-validate=false"]], ids=["validate", "no-validate"])
def test_fix_matches_packer(
    case: str, validate: list[str], tmp_path: Path, differential: Differential
) -> None:
    doc = CASES[case]
    (tmp_path / "t.json").write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    ref, ours = differential("fix", *validate, "t.json")
    assert (ours.rc, ours.out) == (ref.rc, ref.out)


@needs_packer
@pytest.mark.packer
def test_fix_usage_and_missing_file_match_packer(differential: Differential) -> None:
    for args in (["nope.json"], [], ["-h"], ["-bogus", "x"]):
        ref, ours = differential("fix", *args)
        assert ours.rc == ref.rc
        assert same_usage_output(ref.out, ours.out)

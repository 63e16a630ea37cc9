"""The fixers of ``fix`` and Packer's JSON encoding of the result.

``tests/cli/test_fix_cli.py`` runs the same rewrites through the reference binary.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from imagesmith.template.fix import FIXERS, FixError, encode, fix_template


def fixed(tpl: dict[str, Any]) -> dict[str, Any]:
    return fix_template(copy.deepcopy(tpl))


def builder(tpl: dict[str, Any]) -> dict[str, Any]:
    return fixed({"builders": [tpl]})["builders"][0]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            {"type": "qemu", "iso_checksum_type": "sha256", "iso_checksum": "dead"},
            {"type": "qemu", "iso_checksum": "sha256:dead"},
        ),
        ({"type": "qemu", "iso_md5": "abc"}, {"type": "qemu", "iso_checksum": "md5:abc"}),
        (
            {
                "type": "vb",
                "iso_checksum_type": "none",
                "iso_checksum": "",
                "iso_checksum_url": "http://s",
            },
            {"type": "vb", "iso_checksum": "file:http://s"},
        ),
        ({"type": "vb", "iso_checksum_type": "none"}, {"type": "vb"}),
        ({"type": "x", "ssh_wait_timeout": "5m"}, {"type": "x", "ssh_timeout": "5m"}),
        (
            {"type": "x", "ssh_wait_timeout": "5m", "ssh_timeout": "1m"},
            {"type": "x", "ssh_timeout": "1m"},
        ),
        (
            {
                "type": "amazon-ebs",
                "ami_name": "a {{clean_ami_name `x`}}",
                "tags": {"N": "{{ clean_image_name `y` }}"},
            },
            {
                "type": "amazon-ebs",
                "ami_name": "a {{clean_resource_name `x`}}",
                "tags": {"N": "{{ clean_resource_name `y` }}"},
            },
        ),
        (
            {"type": "amazon-ebs", "ami_name": "n {{ .CreateTime }}"},
            {"type": "amazon-ebs", "ami_name": "n {{timestamp}}"},
        ),
        (
            {"type": "amazon-ebs", "shutdown_behaviour": "stop"},
            {"type": "amazon-ebs", "shutdown_behavior": "stop"},
        ),
        (
            {"type": "amazon-ebs", "enhanced_networking": True},
            {"type": "amazon-ebs", "ena_support": True},
        ),
        (
            {"type": "amazon-ebs", "ssh_private_ip": "false"},
            {"type": "amazon-ebs", "ssh_interface": "public_ip"},
        ),
        (
            {"type": "amazon-ebs", "temporary_security_group_source_cidr": "1.2.3.4/32"},
            {"type": "amazon-ebs", "temporary_security_group_source_cidrs": ["1.2.3.4/32"]},
        ),
        ({"type": "amazon-ebs", "spot_price_auto_product": "x"}, {"type": "amazon-ebs"}),
        ({"type": "x", "ssh_key_path": "k"}, {"type": "x", "ssh_private_key_file": "k"}),
        (
            {"type": "x", "ssh_key_path": "k", "ssh_private_key_file": "kept"},
            {"type": "x", "ssh_private_key_file": "kept"},
        ),
        (
            {"type": "x", "ssh_disable_agent": True},
            {"type": "x", "ssh_disable_agent_forwarding": True},
        ),
        (
            {"type": "virtualbox", "guest_additions_attach": False},
            {"type": "virtualbox-iso", "guest_additions_mode": "upload"},
        ),
        ({"type": "vmware"}, {"type": "vmware-iso"}),
        ({"type": "proxmox"}, {"type": "proxmox-iso"}),
        (
            {"type": "qemu", "disk_size": 1000, "ssh_host_port_min": 1},
            {"type": "qemu", "disk_size": "1000M", "host_port_min": 1},
        ),
        (
            {"type": "virtualbox-iso", "ssh_host_port_max": 9, "ssh_skip_nat_mapping": True},
            {"type": "virtualbox-iso", "host_port_max": 9, "skip_nat_mapping": True},
        ),
        (
            {"type": "parallels-iso", "headless": True, "guest_os_distribution": "u"},
            {"type": "parallels-iso", "guest_os_type": "u"},
        ),
        ({"type": "scaleway", "access_key": "k"}, {"type": "scaleway", "organization_id": "k"}),
        (
            {"type": "hyperv-vmcx", "clone_from_vmxc_path": "p", "cpu": 2, "ram_size": 512},
            {"type": "hyperv-vmcx", "clone_from_vmcx_path": "p", "cpus": 2, "memory": 512},
        ),
        ({"type": "hyperv-iso", "vhd_temp_path": "x"}, {"type": "hyperv-iso"}),
        (
            {"type": "vmware-iso", "remote_type": "esx5"},
            {
                "type": "vmware-iso",
                "remote_type": "esx5",
                "disk_type_id": "zeroedthick",
                "skip_compaction": True,
            },
        ),
        (
            {"type": "vmware-iso", "remote_type": "esx5", "disk_type_id": "thin"},
            {"type": "vmware-iso", "remote_type": "esx5", "disk_type_id": "thin"},
        ),
        (
            {"type": "vsphere-iso", "network": "n", "disk_size": 5},
            {
                "type": "vsphere-iso",
                "network_adapters": [{"network": "n"}],
                "storage": [{"disk_size": 5}],
            },
        ),
        (
            {"type": "azure-chroot", "shared_image_destination": {"exlude_from_latest": True}},
            {"type": "azure-chroot", "shared_image_destination": {"exclude_from_latest": True}},
        ),
        # Leaves alone what it does not recognise.
        ({"type": "docker", "image": "x"}, {"type": "docker", "image": "x"}),
        ({"name": "no type", "ssh_wait_timeout": "1m"}, {"name": "no type", "ssh_timeout": "1m"}),
    ],
)
def test_builder_fixers(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert builder(before) == after


def test_post_processor_fixers() -> None:
    tpl = fixed(
        {
            "builders": [{"type": "docker", "login_email": "a@b"}],
            "post-processors": [
                {"type": "manifest", "filename": "out.json"},
                [{"type": "docker-tag", "tag": "latest, v1", "tags": ["v1", "v2"]}, "docker-push"],
                {"type": "docker-tag"},
                {"type": "docker-import", "login_email": "x"},
                {"type": "vagrant", "aws": {"a": 1}},
            ],
        }
    )
    assert tpl["builders"] == [{"type": "docker"}]
    assert tpl["post-processors"] == [
        {"type": "manifest", "output": "out.json"},
        [{"type": "docker-tag", "tags": ["latest", "v1", "v2"]}, "docker-push"],
        {"type": "docker-tag", "tags": []},
        {"type": "docker-import"},
        {"type": "vagrant", "override": {"aws": {"a": 1}}},
    ]


def test_provisioner_fixers() -> None:
    tpl = fixed(
        {
            "builders": [{"type": "virtualbox"}],
            "provisioners": [
                {"type": "ansible-local", "galaxycommand": "g"},
                {"type": "powershell", "elevated_user": "a`$b", "environment_vars": ["X=``y`'"]},
                {"type": "shell", "override": {"virtualbox": {"inline": ["x"]}}},
            ],
        }
    )
    assert tpl["provisioners"] == [
        {"type": "ansible-local", "galaxy_command": "g"},
        {"type": "powershell", "elevated_user": "a$b", "environment_vars": ["X=`y'"]},
        {"type": "shell", "override": {"virtualbox-iso": {"inline": ["x"]}}},
    ]


def test_a_template_without_builders_gets_a_null_builders_key() -> None:
    # Packer's fixers assign their (empty) builder list back.
    assert fixed({"a": 1}) == {"a": 1, "builders": None}
    assert fixed({"builders": []}) == {"builders": []}


def test_fixer_errors_read_as_packer_prints_them() -> None:
    with pytest.raises(FixError) as caught:
        fixed({"builders": ["x", {"type": "null"}, 3]})
    assert str(caught.value) == (
        "2 error(s) decoding:\n\n* 'Builders[0]' expected a map, got 'string'\n"
        "* 'Builders[2]' expected a map, got 'float64'"
    )
    with pytest.raises(FixError, match="ssh_private_ip is not a boolean"):
        fixed({"builders": [{"type": "amazon-ebs", "ssh_private_ip": "maybe"}]})


def test_fixers_run_in_packers_order() -> None:
    names = [name for name, _, _ in FIXERS]
    assert names[:3] == ["iso-md5", "createtime", "virtualbox-gaattach"]
    assert names.index("iso-md5") < names.index("iso-checksum-type-and-url")
    assert len(names) == 34


def test_encoding_matches_go() -> None:
    text = encode(
        {
            "b": [1, 1.5, 1e21, 1e-7, 100000000, 12345678901234567890, -0.5, [], {}],
            "a": {"s": '<x> & "q" \\ \n\t\u2028\b\f\x01é', "t": True, "n": None},
        }
    )
    assert text == (
        "{\n"
        '  "a": {\n'
        '    "n": null,\n'
        '    "s": "<x> \\u0026 \\"q\\" \\\\ \\n\\t\\u2028\\u0008\\u000c\\u0001é",\n'
        '    "t": true\n'
        "  },\n"
        '  "b": [\n'
        "    1,\n"
        "    1.5,\n"
        "    1e+21,\n"
        "    1e-7,\n"
        "    100000000,\n"
        "    12345678901234567000,\n"
        "    -0.5,\n"
        "    [],\n"
        "    {}\n"
        "  ]\n"
        "}\n"
    )

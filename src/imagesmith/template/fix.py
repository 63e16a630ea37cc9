"""``fix``: rewrite templates written for older Packer versions (Packer 1.6.6's fixers).

Every fixer Packer 1.6.6 ships is here, run in its order, with its behaviour: keys
renamed, values reshaped, builder types renamed. Two of Packer's crashes become plain
behaviour: a builder without a ``type`` is left alone (Packer panics in
``comm-config``), and values of an unexpected type are left as they are.

``encode`` writes the result as Packer does: keys sorted, two-space indent, numbers as
Go prints float64, strings escaped as Go's encoder escapes them (``&`` as ``\\u0026``),
except ``<`` and ``>``, which Packer turns back into the characters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from imagesmith.golang import format_float
from imagesmith.template.mapstruct import find_key, go_kind, mapstructure_errors

Json = dict[str, Any]


class FixError(Exception):
    """A fixer could not process the template; ``str()`` is Packer's text."""


# --- access to the sections, as the fixers' mapstructure decoding sees them ----------------


def _builders(tpl: Json) -> list[Any] | None:
    """``Builders []map[string]interface{}``: None when absent, else a list of maps
    (an item may be null)."""
    key = find_key(tpl, "Builders")
    raw = tpl.get(key) if key is not None else None
    if raw is None:
        return None
    if not isinstance(raw, list):
        message = f"'Builders': source data must be an array or slice, got {go_kind(raw)}"
        raise FixError(mapstructure_errors([message]))
    errors = [
        f"'Builders[{i}]' expected a map, got '{go_kind(b)}'"
        for i, b in enumerate(raw)
        if b is not None and not isinstance(b, dict)
    ]
    if errors:
        raise FixError(mapstructure_errors(errors))
    return raw


def _for_builders(fix: Callable[[Json], None]) -> Callable[[Json], None]:
    """A fixer that rewrites each builder map in place. Like Packer's, it assigns the
    list back, so a template without builders ends up with ``"builders": null``."""

    def run(tpl: Json) -> None:
        builders = _builders(tpl)
        for b in builders or []:
            if b is not None:
                fix(b)
        tpl["builders"] = builders

    run.__doc__ = fix.__doc__
    return run


def _post_processors(tpl: Json) -> list[Json] | None:
    """Every post-processor map (chains flattened), or None when there are none."""
    raw = tpl.get("post-processors")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise FixError(
            mapstructure_errors(
                [f"'post-processors': source data must be an array or slice, got {go_kind(raw)}"]
            )
        )
    found: list[Json] = []
    for item in raw:
        if isinstance(item, dict):
            found.append(item)
        elif isinstance(item, list):
            found.extend(inner for inner in item if isinstance(inner, dict))
    return found


def _provisioners(tpl: Json) -> list[Any]:
    key = find_key(tpl, "Provisioners")
    raw = tpl.get(key) if key is not None else None
    if raw is None:
        return []
    # Weak decoding: a lone value is read as a one-element list.
    return raw if isinstance(raw, list) else [raw]


def _type_of(item: Mapping[str, Any]) -> str | None:
    value = item.get("type")
    return value if isinstance(value, str) else None


def _rename(item: Json, old: str, new: str) -> None:
    if old in item:
        item[new] = item.pop(old)


# --- the fixers, in Packer's order -------------------------------------------------------------


@_for_builders
def iso_md5(b: Json) -> None:
    if isinstance(b.get("iso_md5"), str):
        b["iso_checksum"] = b.pop("iso_md5")
        b["iso_checksum_type"] = "md5"


_CREATE_TIME = re.compile(r"{{\s*\.CreateTime\s*}}")


@_for_builders
def createtime(b: Json) -> None:
    for key in ("ami_name", "bundle_prefix", "snapshot_name"):
        if isinstance(b.get(key), str):
            b[key] = _CREATE_TIME.sub("{{timestamp}}", b[key])


@_for_builders
def virtualbox_gaattach(b: Json) -> None:
    if _type_of(b) == "virtualbox" and isinstance(b.get("guest_additions_attach"), bool):
        attach = b.pop("guest_additions_attach")
        b["guest_additions_mode"] = "attach" if attach else "upload"


def pp_vagrant_override(tpl: Json) -> None:
    pps = _post_processors(tpl)
    if pps is None:
        return
    for pp in pps:
        if _type_of(pp) != "vagrant":
            continue
        overrides = {
            name: pp.pop(name)
            for name in ("aws", "digitalocean", "virtualbox", "vmware")
            if name in pp
        }
        if overrides:
            pp["override"] = overrides


def virtualbox_rename(tpl: Json) -> None:
    builders = _builders(tpl) or []
    for b in builders:
        if b is not None and _type_of(b) == "virtualbox":
            b["type"] = "virtualbox-iso"
    provisioners = _provisioners(tpl)
    for p in provisioners:
        if not isinstance(p, dict) or "override" not in p:
            continue
        override = p["override"]
        if isinstance(override, list) and not override:
            override = {}
        if not isinstance(override, dict):
            raise FixError(f"'' expected a map, got '{go_kind(override)}'")
        if "virtualbox" in override:
            override["virtualbox-iso"] = override.pop("virtualbox")
            p["override"] = override
    if builders:
        tpl["builders"] = builders
    if provisioners:
        tpl["provisioners"] = provisioners


@_for_builders
def vmware_rename(b: Json) -> None:
    if _type_of(b) == "vmware":
        b["type"] = "vmware-iso"


_PARALLELS = ("parallels-iso", "parallels-pvm")


@_for_builders
def parallels_headless(b: Json) -> None:
    if _type_of(b) in _PARALLELS:
        b.pop("headless", None)


@_for_builders
def parallels_deprecations(b: Json) -> None:
    if _type_of(b) in _PARALLELS:
        b.pop("parallels_tools_host_path", None)
        _rename(b, "guest_os_distribution", "guest_os_type")


@_for_builders
def sshkeypath(b: Json) -> None:
    if isinstance(b.get("ssh_key_path"), str):
        path = b.pop("ssh_key_path")
        b.setdefault("ssh_private_key_file", path)


@_for_builders
def sshdisableagent(b: Json) -> None:
    if isinstance(b.get("ssh_disable_agent"), bool):
        value = b.pop("ssh_disable_agent")
        b.setdefault("ssh_disable_agent_forwarding", value)


@_for_builders
def scaleway_access_key(b: Json) -> None:
    if _type_of(b) == "scaleway" and isinstance(b.get("access_key"), str):
        key = b.pop("access_key")
        b.setdefault("organization_id", key)


def manifest_filename(tpl: Json) -> None:
    for pp in _post_processors(tpl) or []:
        if _type_of(pp) == "manifest" and isinstance(pp.get("filename"), str):
            pp["output"] = pp.pop("filename")


def _amazon(b: Json) -> bool:
    return (_type_of(b) or "").startswith("amazon-")


@_for_builders
def amazon_shutdown_behavior(b: Json) -> None:
    if _amazon(b):
        _rename(b, "shutdown_behaviour", "shutdown_behavior")


@_for_builders
def amazon_enhanced_networking(b: Json) -> None:
    if _amazon(b) and isinstance(b.get("enhanced_networking"), bool):
        b["ena_support"] = b.pop("enhanced_networking")


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@_for_builders
def amazon_private_ip(b: Json) -> None:
    if not _amazon(b) or "ssh_interface" in b or "ssh_private_ip" not in b:
        return
    value = b["ssh_private_ip"]
    if isinstance(value, str):
        if value not in _TRUE + _FALSE:
            raise FixError(
                f'ssh_private_ip is not a boolean, strconv.ParseBool: parsing "{value}": '
                "invalid syntax"
            )
        value = value in _TRUE
    if not isinstance(value, bool):
        return
    del b["ssh_private_ip"]
    b["ssh_interface"] = "private_ip" if value else "public_ip"


@_for_builders
def amazon_temp_sec_cidrs(b: Json) -> None:
    if _amazon(b) and isinstance(b.get("temporary_security_group_source_cidr"), str):
        cidr = b.pop("temporary_security_group_source_cidr")
        b["temporary_security_group_source_cidrs"] = [cidr]


def docker_email(tpl: Json) -> None:
    pps = _post_processors(tpl)
    if pps is None:
        return
    builders = _builders(tpl)
    for item in [*(builders or []), *pps]:
        if item is not None:
            item.pop("login_email", None)
    tpl["builders"] = builders


def _tag_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [t for t in value if isinstance(t, str)]
    if isinstance(value, str):
        return [t.strip() for t in value.split(",")]
    return []


def docker_tag_tags(tpl: Json) -> None:
    for pp in _post_processors(tpl) or []:
        if _type_of(pp) != "docker-tag":
            continue
        tags = _tag_list(pp.get("tag")) + _tag_list(pp.get("tags"))
        pp.pop("tag", None)
        pp["tags"] = list(dict.fromkeys(tags))


_PS_UNESCAPE = {"`$": "$", '`"': '"', "``": "`", "`'": "'"}
_PS_ESCAPE = re.compile("|".join(re.escape(k) for k in _PS_UNESCAPE))


def _ps_unescape(text: str) -> str:
    return _PS_ESCAPE.sub(lambda m: _PS_UNESCAPE[m.group(0)], text)


def powershell_escapes(tpl: Json) -> None:
    provisioners = _provisioners(tpl)
    for p in provisioners:
        if not isinstance(p, dict) or p.get("type") != "powershell":
            continue
        for key in ("elevated_user", "elevated_password"):
            if isinstance(p.get(key), str):
                p[key] = _ps_unescape(p[key])
        env = p.get("environment_vars")
        if isinstance(env, list) and all(isinstance(e, str) for e in env):
            p["environment_vars"] = [_ps_unescape(e) for e in env]
    if provisioners:
        tpl["provisioners"] = provisioners


@_for_builders
def vmware_compaction(b: Json) -> None:
    if _type_of(b) != "vmware-iso" or b.get("remote_type") != "esx5":
        return
    if "disk_type_id" not in b:
        # The default when this fixer was written, which compaction cannot handle.
        b["disk_type_id"] = "zeroedthick"
    elif not isinstance(b["disk_type_id"], str) or b["disk_type_id"] == "thin":
        return
    skip = b.get("skip_compaction")
    if skip is None or skip is False:
        b["skip_compaction"] = True


@_for_builders
def hyperv_deprecations(b: Json) -> None:
    if _type_of(b) == "hyperv-iso":
        b.pop("vhd_temp_path", None)


@_for_builders
def hyperv_vmxc_typo(b: Json) -> None:
    if _type_of(b) == "hyperv-vmcx":
        _rename(b, "clone_from_vmxc_path", "clone_from_vmcx_path")


@_for_builders
def hyperv_cpu_and_ram(b: Json) -> None:
    if _type_of(b) in ("hyperv-vmcx", "hyperv-iso"):
        _rename(b, "cpu", "cpus")
        _rename(b, "ram_size", "memory")


_CLEAN_NAME = re.compile(r"clean_(image|ami)_name")


@_for_builders
def clean_image_name(b: Json) -> None:
    for key, value in b.items():
        if isinstance(value, str):
            b[key] = _CLEAN_NAME.sub("clean_resource_name", value)
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(v, str):
                    value[k] = _CLEAN_NAME.sub("clean_resource_name", v)


@_for_builders
def spot_price_auto_product(b: Json) -> None:
    if _type_of(b) in ("amazon-ebs", "amazon-ebssurrogate", "amazon-ebsvolume", "amazon-instance"):
        b.pop("spot_price_auto_product", None)


@_for_builders
def qemu_disk_size(b: Json) -> None:
    size = b.get("disk_size")
    if _type_of(b) == "qemu" and isinstance(size, int | float) and not isinstance(size, bool):
        b["disk_size"] = f"{int(size)}M"


def galaxy_command(tpl: Json) -> None:
    provisioners = _provisioners(tpl)
    for p in provisioners:
        if not isinstance(p, dict) or p.get("type") != "ansible-local":
            continue
        if "galaxy_command" in p:
            p.pop("galaxycommand", None)
        elif isinstance(p.get("galaxycommand"), str):
            p["galaxy_command"] = p.pop("galaxycommand")
    if provisioners:
        tpl["provisioners"] = provisioners


def comm_config(tpl: Json) -> None:
    builders = _builders(tpl) or []
    for b in builders:
        if b is None or not (_type_of(b) or "").startswith("virtualbox"):
            continue
        for name in ("host_port_min", "host_port_max"):
            if name in b:
                b.pop(f"ssh_{name}", None)
            else:
                _rename(b, f"ssh_{name}", name)
        if "skip_nat_mapping" in b:
            b.pop("ssh_skip_nat_mapping", None)
        elif isinstance(b.get("ssh_skip_nat_mapping"), bool):
            b["skip_nat_mapping"] = b.pop("ssh_skip_nat_mapping")
    if builders:
        tpl["builders"] = builders


def ssh_wait_timeout(tpl: Json) -> None:
    builders = _builders(tpl) or []
    for b in builders:
        if b is None:
            continue
        if "ssh_timeout" in b:
            b.pop("ssh_wait_timeout", None)
        elif isinstance(b.get("ssh_wait_timeout"), str):
            b["ssh_timeout"] = b.pop("ssh_wait_timeout")
    if builders:
        tpl["builders"] = builders


@_for_builders
def vsphere_iso_net_disk(b: Json) -> None:
    if _type_of(b) != "vsphere-iso":
        return
    nic: Json = {}
    for old, new in (
        ("network", "network"),
        ("networkCard", "network_card"),
        ("network_card", "network_card"),
    ):
        if old in b:
            nic[new] = b.pop(old)
    if nic:
        existing = b.get("network_adapters")
        b["network_adapters"] = [nic, *(existing if isinstance(existing, list) else [])]
    disk: Json = {}
    for key in ("disk_size", "disk_thin_provisioned", "disk_eagerly_scrub"):
        if key in b:
            disk[key] = b.pop(key)
    if disk:
        existing = b.get("storage")
        b["storage"] = [disk, *(existing if isinstance(existing, list) else [])]


def _string_value(value: Any) -> str:
    return value if isinstance(value, str) else ""


@_for_builders
def iso_checksum_type_and_url(b: Json) -> None:
    url = _string_value(b.pop("iso_checksum_url", None))
    kind = _string_value(b.pop("iso_checksum_type", None))
    checksum = _string_value(b.get("iso_checksum"))
    if not checksum and not url:
        return
    if url:
        checksum = "file:" + url
    elif kind:
        checksum = f"{kind}:{checksum}"
    b["iso_checksum"] = checksum


@_for_builders
def qemu_host_port(b: Json) -> None:
    if _type_of(b) == "qemu":
        _rename(b, "ssh_host_port_min", "host_port_min")
        _rename(b, "ssh_host_port_max", "host_port_max")


@_for_builders
def azure_exclude_from_latest(b: Json) -> None:
    destination = b.get("shared_image_destination")
    if (_type_of(b) or "").startswith("azure-chroot") and isinstance(destination, dict):
        _rename(destination, "exlude_from_latest", "exclude_from_latest")


@_for_builders
def proxmox_type(b: Json) -> None:
    if _type_of(b) == "proxmox":
        b["type"] = "proxmox-iso"


#: (name, synopsis, fixer) in the order Packer 1.6.6 runs them.
FIXERS: list[tuple[str, str, Callable[[Json], None]]] = [
    ("iso-md5", 'Replaces "iso_md5" in builders with "iso_checksum"', iso_md5),
    ("createtime", 'Replaces ".CreateTime" in builder configs with "{{timestamp}}"', createtime),
    (
        "virtualbox-gaattach",
        'Updates VirtualBox builders using "guest_additions_attach" to use "guest_additions_mode"',
        virtualbox_gaattach,
    ),
    (
        "pp-vagrant-override",
        "Fixes provider-specific overrides for Vagrant post-processor",
        pp_vagrant_override,
    ),
    ("virtualbox-rename", 'Updates "virtualbox" builders to "virtualbox-iso"', virtualbox_rename),
    ("vmware-rename", 'Updates "vmware" builders to "vmware-iso"', vmware_rename),
    ("parallels-headless", 'Removes unused "headless" from Parallels builders', parallels_headless),
    (
        "parallels-deprecations",
        'Removes deprecated "parallels_tools_host_path" from Parallels builders and changes '
        '"guest_os_distribution" to "guest_os_type".',
        parallels_deprecations,
    ),
    (
        "sshkeypath",
        'Updates builders using "ssh_key_path" to use "ssh_private_key_file"',
        sshkeypath,
    ),
    (
        "sshdisableagent",
        'Updates builders using "ssh_disable_agent" to use "ssh_disable_agent_forwarding"',
        sshdisableagent,
    ),
    (
        "scaleway-access-key",
        'Updates builders using "access_key" to use "organization_id"',
        scaleway_access_key,
    ),
    (
        "manifest-filename",
        'Updates "manifest" post-processor so any "filename" field is renamed to "output".',
        manifest_filename,
    ),
    (
        "amazon-shutdown_behavior",
        'Changes "shutdown_behaviour" to "shutdown_behavior" in Amazon builders.',
        amazon_shutdown_behavior,
    ),
    (
        "amazon-enhanced-networking",
        'Replaces "enhanced_networking" in builders with "ena_support"',
        amazon_enhanced_networking,
    ),
    (
        "amazon-private-ip",
        'Replaces `"ssh_private_ip": true` in amazon builders with `"ssh_interface": "private_ip"`',
        amazon_private_ip,
    ),
    (
        "amazon-temp-sec-cidrs",
        'Replaces "temporary_security_group_source_cidr" (string) with '
        '"temporary_security_group_source_cidrs" (list of strings)',
        amazon_temp_sec_cidrs,
    ),
    ("docker-email", 'Removes "login_email" from the Docker builder.', docker_email),
    (
        "docker-tag-tags",
        'Updates "docker" post-processor so any "tag" field is renamed to "tags".',
        docker_tag_tags,
    ),
    (
        "powershell-escapes",
        "Removes PowerShell escapes from user env vars and elevated username and password strings",
        powershell_escapes,
    ),
    (
        "vmware-compaction",
        'Adds "skip_compaction = true" to "vmware-iso" builders with incompatible disk_type_id',
        vmware_compaction,
    ),
    (
        "hyperv-deprecations",
        'Removes the deprecated "vhd_temp_path" setting from Hyper-V ISO builder templates',
        hyperv_deprecations,
    ),
    (
        "hyperv-vmxc-typo",
        'Fixes a typo replacing "clone_from_vmxc_path" with "clone_from_vmcx_path" in Hyper-V '
        "VMCX builder templates",
        hyperv_vmxc_typo,
    ),
    (
        "hyperv-cpu-and-ram",
        # Packer's text, missing space included.
        'Replaces "cpu" with "cpus" and "ram_size" with "memory"in Hyper-V VMCX builder templates',
        hyperv_cpu_and_ram,
    ),
    (
        "clean-image-name",
        'Replaces /clean_(image|ami)_name/ in builder configs with "clean_resource_name"',
        clean_image_name,
    ),
    (
        "spot-price-auto-product",
        'Removes the deprecated "spot_price_auto_product" setting from Amazon builder templates',
        spot_price_auto_product,
    ),
    ("qemu-disk-size", 'Updates "disk_size" from int to string in QEMU builders.', qemu_disk_size),
    (
        "galaxy-command",
        'Replaces "galaxycommand" in ansible-local provisioner configs with "galaxy_command"',
        galaxy_command,
    ),
    (
        "comm-config",
        "Remove ssh prefixes from communicator port forwarding configuration (host_port_min, "
        "host_port_max, skip_nat_mapping)",
        comm_config,
    ),
    ("ssh-wait-timeout", 'Replaces "ssh_wait_timeout" with "ssh_timeout"', ssh_wait_timeout),
    (
        "vsphere-iso-net-disk",
        'Removes deprecated network and disk fields from "vsphere-iso" builder',
        vsphere_iso_net_disk,
    ),
    (
        "iso-checksum-type-and-url",
        # Packer's text, repeated key included.
        'Puts content of potential "iso_checksum_url" and "iso_checksum_url" in "iso_checksum"',
        iso_checksum_type_and_url,
    ),
    (
        "qemu-host-port",
        "Updates ssh_host_port_min and ssh_host_port_max to host_port_min and host_port_max",
        qemu_host_port,
    ),
    (
        "azure-exclude_from_latest",
        'Changes "exlude_from_latest" to "exclude_from_latest" in Azure builders.',
        azure_exclude_from_latest,
    ),
    ("proxmox-type", "Updates the builder type proxmox to proxmox-iso", proxmox_type),
]


def fix_template(tpl: Json) -> Json:
    """Apply every fixer in order (in place) and return the template."""
    for _, _, fixer in FIXERS:
        fixer(tpl)
    return tpl


# --- Go's JSON encoding --------------------------------------------------------------------


def _go_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or ch in "<>&\u2028\u2029":
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_number(value: int | float) -> str:
    f = float(value)
    if f == 0:
        return "0" if math.copysign(1, f) > 0 else "-0"
    if 1e-6 <= abs(f) < 1e21:
        return format_float(f, "f", -1)
    text = format_float(f, "e", -1)
    # Go's encoder shortens a two-digit negative exponent: 1e-07 is written 1e-7.
    m = re.fullmatch(r"(.*e-)0(\d)", text)
    return m.group(1) + m.group(2) if m else text


def _encode(value: Any, indent: str, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int | float):
        out.append(_go_number(value))
    elif isinstance(value, str):
        out.append(_go_string(value))
    elif isinstance(value, list):
        if not value:
            out.append("[]")
            return
        inner = indent + "  "
        out.append("[\n")
        for i, item in enumerate(value):
            out.append(inner)
            _encode(item, inner, out)
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append(indent + "]")
    else:
        if not value:
            out.append("{}")
            return
        inner = indent + "  "
        out.append("{\n")
        keys = sorted(value)
        for i, key in enumerate(keys):
            out.append(f"{inner}{_go_string(key)}: ")
            _encode(value[key], inner, out)
            out.append(",\n" if i < len(keys) - 1 else "\n")
        out.append(indent + "}")


def encode(tpl: Json) -> str:
    """The fixed template as Packer prints it (ending with a newline)."""
    out: list[str] = []
    _encode(tpl, "", out)
    text = "".join(out) + "\n"
    return text.replace("\\u003c", "<").replace("\\u003e", ">")

"""``run_command``: the ``docker run`` arguments a template gives, mapped onto the
Engine API's container-create options.

Packer runs ``docker run <flags> IMAGE [COMMAND...]``. imagesmith creates the container
through the API instead, so each flag is translated; a flag with no translation is a
configuration error naming it, never silently dropped. ``-d``, ``-i``, ``-t`` and
``--rm`` are accepted: the container always runs detached and is always removed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

# Packer's default for Linux containers.
DEFAULT_RUN_COMMAND = ["-d", "-i", "-t", "--entrypoint=/bin/sh", "--", "{{.Image}}"]

_BOOL_FLAGS = {
    "-d": "detach", "--detach": "detach",
    "-i": "interactive", "--interactive": "interactive",
    "-t": "tty", "--tty": "tty",
    "--rm": "rm",
    "--privileged": "privileged",
    "--init": "init",
    "--read-only": "read_only",
}  # fmt: skip

_VALUE_FLAGS = {
    "--network": "network", "--net": "network",
    "-e": "env", "--env": "env",
    "--env-file": "env_file",
    "-v": "volume", "--volume": "volume",
    "-u": "user", "--user": "user",
    "-w": "workdir", "--workdir": "workdir",
    "--entrypoint": "entrypoint",
    "--cap-add": "cap_add",
    "--cap-drop": "cap_drop",
    "--tmpfs": "tmpfs",
    "--device": "device",
    "-h": "hostname", "--hostname": "hostname",
    "--name": "name",
    "-l": "label", "--label": "label",
    "--add-host": "add_host",
    "--security-opt": "security_opt",
    "--shm-size": "shm_size",
    "--ipc": "ipc",
    "--pid": "pid",
    "--platform": "platform",
    "-m": "memory", "--memory": "memory",
    "--dns": "dns",
}  # fmt: skip

SUPPORTED = sorted(set(_BOOL_FLAGS) | set(_VALUE_FLAGS), key=lambda f: f.lstrip("-"))


class RunCommandError(ValueError):
    """A ``run_command`` that cannot be carried out through the Engine API."""


@dataclass
class RunSpec:
    """What ``docker run`` would have done, as create options."""

    image: str = ""
    command: list[str] = field(default_factory=list)
    #: None: not given. ``[]``: ``--entrypoint ""`` (reset the image's).
    entrypoint: list[str] | None = None
    network: str | None = None
    interactive: bool = False
    tty: bool = False
    privileged: bool = False
    init: bool = False
    read_only: bool = False
    env: list[str] = field(default_factory=list)
    user: str | None = None
    workdir: str | None = None
    binds: list[str] = field(default_factory=list)
    anonymous_volumes: list[str] = field(default_factory=list)
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    tmpfs: dict[str, str] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    hostname: str | None = None
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    extra_hosts: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    shm_size: str | None = None
    ipc: str | None = None
    pid: str | None = None
    platform: str | None = None
    memory: str | None = None


def _parse_bool(flag: str, text: str) -> bool:
    if text.lower() in ("true", "1", "t"):
        return True
    if text.lower() in ("false", "0", "f"):
        return False
    raise RunCommandError(f"run_command: {flag} takes true or false, not {text!r}")


def _read_env_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise RunCommandError(f"run_command: --env-file {path}: {e.strerror}") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _env_entry(value: str) -> list[str]:
    if "=" in value:
        return [value]
    # docker run -e NAME copies NAME from the caller's environment, if it is set.
    return [f"{value}={os.environ[value]}"] if value in os.environ else []


def _apply(spec: RunSpec, key: str, flag: str, value: str) -> None:
    if key == "network":
        spec.network = value
    elif key == "env":
        spec.env += _env_entry(value)
    elif key == "env_file":
        for entry in _read_env_file(value):
            spec.env += _env_entry(entry)
    elif key == "volume":
        parts = value.split(":")
        if len(parts) == 1:
            spec.anonymous_volumes.append(value)
        elif len(parts) in (2, 3) and all(parts[:2]):
            spec.binds.append(value)
        else:
            raise RunCommandError(f"run_command: invalid volume specification {value!r}")
    elif key == "entrypoint":
        spec.entrypoint = [value] if value else []
    elif key == "tmpfs":
        path, _, opts = value.partition(":")
        spec.tmpfs[path] = opts
    elif key == "label":
        k, _, v = value.partition("=")
        spec.labels[k] = v
    elif key == "add_host":
        spec.extra_hosts.append(value)
    elif key in ("cap_add", "cap_drop", "security_opt", "dns"):
        getattr(spec, key).append(value)
    elif key == "device":
        spec.devices.append(value)
    elif key in ("memory", "shm_size"):
        ram_in_bytes(flag, value)  # checked now; converted when the container is made
        setattr(spec, key, value)
    else:
        setattr(spec, key, value)


def parse_run_command(args: list[str]) -> RunSpec:
    """Parse ``[flags...] IMAGE [COMMAND...]``; raises ``RunCommandError``."""
    spec = RunSpec()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            i -= 1
            break
        name, eq, inline = arg.partition("=")
        if name in _BOOL_FLAGS:
            setattr(spec, _BOOL_FLAGS[name], _parse_bool(name, inline) if eq else True)
            continue
        if name in _VALUE_FLAGS:
            if eq:
                value = inline
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise RunCommandError(f"run_command: flag {name} needs a value")
            _apply(spec, _VALUE_FLAGS[name], name, value)
            continue
        if not arg.startswith("--") and len(arg) > 2 and not eq:
            # Grouped short flags, e.g. -dit; a value flag may end the group (-ite K=V).
            letters = arg[1:]
            for n, letter in enumerate(letters):
                short = "-" + letter
                if short in _BOOL_FLAGS:
                    setattr(spec, _BOOL_FLAGS[short], True)
                elif short in _VALUE_FLAGS and n == len(letters) - 1 and i < len(args):
                    _apply(spec, _VALUE_FLAGS[short], short, args[i])
                    i += 1
                else:
                    raise _unsupported(arg)
            continue
        raise _unsupported(name)
    rest = args[i:]
    if not rest:
        raise RunCommandError(
            "run_command: no image given; put {{.Image}} after the flags, e.g. "
            '["-d", "-i", "-t", "--entrypoint=/bin/sh", "--", "{{.Image}}"]'
        )
    spec.image, spec.command = rest[0], list(rest[1:])
    return spec


def _unsupported(flag: str) -> RunCommandError:
    return RunCommandError(
        f"run_command: the docker run flag {flag} cannot be mapped onto the Docker Engine "
        f"API by imagesmith; remove it or use a supported flag ({', '.join(SUPPORTED)})"
    )


def builder_flags(
    *,
    devices: list[str],
    cap_add: list[str],
    cap_drop: list[str],
    privileged: bool,
    tmpfs: list[str],
    volumes: dict[str, str],
) -> list[str]:
    """The flags Packer puts before ``run_command`` for the builder's own options."""
    flags: list[str] = []
    for d in devices:
        flags += ["--device", d]
    for c in cap_add:
        flags += ["--cap-add", c]
    for c in cap_drop:
        flags += ["--cap-drop", c]
    if privileged:
        flags.append("--privileged")
    for t in tmpfs:
        flags += ["--tmpfs", t]
    for host, guest in sorted(volumes.items()):
        flags += ["-v", f"{host}:{guest}"]
    return flags


_RAM = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)


def ram_in_bytes(flag: str, text: str) -> int:
    """``512m``, ``1g``, ``1.5GiB``... as bytes, with docker's binary units."""
    found = _RAM.match(text.strip())
    if not found:
        raise RunCommandError(f"run_command: {flag} takes a size such as 512m or 2g, not {text!r}")
    unit = (found.group(2) or "").lower()
    return int(float(found.group(1)) * 1024 ** (" kmgtp".index(unit) if unit else 0))


def _device(text: str) -> dict[str, str]:
    """``--device HOST[:CONTAINER[:PERMISSIONS]]`` as the API's device mapping."""
    parts = text.split(":")
    host = parts[0]
    inside = parts[1] if len(parts) > 1 and parts[1] else host
    perms = parts[2] if len(parts) > 2 and parts[2] else "rwm"
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": perms}


def create_body(spec: RunSpec, argv: list[str], network: str | None) -> dict[str, Any]:
    """The container-create request for ``spec``, the process ``argv`` and ``network``
    (what ``docker run`` sends for the same flags)."""
    host: dict[str, Any] = {
        "NetworkMode": network or "default",
        "Privileged": spec.privileged,
        "Binds": spec.binds or None,
        "CapAdd": spec.cap_add or None,
        "CapDrop": spec.cap_drop or None,
        "Tmpfs": spec.tmpfs or None,
        "Devices": [_device(d) for d in spec.devices] or None,
        "ExtraHosts": spec.extra_hosts or None,
        "SecurityOpt": spec.security_opt or None,
        "Dns": spec.dns or None,
        "IpcMode": spec.ipc or "",
        "PidMode": spec.pid or "",
        "ReadonlyRootfs": spec.read_only,
    }
    if spec.init:
        host["Init"] = True
    if spec.shm_size:
        host["ShmSize"] = ram_in_bytes("--shm-size", spec.shm_size)
    if spec.memory:
        host["Memory"] = ram_in_bytes("--memory", spec.memory)
    body: dict[str, Any] = {
        "Image": spec.image,
        "Entrypoint": argv,
        "Cmd": None,
        "OpenStdin": spec.interactive,
        "StdinOnce": False,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": spec.tty,
        "Env": spec.env or None,
        "Labels": spec.labels or None,
        "Volumes": {v: {} for v in spec.anonymous_volumes} or None,
        "HostConfig": {k: v for k, v in host.items() if v is not None},
    }
    for key, value in (("User", spec.user), ("WorkingDir", spec.workdir),
                       ("Hostname", spec.hostname)):  # fmt: skip
        if value is not None:
            body[key] = value
    return {k: v for k, v in body.items() if v is not None}

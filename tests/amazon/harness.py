"""What the amazon tests share: the seed template, running builds, reading moto's state.

Builds run as real ``imagesmith`` (or ``packer``) processes, in their own process
group, against the fault proxy in front of moto and the OpenSSH fixture that accepts
the build's temporary key.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixtures.moto import ACCOUNT_ID, MotoServer

SEED_SCRIPTS = {
    "scripts/storage.sh": 'echo "### Configuring Docker Volume Storage ###"\necho storage-ok\n',
    "scripts/time.sh": 'echo "timezone is $TIMEZONE"\n',
    "scripts/cleanup.sh": "true\n",
    "files/firstrun.sh": "#!/bin/sh\necho first run\n",
}


def seed_template(*, ssh_port: int, remote_dir: str) -> dict[str, Any]:
    """The issue's template, pointed at the fixtures (user, port, a remote directory)
    and at the emulator through ``custom_endpoint_ec2`` (which packer 1.6.6 needs)."""
    return {
        "variables": {
            "aws_access_key_id": "{{env `AWS_ACCESS_KEY_ID`}}",
            "aws_secret_access_key": "{{env `AWS_SECRET_ACCESS_KEY`}}",
            "aws_session_token": "{{env `AWS_SESSION_TOKEN`}}",
            "endpoint": "{{env `AWS_ENDPOINT_URL`}}",
            "timezone": "US/Eastern",
        },
        "builders": [
            {
                "type": "amazon-ebs",
                "access_key": "{{user `aws_access_key_id`}}",
                "secret_key": "{{user `aws_secret_access_key`}}",
                "token": "{{user `aws_session_token`}}",
                "custom_endpoint_ec2": "{{user `endpoint`}}",
                "region": "us-east-1",
                "source_ami": "ami-760aaa0f",
                "instance_type": "t2.micro",
                "ssh_username": "istest",
                "ssh_host": "127.0.0.1",
                "ssh_port": ssh_port,
                "associate_public_ip_address": "true",
                "ami_name": "docker-in-aws-ecs {{timestamp}}",
                "launch_block_device_mappings": [
                    {
                        "device_name": "/dev/xvdcy",
                        "volume_size": 20,
                        "volume_type": "gp2",
                        "delete_on_termination": True,
                    }
                ],
                "tags": {
                    "Name": "Docker in AWS ECS Base Image 2017.09.h",
                    "SourceAMI": "{{ .SourceAMI }}",
                    "DockerVersion": "17.09.1-ce",
                    "ECSAgentVersion": "1.17.0-2",
                },
            }
        ],
        "provisioners": [
            {"type": "shell", "script": "scripts/storage.sh"},
            {
                "type": "shell",
                "script": "scripts/time.sh",
                "environment_vars": ["TIMEZONE={{user `timezone`}}"],
            },
            {"type": "shell", "inline": ["echo inline-1 $USER", "echo inline-2"]},
            {"type": "shell", "script": "scripts/cleanup.sh"},
            {
                "type": "file",
                "source": "files/firstrun.sh",
                "destination": f"{remote_dir}/firstrun.sh",
            },
        ],
    }


@dataclass
class Project:
    """A template directory: the template, its scripts, and where builds run."""

    root: Path
    template: dict[str, Any]

    @property
    def builder(self) -> dict[str, Any]:
        return dict(self.template["builders"][0])

    def write(self, template: dict[str, Any] | None = None, name: str = "packer.json") -> Path:
        path = self.root / name
        path.write_text(json.dumps(template or self.template, indent=2))
        return path

    def variant(self, **builder: Any) -> dict[str, Any]:
        """The template with builder keys changed (a value of None removes the key)."""
        template = copy.deepcopy(self.template)
        b = template["builders"][0]
        for key, value in builder.items():
            if value is None:
                b.pop(key, None)
            else:
                b[key] = value
        return template


def make_project(root: Path, *, ssh_port: int, remote_dir: str) -> Project:
    for rel, text in SEED_SCRIPTS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Project(root, seed_template(ssh_port=ssh_port, remote_dir=remote_dir))


# -- running builds --------------------------------------------------------------------------


@dataclass
class Run:
    rc: int
    out: str
    elapsed: float

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def imagesmith(*args: str) -> list[str]:
    return [sys.executable, "-m", "imagesmith", *args]


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> Run:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)


@dataclass
class Live:
    """A build running in the background, whose output is read as it comes."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _seen: threading.Condition = field(default_factory=threading.Condition)
    _reading: bool = True

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        """Block until an output line matches ``pattern`` (a regex); returns it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for line in self.lines:
                    if regex.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or not self._reading:
                    raise AssertionError(
                        f"no line matching {pattern!r} in:\n" + "\n".join(self.lines)
                    )
                self._seen.wait(min(left, 0.1))

    def signal_group(self, sig: signal.Signals) -> None:
        os.killpg(self.proc.pid, sig)

    def finish(self, timeout: float = 120) -> Run:
        started = time.monotonic()
        rc = self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + 5
        while self._reading and time.monotonic() < deadline:
            time.sleep(0.01)
        return Run(rc, "\n".join(self.lines) + "\n", time.monotonic() - started)


def start(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> Live:
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    live = Live(proc)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with live._seen:
                live.lines.append(line.rstrip("\n"))
                live._seen.notify_all()
        with live._seen:
            live._reading = False
            live._seen.notify_all()

    threading.Thread(target=pump, daemon=True).start()
    return live


# -- normalising output -------------------------------------------------------------------------

_UNITS = r"(?:year|week|day|hour|minute|second|millisecond|microsecond)s?"
_NORMALISE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"\d+ {_UNITS}(?: \d+ {_UNITS})?"), "<duration>"),
    (re.compile(r"packer_[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"), "packer_<uuid>"),
    (re.compile(r"packer-[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"), "packer-<uuid>"),
    (re.compile(r"\bi-[0-9a-f]{8,17}\b"), "i-<id>"),
    (re.compile(r"\bami-(?!760aaa0f)[0-9a-f]{8,17}\b"), "ami-<id>"),
    (re.compile(r"\bsnap-[0-9a-f]{8,17}\b"), "snap-<id>"),
    (re.compile(r"\bvol-[0-9a-f]{8,17}\b"), "vol-<id>"),
    (re.compile(r"\bsg-[0-9a-f]{8,17}\b"), "sg-<id>"),
    (re.compile(r"/tmp/(?:[\w.-]+/)*packer-shell\d+"), "<script>"),
    (re.compile(r"docker-in-aws-ecs \d{10}"), "docker-in-aws-ecs <ts>"),
]
TAG_LINE = re.compile(r"^(?:\d+,,ui,message,)?    \S+: Adding tag: ")


def normalise(text: str) -> list[str]:
    """Output lines with ids, durations and temp names replaced; the "Adding tag" lines
    of each block sorted (Packer prints them in Go's random map order)."""
    for pattern, replacement in _NORMALISE:
        text = pattern.sub(replacement, text)
    out: list[str] = []
    block: list[str] = []
    for line in text.splitlines():
        if TAG_LINE.match(line):
            block.append(line)
            continue
        out.extend(sorted(block, key=_after_timestamp))
        block = []
        out.append(line)
    out.extend(sorted(block, key=_after_timestamp))
    return out


def _after_timestamp(line: str) -> str:
    return line.split(",,ui,message,", 1)[-1]


# -- the emulator's state ---------------------------------------------------------------------


@dataclass
class Leftovers:
    instances: list[str]
    key_pairs: list[str]
    security_groups: list[str]
    images: list[str]
    snapshots: list[str]
    volumes: list[str]
    launch_templates: list[str]
    roles: list[str]
    instance_profiles: list[str]

    def empty(self) -> bool:
        return not any(vars(self).values())


def leftovers(
    moto: MotoServer,
    regions: tuple[str, ...] = ("us-east-1",),
    keep_images: tuple[str, ...] = (),
    baseline: Leftovers | None = None,
) -> Leftovers:
    """Everything a build may create that still exists: AMIs in ``keep_images`` and
    their snapshots excepted, and what ``baseline`` (the emulator before the build)
    already had."""
    found = Leftovers([], [], [], [], [], [], [], [], [])
    for region in regions:
        ec2 = moto.ec2(region)
        for r in ec2.describe_instances()["Reservations"]:
            for i in r["Instances"]:
                if i["State"]["Name"] != "terminated":
                    found.instances.append(i["InstanceId"])
        found.key_pairs += [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
        found.security_groups += [
            g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]
            if g["GroupName"] != "default"
        ]  # fmt: skip
        kept_snapshots: set[str] = set()
        for image in ec2.describe_images(Owners=["self"])["Images"]:
            if image["ImageId"] in keep_images:
                kept_snapshots |= {
                    m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m
                }
            else:
                found.images.append(image["ImageId"])
        found.snapshots += [
            s["SnapshotId"]
            for s in ec2.describe_snapshots(OwnerIds=[ACCOUNT_ID])["Snapshots"]
            if s["SnapshotId"] not in kept_snapshots
        ]
        found.volumes += [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]]
        found.launch_templates += [
            t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]
        ]
    iam = moto.client("iam")
    found.roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    found.instance_profiles = [
        p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
    ]
    if baseline is not None:
        for name, values in vars(found).items():
            before = set(getattr(baseline, name))
            setattr(found, name, [v for v in values if v not in before])
    return found


def forget_images(moto: MotoServer, prefix: str) -> None:
    """Deregister the emulator's AMIs whose name starts with ``prefix``: tests that use
    the reference's name (``docker-in-aws-ecs {{timestamp}}``, one-second resolution)
    must not meet an AMI an earlier test made in the same second."""
    ec2 = moto.ec2()
    for image in ec2.describe_images(Owners=["self"])["Images"]:
        if image["Name"].startswith(prefix):
            ec2.deregister_image(ImageId=image["ImageId"])


def own_images(moto: MotoServer, region: str = "us-east-1") -> list[dict[str, Any]]:
    return list(moto.ec2(region).describe_images(Owners=["self"])["Images"])


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)

"""Whole templates rehearsed: the real amazon-ebs builder against the emulator, with
containers as instances. Checks the emulator's state, the committed images, and that
nothing the rehearsal started remains."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import redirect_stdout, suppress
from pathlib import Path
from typing import Any

import boto3
import pytest

from conftest import rehearsal_containers, rehearsal_loops
from imagesmith.rehearse import seam
from imagesmith.rehearse.images import AMAZON_STANDIN_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.aws, pytest.mark.usefixtures("base_images")]

TEMPLATES = Path(__file__).parent / "templates"


def _ec2(endpoint: str, region: str) -> Any:
    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )


def _plan(template: Path) -> Any:
    from imagesmith.template.planner import load_plan

    plan = load_plan(
        str(template),
        vars=[],
        var_files=[],
        only=[],
        except_=[],
        debug=False,
        force=False,
        on_error="cleanup",
        run_uuid=str(uuid.uuid4()),
    )
    assert not plan.has_errors, plan.diagnostics
    return plan


def _rehearse(template: Path, check: Any, image: str | None = None) -> tuple[int, str, Any]:
    """Rehearse ``template``; ``check(rehearsal)`` runs before the rehearsal closes."""
    from imagesmith.engine.runner import run_plan
    from imagesmith.rehearse.cli import rehearsing
    from imagesmith.ui.console import Console

    out = io.StringIO()
    console = Console(color=False, stream=out)

    async def scenario() -> tuple[int, Any]:
        plan = _plan(template)
        async with rehearsing(plan, image=image, say=console.say) as rehearsal:
            result = await run_plan(plan, console, handle_signals=False)
            check(rehearsal)
        return result.exit_code, rehearsal

    cwd = os.getcwd()
    os.chdir(template.parent)
    try:
        with redirect_stdout(out):
            code, rehearsal = asyncio.run(scenario())
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), rehearsal


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    return tmp_path / "templates"


@pytest.fixture
def rehearsal_images(docker_client: Any) -> Iterator[list[str]]:
    """Collects the tags a test's rehearsal committed, and removes them afterwards."""
    made: list[str] = []
    yield made
    for tag in made:
        with suppress(Exception):  # a test that failed early may have made fewer
            docker_client.images.remove(tag)


def _assert_nothing_left(docker_client: Any, rehearsal: Any) -> None:
    assert rehearsal_containers(docker_client) == []
    assert rehearsal_loops() == []
    assert not rehearsal.emulator.running
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", rehearsal.emulator.port)) != 0
    assert seam.active() is None
    assert os.environ.get("AWS_ENDPOINT_URL") != rehearsal.endpoint_url


def test_seed_template_rehearses_end_to_end(
    docker_client: Any, workdir: Path, rehearsal_images: list[str]
) -> None:
    seen: dict[str, Any] = {}

    def check(rehearsal: Any) -> None:
        ec2 = _ec2(rehearsal.endpoint_url, "us-east-1")
        seen["images"] = ec2.describe_images(Owners=["self"])["Images"]
        seen["snapshots"] = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        seen["keys"] = ec2.describe_key_pairs()["KeyPairs"]
        groups = ec2.describe_security_groups()["SecurityGroups"]
        seen["groups"] = [g["GroupName"] for g in groups]
        reservations = ec2.describe_instances()["Reservations"]
        seen["states"] = [i["State"]["Name"] for r in reservations for i in r["Instances"]]

    code, out, rehearsal = _rehearse(
        workdir / "seed" / "template.json", check, image=AMAZON_STANDIN_IMAGE
    )
    for tags in rehearsal.machines.committed.values():
        rehearsal_images.extend(tags)
    assert code == 0, out

    # What a real build leaves on EC2: one AMI with its tags, tagged snapshots,
    # no temporary key pair or security group, the instance terminated.
    (image,) = seen["images"]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert tags["SourceAMI"] == "ami-5e414e24"
    assert tags["Name"] == "Docker in AWS ECS Base Image 2017.09.h"
    assert image["Name"].startswith("docker-in-aws-ecs ")
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    tagged = {
        s["SnapshotId"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        for s in seen["snapshots"]
    }
    assert snapshot_ids and all(tagged[s]["SourceAMI"] == "ami-5e414e24" for s in snapshot_ids)
    assert seen["keys"] == []
    assert [g for g in seen["groups"] if g.startswith("packer_")] == []
    assert seen["states"] == ["terminated"]

    # The console said once what is not faithful, then ran as Packer does.
    assert out.count("==> Rehearsal: amazon-ebs: instance_type t2.micro is not rehearsed") == 1
    assert "==> amazon-ebs: Provisioning with shell script: scripts/storage.sh" in out
    assert f"us-east-1: {image['ImageId']}" in out

    # The committed image holds what the provisioners did.
    latest = f"imagesmith-rehearsal/{image['ImageId']}:latest"
    script = "cat /home/ec2-user/firstrun.sh; readlink /etc/localtime; grep xvdcy /etc/fstab"
    shown = docker_client.containers.run(
        latest, ["sh", "-c", script], network_mode="none", remove=True
    ).decode()
    assert shown.splitlines() == [
        "#!/bin/sh",
        'echo "first run"',
        "/usr/share/zoneinfo/US/Eastern",
        "/dev/xvdcy none swap sw 0 0",
    ]
    manifest = json.loads((workdir / "seed" / "manifest.json").read_text())
    assert manifest["builds"][0]["artifact_id"] == f"us-east-1:{image['ImageId']}"
    _assert_nothing_left(docker_client, rehearsal)


def test_two_builders_with_filters_and_region_copies(
    docker_client: Any, workdir: Path, rehearsal_images: list[str]
) -> None:
    seen: dict[str, Any] = {}

    def check(rehearsal: Any) -> None:
        for region in ("us-east-1", "us-west-2", "eu-west-1"):
            ec2 = _ec2(rehearsal.endpoint_url, region)
            seen[region] = ec2.describe_images(Owners=["self"])["Images"]

    code, out, rehearsal = _rehearse(workdir / "two-builders" / "template.json", check)
    for tags in rehearsal.machines.committed.values():
        rehearsal_images.extend(tags)
    assert code == 0, out

    al2, debian = rehearsal.sources
    assert (al2.image, debian.image) == (
        AMAZON_STANDIN_IMAGE,
        "imagesmith/rehearse-base:debian-bookworm",
    )
    (east,) = seen["us-east-1"]
    (west,) = seen["us-west-2"]
    (eu,) = seen["eu-west-1"]
    east_tags = {t["Key"]: t["Value"] for t in east["Tags"]}
    assert east_tags["Base"] == al2.ami["name"]
    assert east_tags["Base"].startswith("amzn2-ami-hvm-") and "*" not in east_tags["Base"]
    assert west["Name"] == east["Name"]
    eu_tags = {t["Key"]: t["Value"] for t in eu["Tags"]}
    assert eu_tags["SourceAMI"] == debian.ami["ami_id"]

    # One local image per build region AMI; a copy has no image of its own.
    assert set(rehearsal.machines.committed) == {east["ImageId"], eu["ImageId"]}
    shown = docker_client.containers.run(
        f"imagesmith-rehearsal/{eu['ImageId']}:latest",
        ["cat", "/etc/rehearsal-build"],
        network_mode="none",
        remove=True,
    ).decode()
    assert shown == f"built by debian from {debian.ami['ami_id']}\n"
    assert "the copies to us-west-2 exist only in the emulator" in out
    _assert_nothing_left(docker_client, rehearsal)


def test_failed_provisioner_leaves_no_ami_image_or_container(
    docker_client: Any, workdir: Path, rehearsal_images: list[str]
) -> None:
    template = json.loads((workdir / "seed" / "template.json").read_text())
    template["provisioners"].insert(2, {"type": "shell", "inline": ["echo broken; exit 3"]})
    path = workdir / "seed" / "failing.json"
    path.write_text(json.dumps(template))
    seen: dict[str, Any] = {}

    def check(rehearsal: Any) -> None:
        seen["images"] = _ec2(rehearsal.endpoint_url, "us-east-1").describe_images(Owners=["self"])[
            "Images"
        ]

    code, out, rehearsal = _rehearse(path, check, image=AMAZON_STANDIN_IMAGE)
    for tags in rehearsal.machines.committed.values():
        rehearsal_images.extend(tags)
    assert code == 1
    assert "Script exited with non-zero exit status: 3" in out
    assert seen["images"] == []
    assert rehearsal.machines.committed == {}
    _assert_nothing_left(docker_client, rehearsal)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_rehearsal_removes_everything(
    docker_client: Any, workdir: Path, sig: signal.Signals
) -> None:
    template = json.loads((workdir / "seed" / "template.json").read_text())
    template["provisioners"].insert(1, {"type": "shell", "inline": ["echo waiting; sleep 120"]})
    path = workdir / "seed" / "slow.json"
    path.write_text(json.dumps(template))
    driver = Path(__file__).parent / "rehearse_driver.py"
    proc = subprocess.Popen(
        [sys.executable, str(driver), str(path), AMAZON_STANDIN_IMAGE],
        cwd=path.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "amazon-ebs: waiting" in line:
                break
        assert rehearsal_containers(docker_client), "".join(lines)
        endpoint = next(ln for ln in lines if "EC2 is emulated at" in ln)
        port = int(endpoint.split("127.0.0.1:")[1].split()[0])
        os.killpg(proc.pid, sig)  # as a terminal's Ctrl-C or a CI runner would
        rest, _ = proc.communicate(timeout=120)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines)
    assert proc.returncode == 1, out
    assert "Terminating the source AWS instance..." in out
    assert rehearsal_containers(docker_client) == []
    assert rehearsal_loops() == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.1)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0

"""Rehearsal benchmark: the seed template rehearsed end to end, and where the time goes.

    python bench/bench_rehearse.py          (or bench/run rehearse; needs root, Docker)

1. ``imagesmith build -rehearse`` of the seed template (tests/rehearse/templates/seed,
   the ECS AMI template of the amazon-ebs issue): whole process wall time, from start
   to exit, with the base images already built. Goal: well under a minute.
   The phases are read from the time each output line appears.
2. The peer, packer 1.6.6, on the same template and the same kind of target: the same
   EC2 emulator and a stand-in container with the same image, both started before the
   clock starts (Packer cannot start them), reached with ``ssh_host``/``ssh_port`` and a
   key pair imported into the emulator. The ratio is imagesmith's whole rehearsal over
   Packer's build alone.

Figures are medians of ROUNDS runs taken in turn.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PACKER = shutil.which("packer")
SEED = ROOT / "tests" / "rehearse" / "templates" / "seed"
CACHE = Path("/var/cache/imagesmith-tests")

# (phase name, output line that ends it); the first phase starts with the process.
PHASES = [
    ("start, plan, emulator", "==> Rehearsal: no AWS account"),
    ("AWS setup to launch", "Waiting for instance"),
    ("instance container + SSH", "Connected to SSH!"),
    ("provisioners", "Stopping the source instance"),
    ("AMI, commit, tags", "Terminating the source AWS instance"),
    ("cleanup, manifest", "Builds finished"),
    ("close: containers, emulator", None),
]


def rehearse_command(template: Path, image: str) -> list[str]:
    probe = subprocess.run(
        [sys.executable, "-m", "imagesmith", "build", "-rehearse-image=x"],
        capture_output=True,
        text=True,
    )
    if "not defined: -rehearse" in probe.stdout + probe.stderr:
        # The build command is not wired yet: the test driver does what it will do.
        driver = ROOT / "tests" / "rehearse" / "rehearse_driver.py"
        return [sys.executable, str(driver), str(template), image]
    return [
        sys.executable,
        "-m",
        "imagesmith",
        "build",
        "-color=false",
        f"-rehearse-image={image}",
        str(template),
    ]


def timed_lines(cmd: list[str], cwd: Path) -> tuple[float, list[tuple[float, str]]]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines = [(time.perf_counter() - start, line.rstrip("\n")) for line in proc.stdout]
    proc.wait()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit("benchmark command failed:\n" + "\n".join(line for _, line in lines))
    return elapsed, lines


def phases(elapsed: float, lines: list[tuple[float, str]]) -> dict[str, float]:
    found: dict[str, float] = {}
    last = 0.0
    for name, marker in PHASES:
        end = elapsed
        if marker is not None:
            end = next((t for t, line in lines if marker in line), last)
        found[name] = end - last
        last = end
    return found


def remove_rehearsal_images() -> None:
    import docker

    client = docker.from_env()
    for image in client.images.list(name="imagesmith-rehearsal/*"):
        for tag in image.tags:
            client.images.remove(tag)


async def packer_target(work: Path, image: str) -> tuple[Any, Any, dict[str, Any]]:
    """The emulator and a running stand-in, and the template keys that point Packer there."""
    import asyncssh
    import boto3

    from imagesmith.rehearse.emulator import Emulator
    from imagesmith.rehearse.images import SourceSpec, emulated_ami
    from imagesmith.rehearse.machine import ContainerMachines

    emulator = await Emulator.start(
        [emulated_ami(SourceSpec("amazon-ebs", source_ami="ami-5e414e24"))],
        regions=["us-east-1"],
    )
    key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    (work / "key.pem").write_bytes(key.export_private_key("pkcs1-pem"))
    (work / "key.pem").chmod(0o600)
    public = key.export_public_key().decode()
    ec2 = boto3.client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=emulator.endpoint_url,
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    ec2.import_key_pair(KeyName="bench", PublicKeyMaterial=public.encode())

    async def image_for(instance_id: str) -> str:
        return image

    machines = ContainerMachines(run_id="bench-packer", image_for=image_for)
    host, port = await machines.instance_launched(
        instance_id="i-bench",
        ssh_username="ec2-user",
        public_key=public,
        block_devices=[{"DeviceName": "/dev/xvdcy", "Ebs": {"VolumeSize": 20}}],
    )
    keys = {
        "custom_endpoint_ec2": emulator.endpoint_url,
        "access_key": "k",
        "secret_key": "s",
        "token": "",
        "ssh_host": host,
        "ssh_port": port,
        "ssh_keypair_name": "bench",
        "ssh_private_key_file": str(work / "key.pem"),
    }
    return emulator, machines, keys


def main() -> None:
    from imagesmith.rehearse.baseimage import ensure_base_images
    from imagesmith.rehearse.images import AMAZON_STANDIN_IMAGE

    ensure_base_images(CACHE, log=lambda msg: None)
    work = Path(tempfile.mkdtemp(prefix="bench-rehearse-"))
    try:
        shutil.copytree(SEED, work / "seed")
        template = work / "seed" / "template.json"
        cmd = rehearse_command(template, AMAZON_STANDIN_IMAGE)

        totals: list[float] = []
        split: dict[str, list[float]] = {name: [] for name, _ in PHASES}
        packer_times: list[float] = []
        loop = asyncio.new_event_loop()
        target = None
        if PACKER:
            target = loop.run_until_complete(packer_target(work, AMAZON_STANDIN_IMAGE))
            packer_template = json.loads(template.read_text())
            packer_template["builders"][0].update(target[2])
            (work / "seed" / "packer.json").write_text(json.dumps(packer_template))
        try:
            for _ in range(ROUNDS):
                elapsed, lines = timed_lines(cmd, work / "seed")
                totals.append(elapsed)
                for name, value in phases(elapsed, lines).items():
                    split[name].append(value)
                remove_rehearsal_images()
                if PACKER:
                    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
                    start = time.perf_counter()
                    done = subprocess.run(
                        [PACKER, "build", "-color=false", "packer.json"],
                        cwd=work / "seed",
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                    packer_times.append(time.perf_counter() - start)
                    if done.returncode != 0:
                        raise SystemExit("packer failed:\n" + done.stdout + done.stderr)
        finally:
            if target is not None:
                loop.run_until_complete(target[1].close())
                loop.run_until_complete(target[0].stop())
            loop.close()

        total = statistics.median(totals)
        print(f"rehearsal of the seed template ({ROUNDS} rounds, median): {total:.2f} s")
        for name, values in split.items():
            print(f"  {name:<30} {statistics.median(values):6.2f} s")
        print(f"  goal: well under 60 s -> {'ok' if total < 30 else 'MISSED'}")
        if PACKER:
            peer = statistics.median(packer_times)
            print(f"packer 1.6.6, same template, emulator and container already up: {peer:.2f} s")
            print(f"  ratio imagesmith rehearsal (all included) / packer build: {total / peer:.2f}")
        else:
            print("packer not installed: no peer figure")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

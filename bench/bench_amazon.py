"""amazon-ebs builds against moto + OpenSSH, imagesmith vs packer 1.6.6, wall time.

Two workloads, each run by both tools alternately (so they share any machine noise),
medians compared:

- ``seed``: the seed template of the amazon-ebs issue (4 shell provisioners, a file
  upload, tags with ``{{ .SourceAMI }}``, an extra EBS volume). Goal: ratio <= 1.0.
- ``parallel16``: the same builder 16 times in one template, built in parallel.
  Goal: ratio <= 0.5.

Every API call goes through a counting proxy in front of moto, so the number of calls
each tool makes per build is printed as well.

    python bench/bench_amazon.py [-n RUNS] [--only seed|parallel16]

Needs root (the OpenSSH fixture adds a test user), moto's server and packer.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from amazon.harness import SEED_SCRIPTS, seed_template  # noqa: E402
from fixtures.moto import FaultProxy, MotoServer  # noqa: E402
from fixtures.sshd import SshServer, ensure_user  # noqa: E402

PARALLEL = 16


def write_project(directory: Path, template: dict[str, Any]) -> Path:
    for rel, text in SEED_SCRIPTS.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    path = directory / "packer.json"
    path.write_text(json.dumps(template, indent=2))
    return path


def templates(ssh_port: int, remote: str) -> dict[str, dict[str, Any]]:
    seed = seed_template(ssh_port=ssh_port, remote_dir=remote)
    many = copy.deepcopy(seed)
    one = many["builders"][0]
    one["ami_name"] = "bench-{{build_name}} {{timestamp}}"
    many["builders"] = [{**one, "name": f"b{i:02d}"} for i in range(1, PARALLEL + 1)]
    # All builds share one SSH host. Packer draws its remote script names from 0-9998,
    # so two of 16 builds often draw the same one and remove each other's script (a
    # failed run, not a slow one): each build gets its own name, for both tools.
    for provisioner in many["provisioners"]:
        if provisioner["type"] == "shell":
            provisioner["remote_file"] = "script-{{build_name}}.sh"
    return {"seed": seed, "parallel16": many}


def timed(
    cmd: list[str], cwd: Path, env: dict[str, str], proxy: FaultProxy
) -> tuple[float, Counter[str]]:
    proxy.clear()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed (rc {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return took, Counter(proxy.actions())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=7)
    parser.add_argument("--only", choices=["seed", "parallel16"])
    args = parser.parse_args()

    packer = shutil.which("packer")
    if packer is None:
        sys.exit("packer is not installed; the benchmark compares against it")
    if os.geteuid() != 0:
        sys.exit("run as root: the OpenSSH server fixture needs a local test user")

    user = ensure_user()
    sshd = SshServer(user, accept_any_key=True, password_auth=False).start()
    moto = MotoServer().start()
    proxy = FaultProxy(moto.endpoint).start()
    workdir = Path(tempfile.mkdtemp(prefix="imagesmith-bench-amazon-"))
    remote = Path(tempfile.mkdtemp(prefix="imagesmith-bench-remote-"))
    os.chown(remote, user.uid, user.gid)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PACKER_"))}
        # Python caches compiled modules unless told not to; measure it as users run it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            CHECKPOINT_DISABLE="1",
            AWS_ACCESS_KEY_ID="AKIDBENCH",
            AWS_SECRET_ACCESS_KEY="bench-secret",
            AWS_ENDPOINT_URL=proxy.endpoint,
            AWS_EC2_METADATA_DISABLED="true",
            IMAGESMITH_STATE_DIR=str(workdir / "state"),
        )
        # moto builds a region's backend on its first call: do that before timing.
        moto.ec2("us-east-1").describe_images(ImageIds=["ami-760aaa0f"])

        print(f"amazon-ebs against moto + OpenSSH, {args.runs} runs each, median wall time")
        for name, template in templates(sshd.port, str(remote)).items():
            if args.only and name != args.only:
                continue
            path = write_project(workdir / name, template)
            commands = {
                "packer": [packer, "build", "-color=false", str(path)],
                "imagesmith": [
                    *(sys.executable, "-m", "imagesmith", "build", "-color=false"),
                    str(path),
                ],
            }
            times: dict[str, list[float]] = {tool: [] for tool in commands}
            calls: dict[str, Counter[str]] = {}
            for _ in range(args.runs):
                for tool, cmd in commands.items():
                    took, counted = timed(cmd, path.parent, env, proxy)
                    times[tool].append(took)
                    calls[tool] = counted
                    # a new second, so that {{timestamp}} names never clash
                    time.sleep(max(0.0, 1.05 - took))
            med = {tool: statistics.median(t) for tool, t in times.items()}
            builds = PARALLEL if name == "parallel16" else 1
            goal = 0.5 if name == "parallel16" else 1.0
            print(f"\n{name}:")
            for tool in commands:
                n = sum(calls[tool].values()) / builds
                print(
                    f"  {tool:<11} {med[tool]:7.3f} s   (min {min(times[tool]):.3f}, "
                    f"max {max(times[tool]):.3f})   API calls per build: {n:g}"
                )
            ratio = med["imagesmith"] / med["packer"]
            print(f"  ratio imagesmith/packer: {ratio:.2f} (goal <= {goal})")
            for tool in commands:
                per_build = {a: c / builds for a, c in sorted(calls[tool].items())}
                detail = ", ".join(f"{a} {c:g}" for a, c in per_build.items())
                print(f"  {tool} calls per build: {detail}")
    finally:
        proxy.stop()
        moto.stop()
        sshd.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(remote, ignore_errors=True)


if __name__ == "__main__":
    main()

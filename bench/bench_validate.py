"""Wall time of ``imagesmith validate`` against ``packer validate`` on the same template.

    python bench/bench_validate.py [-n RUNS] [--template PATH]

The template is the ECS container-instance AMI template (amazon-ebs, four shell
provisioners, a file provisioner, a manifest post-processor). Runs alternate between
the two programs so that machine load affects both alike; the first run of each is a
warm-up and is not counted. Prints the median and best times and the ratio of the
medians; the goal is a ratio of at most 0.6.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL = 0.6


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and every process it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (rc {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-n", "--runs", type=int, default=20, help="timed runs of each (default 20)"
    )
    parser.add_argument("--template", type=Path, default=HERE / "templates" / "ecs-ami.json")
    args = parser.parse_args()

    packer = shutil.which("packer")
    if packer is None:
        sys.exit("packer is not installed: apt-get install packer")
    template = args.template.resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PACKER_", "IMAGESMITH_"))}
    env["CHECKPOINT_DISABLE"] = "1"
    commands = {
        "packer": [packer, "validate", template.name],
        "imagesmith": [sys.executable, "-m", "imagesmith", "validate", template.name],
    }

    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():
        timed(cmd, template.parent, env)  # warm-up: page cache, bytecode
    for i in range(args.runs):
        order = list(commands) if i % 2 == 0 else list(reversed(commands))
        for name in order:
            wall, cpu = timed(commands[name], template.parent, env)
            walls[name].append(wall)
            cpus[name].append(cpu)

    load = os.getloadavg()[0]
    print(f"validate {template.name}, {args.runs} runs each after a warm-up (load {load:.1f})")
    for name in commands:
        print(
            f"  {name:<11} wall median {statistics.median(walls[name]) * 1000:6.1f} ms"
            f"  best {min(walls[name]) * 1000:6.1f} ms"
            f"   cpu median {statistics.median(cpus[name]) * 1000:6.1f} ms"
        )
    ratio = statistics.median(walls["imagesmith"]) / statistics.median(walls["packer"])
    best = min(walls["imagesmith"]) / min(walls["packer"])
    verdict = "meets" if ratio <= GOAL else "misses"
    print(f"  ratio imagesmith/packer, wall medians: {ratio:.2f} ({verdict} the goal of {GOAL})")
    print(f"  ratio imagesmith/packer, best walls:   {best:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Whole `build` of a local template, imagesmith vs packer 1.6.6, wall time.

The template is the smallest complete build: the ``file`` builder, one ``shell-local``
provisioner and a ``manifest`` post-processor, so what is measured is start-up,
template loading, the engine and the console, not a cloud. Each tool runs the same
template N times (alternating, to share any machine noise); medians are compared.

    python bench/bench_build_local.py [-n RUNS]

Goal: ratio (imagesmith / packer) <= 1.0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from benchlib import require_packer, timed, tool_env

TEMPLATE = {
    "builders": [{"type": "file", "name": "f", "target": "{dir}/out.txt", "content": "hello"}],
    "provisioners": [{"type": "shell-local", "inline": ["echo provisioned"]}],
    "post-processors": [{"type": "manifest", "output": "{dir}/manifest.json"}],
}


def prepare(directory: Path) -> None:
    directory.mkdir(parents=True)
    text = json.dumps(TEMPLATE).replace("{dir}", str(directory))
    (directory / "t.json").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    args = parser.parse_args()

    packer = require_packer()
    env = tool_env()

    commands = {
        "imagesmith": [sys.executable, "-m", "imagesmith", "build", "-color=false", "t.json"],
        "packer": [packer, "build", "-color=false", "t.json"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        for i in range(args.runs + 1):
            for name, cmd in commands.items():
                work = Path(tmp) / f"{name}-{i}"
                prepare(work)
                took = timed(cmd, work, env)
                if i > 0:  # the first round warms file caches and is not counted
                    times[name].append(took)

    mine = statistics.median(times["imagesmith"])
    theirs = statistics.median(times["packer"])
    print(f"local file build + shell-local + manifest, median of {args.runs} runs")
    print(f"  imagesmith  {mine * 1000:8.1f} ms")
    print(f"  packer      {theirs * 1000:8.1f} ms")
    print(f"  ratio       {mine / theirs:8.2f}  (imagesmith / packer, goal <= 1.0)")


if __name__ == "__main__":
    main()

"""The compress and checksum post-processors on a large file, imagesmith vs packer 1.6.6.

One input file (random data interleaved with text, so compressors have work of both
kinds) is handed to each post-processor through ``artifice``; each tool runs the same
template, alternately, and the median wall times are compared per format.

    python bench/bench_compress.py [-n RUNS] [--size MIB] [--formats tar.gz,gz,...]

Goal: ratio (imagesmith / packer) <= 1.0 for every format.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchlib import require_packer, timed, tool_env

FORMATS = ["tar.gz", "gz", "bgzf", "zip", "tar", "lz4", "xz", "checksum"]


def make_input(path: Path, mib: int) -> None:
    text = b"".join(b"line %08d of a build log, mostly repetitive\n" % i for i in range(24000))
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 19))
            f.write(text[: 1 << 19])


def template(data: Path, fmt: str) -> dict[str, object]:
    if fmt == "checksum":
        last: dict[str, object] = {"type": "checksum", "checksum_types": ["md5", "sha256"]}
    else:
        last = {"type": "compress", "output": f"out.{fmt}", "keep_input_artifact": True}
    return {
        "builders": [{"type": "null", "communicator": "none"}],
        "post-processors": [[{"type": "artifice", "files": [str(data)]}, last]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=128, help="input size in MiB")
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()

    packer = require_packer()
    env = tool_env()
    commands = {
        "imagesmith": [sys.executable, "-m", "imagesmith", "build", "-color=false", "t.json"],
        "packer": [packer, "build", "-color=false", "t.json"],
    }

    print(f"{args.size} MiB input, median of {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"  {'format':10} {'imagesmith':>12} {'packer':>12} {'ratio':>7}")
    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        data = Path(tmp) / "input.bin"
        make_input(data, args.size)
        for fmt in args.formats.split(","):
            times: dict[str, list[float]] = {name: [] for name in commands}
            for i in range(args.runs):
                for name, cmd in commands.items():
                    work = Path(tmp) / f"{fmt}-{name}-{i}"
                    work.mkdir()
                    (work / "t.json").write_text(json.dumps(template(data, fmt)))
                    times[name].append(timed(cmd, work, env))
                    shutil.rmtree(work)
            mine = statistics.median(times["imagesmith"])
            theirs = statistics.median(times["packer"])
            print(f"  {fmt:10} {mine:10.2f} s {theirs:10.2f} s {mine / theirs:7.2f}")


if __name__ == "__main__":
    main()

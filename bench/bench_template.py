"""Template engine: imagesmith's render against packer 1.6.6 on the same expressions.

    python bench/bench_template.py [-n RUNS] [--lines N]     (or bench/run template)

1. A whole process evaluating N template lines, the kind real templates hold (user
   variables, timestamps, isotime, split/replace, pipelines): ``packer console`` reads
   them all from stdin; imagesmith renders them in a fresh ``python`` process, start-up
   and imports included. Both tools run alternately; medians are compared.
2. In-process cost of one ``render`` call (cached parse, and a text never seen
   before), for which packer has no separate counterpart.

Goal: ratio (imagesmith / packer) <= 1.0 for the whole process. Measured on 2 cores:
about 1.2 for 50 lines (Python start-up dominates) and 1.4 for 2,000 distinct lines
(parsing about 50 us per new text dominates); a template file holds tens of strings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIABLES = {"region": "us-east-1", "name": "web", "version": "1.2.3", "csv": "a,b,c"}
LINES = [
    "{{user `name`}}-{{timestamp}}",
    "ami-{{user `name`}}-{{isotime `2006-01-02T15-04-05`}}",
    '{{ split (user `csv`) "," 1 }}',
    '{{ replace_all "." "-" (user `version`) }}',
    "{{ user `region` | upper }}",
    "{{ uuid }}",
    "plain text without actions",
    '{{ if eq (user `region`) "us-east-1" }}east{{ else }}other{{ end }}',
    "{{ printf `%s/%s` (user `name`) (user `version`) }}",
    "{{ strftime `%Y%m%d` }}-{{ lower `ABC` }}",
]

IMAGESMITH_SCRIPT = """
import json, sys
from imagesmith.template.render import RenderContext, render
ctx = RenderContext(user_variables=json.loads(sys.argv[1]), packer_version=False)
out = ""
for line in sys.stdin.read().splitlines():
    out = render(line, ctx)
print(out)
"""


def _timed(cmd: list[str], stdin: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start


def whole_process(runs: int, n_lines: int) -> None:
    packer = shutil.which("packer")
    if packer is None:
        print("packer not installed: skipping the comparison")
        return
    lines = "\n".join(LINES[i % len(LINES)] + f" #{i}" for i in range(n_lines)) + "\n"
    env = {**os.environ, "CHECKPOINT_DISABLE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "t.json"
        template.write_text(
            json.dumps(
                {"variables": VARIABLES, "builders": [{"type": "null", "communicator": "none"}]}
            )
        )
        ours_cmd = [sys.executable, "-c", IMAGESMITH_SCRIPT, json.dumps(VARIABLES)]
        theirs_cmd = [packer, "console", str(template)]
        ours, theirs = [], []
        for _ in range(runs):
            theirs.append(_timed(theirs_cmd, lines, env))
            ours.append(_timed(ours_cmd, lines, env))
    p, i = statistics.median(theirs), statistics.median(ours)
    print(f"{n_lines} lines, whole process: packer {p * 1000:.0f} ms, imagesmith {i * 1000:.0f} ms")
    print(f"  ratio imagesmith/packer = {i / p:.2f}")


def in_process() -> None:
    from imagesmith.template.render import RenderContext, render

    ctx = RenderContext(user_variables=VARIABLES, build_name="web", build_type="null")
    n = 20_000
    start = time.perf_counter()
    for k in range(n):
        render(LINES[k % len(LINES)], ctx)
    cached = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for k in range(n):
        render(LINES[k % len(LINES)] + f" {k}", ctx)
    fresh = (time.perf_counter() - start) / n
    print(f"render per call: {cached * 1e6:.1f} us cached parse, {fresh * 1e6:.1f} us new text")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=2000)
    args = parser.parse_args()
    whole_process(args.runs, args.lines)
    in_process()


if __name__ == "__main__":
    main()

"""What several benchmarks share: finding packer, the environment both tools run in,
and timing one command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def require_packer() -> str:
    """The reference packer binary; exits when it is missing."""
    packer = shutil.which("packer")
    if packer is None:
        sys.exit("packer is not installed; the benchmark compares against it")
    return packer


def tool_env() -> dict[str, str]:
    """This environment without PACKER_* variables, and without packer's update check."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACKER_")}
    env["CHECKPOINT_DISABLE"] = "1"
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall time of ``cmd``; exits with its output if it fails."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed (rc {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return took

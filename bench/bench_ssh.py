"""SSH benchmarks: imagesmith against packer 1.6.6 and plain OpenSSH, same run.

    python bench/bench_ssh.py          (or bench/run ssh; needs root, sshd, packer)

1. Upload one 512 MiB file with the file provisioner (null builder over SSH), against
   ``packer build`` on the same template and ``cat FILE | ssh host 'cat > f'``.
   Goal: at most 1.25x OpenSSH.
2. Upload a tree of 20,000 files of 2 KiB, against packer and
   ``tar -c | ssh host tar -x``. Goal: at most 1.3x tar|ssh.
3. A template of 50 inline ``shell`` provisioners, against packer. Goal: at most 0.5x.

Every figure is the whole command's wall time (process start, connect, work, exit),
the median of ROUNDS runs taken in turn. Files land on a tmpfs so that this disk's
speed at creating files does not drown what is measured.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.sshd import SshServer, ensure_user, make_key_pair

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BIG = 512 << 20
FILES = 20_000
FILE_SIZE = 2048
SHELLS = 50
PACKER = shutil.which("packer")
ENV = {**os.environ, "CHECKPOINT_DISABLE": "1"}


def timed(cmd: list[str] | str, cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=ENV, shell=isinstance(cmd, str), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {cmd}\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def measure(runners: dict[str, Callable[[], float]], reset: Callable[[], None]) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(ROUNDS):
        for name, runner in runners.items():
            reset()
            times[name].append(runner())
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, results: dict[str, float], base: str, goal: str) -> None:
    print(f"\n{title}")
    for name, seconds in results.items():
        ratio = seconds / results[base]
        print(f"  {name:<28} {seconds:7.3f} s   {ratio:5.2f}x {base}")
    print(f"  goal: {goal}")


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("bench_ssh needs root (it starts sshd and mounts a tmpfs)")
    if PACKER is None:
        raise SystemExit("packer 1.6.6 is not installed")
    user = ensure_user()
    work = Path(tempfile.mkdtemp(prefix="bench-ssh-"))
    os.chmod(work, 0o755)  # the login user must reach the tmpfs below it
    dest = work / "dest"
    dest.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3g", "tmpfs", str(dest)], check=True)
    os.chown(dest, user.uid, user.gid)
    key = make_key_pair(work, "client")
    server = SshServer(user, authorized_keys=[key.public_text]).start()
    try:
        run_all(work, dest, server, key.private)
    finally:
        server.stop()
        subprocess.run(["umount", "-l", str(dest)], check=False)
        shutil.rmtree(work, ignore_errors=True)


def run_all(work: Path, dest: Path, server: SshServer, key: Path) -> None:
    ssh = (
        f"ssh -q -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"-o BatchMode=yes -p {server.port} {server.user.name}@{server.host}"
    )
    imagesmith = [sys.executable, "-m", "imagesmith", "build", "-color=false", "t.json"]
    packer = [str(PACKER), "build", "-color=false", "t.json"]

    def template(name: str, provisioners: list[dict[str, object]]) -> Path:
        d = work / name
        d.mkdir(exist_ok=True)
        builder = {
            "type": "null",
            "ssh_host": server.host,
            "ssh_port": server.port,
            "ssh_username": server.user.name,
            "ssh_private_key_file": str(key),
        }
        (d / "t.json").write_text(json.dumps({"builders": [builder], "provisioners": provisioners}))
        return d

    def reset() -> None:
        for entry in dest.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    # 1. one big file
    big = work / "big.bin"
    with open(big, "wb") as f:
        for _ in range(BIG >> 20):
            f.write(os.urandom(1 << 20))
    d = template("big", [{"type": "file", "source": str(big), "destination": f"{dest}/big.bin"}])
    results = measure(
        {
            "cat FILE | ssh 'cat > f'": lambda: timed(
                f"cat {big} | {ssh} 'cat > {dest}/big.bin'", d
            ),
            "imagesmith file provisioner": lambda: timed(imagesmith, d),
            "packer file provisioner": lambda: timed(packer, d),
        },
        reset,
    )
    report("512 MiB file upload", results, "cat FILE | ssh 'cat > f'", "imagesmith <= 1.25x")
    big.unlink()

    # 2. a tree of small files
    tree = work / "tree"
    payload = os.urandom(FILE_SIZE)
    for i in range(FILES):
        sub = tree / f"d{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.bin").write_bytes(payload)
    d = template("tree", [{"type": "file", "source": str(tree), "destination": f"{dest}/"}])
    results = measure(
        {
            "tar -c | ssh tar -x": lambda: timed(
                f"tar -c -C {work} tree | {ssh} 'tar -x -C {dest}'", d
            ),
            "imagesmith file provisioner": lambda: timed(imagesmith, d),
            "packer file provisioner": lambda: timed(packer, d),
        },
        reset,
    )
    report(
        f"{FILES} x {FILE_SIZE // 1024} KiB tree upload",
        results,
        "tar -c | ssh tar -x",
        "imagesmith <= 1.3x",
    )

    # 3. many small shell provisioners
    shells: list[dict[str, object]] = [
        {"type": "shell", "inline": [f"echo step {i}"]} for i in range(SHELLS)
    ]
    d = template("shells", shells)
    results = measure(
        {"packer": lambda: timed(packer, d), "imagesmith": lambda: timed(imagesmith, d)}, reset
    )
    report(f"{SHELLS} inline shell provisioners", results, "packer", "imagesmith <= 0.5x")


if __name__ == "__main__":
    main()

"""Docker builder benchmarks: imagesmith against packer 1.6.6 on the same templates.

    python bench/bench_docker.py [--rounds N] [small|tree|tmpfs|ssh ...]   (or bench/run docker)

1. ``small``: a busybox base, a shell and a file provisioner, ``changes``, ``docker-tag``
   and ``manifest``: whole ``build`` wall time, as a user runs it.
2. ``tree``: uploading a 20,000-file tree with the file provisioner into the
   container's own file system (bound by how fast this disk creates files). On ext4
   without a journal, creating files right after many were deleted is slow (the
   allocator skips recently deleted inodes whose table blocks are still cached), so each
   run would pay for the files the previous run's container removal deleted, and the
   order of the tools would decide the ratio. As root, the page cache is flushed and
   dropped before every run of either tool, and the source tree read back in.
3. ``tmpfs``: the same tree into a volume on the host's /dev/shm (what the transfer
   itself costs, without the disk).
4. ``ssh``: the ``small`` build with ``DOCKER_HOST=ssh://...``, the daemon reached
   through a loopback sshd and the remote ``docker system dial-stdio`` (no goal: how
   the two tools' ways of using ssh compare). Needs root, like the test fixtures.

Each case runs both tools alternately, ``--rounds`` times (default 5), and compares
medians; the spread (min-max) is printed too, since other work on the machine moves
single runs a lot.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fixtures.docker_engine import BUSYBOX_IMAGE, busybox_rootfs, image_exists, import_rootfs
from fixtures.sshd import docker_over_ssh

ROUNDS = 5
RUN = ["-d", "-i", "-t", "--network", "none", "--entrypoint=/bin/sh", "--", "{{.Image}}"]


def small_template(repo: str) -> dict[str, object]:
    chain: list[dict[str, object]] = [
        {"type": "docker-tag", "repository": repo, "tags": ["v1", "latest"]},
        {"type": "manifest"},
    ]
    return {
        "builders": [{"type": "docker", "image": BUSYBOX_IMAGE, "pull": False, "commit": True,
                      "run_command": RUN, "changes": ["ENV FOO=bar", "LABEL a=b", "WORKDIR /opt"]}],
        "provisioners": [
            {"type": "shell", "inline": ["mkdir -p /opt/app", "echo hello > /opt/app/hi"]},
            {"type": "file", "source": "payload.txt", "destination": "/opt/app/payload.txt"},
        ],
        "post-processors": [chain],
    }  # fmt: skip


def tree_template(source: str, volume: str | None) -> dict[str, object]:
    builder: dict[str, object] = {"type": "docker", "image": BUSYBOX_IMAGE, "pull": False,
                                  "discard": True, "run_command": RUN}  # fmt: skip
    dest = "/tmp/tree"
    if volume:
        builder["volumes"] = {volume: "/data"}
        dest = "/data/tree"
    return {"builders": [builder],
            "provisioners": [{"type": "file", "source": source, "destination": dest}]}  # fmt: skip


def make_tree(root: Path, files: int = 20_000) -> None:
    if root.exists():
        return
    for d in range(files // 200):
        sub = root / f"d{d:03}"
        sub.mkdir(parents=True)
        for f in range(200):
            (sub / f"f{f:03}.txt").write_bytes(os.urandom(512))


def settle_disk(tree: Path) -> None:
    """The same disk state before each run: dirty pages written, caches dropped (root
    only), and the source tree read back into the page cache."""
    os.sync()
    if os.geteuid() == 0:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    for path in tree.rglob("*"):
        if path.is_file():
            path.read_bytes()


#: Images the runs committed, removed at the end (each run moves the tags on).
BUILT: set[str] = set()


def timed(
    cmd: list[str], cwd: Path, before: object = None, extra_env: dict[str, str] | None = None
) -> float:
    if callable(before):
        before()
    env = dict(os.environ, CHECKPOINT_DISABLE="1", **(extra_env or {}))
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    BUILT.update(re.findall(r"Image ID: (sha256:[0-9a-f]{64})", done.stdout))
    return elapsed


def compare(
    name: str,
    template: dict[str, object],
    cwd: Path,
    goal: float | None,
    before: object = None,
    rounds: int = ROUNDS,
    env: dict[str, str] | None = None,
) -> float:
    (cwd / "t.json").write_text(json.dumps(template))
    packer, ours = [], []
    for _ in range(rounds):
        packer.append(timed(["packer", "build", "-color=false", "t.json"], cwd, before, env))
        imagesmith = [sys.executable, "-m", "imagesmith", "build", "-color=false", "t.json"]
        ours.append(timed(imagesmith, cwd, before, env))
    p, o = statistics.median(packer), statistics.median(ours)
    ratio = o / p
    if goal is None:
        verdict = "no goal"
    else:
        verdict = ("meets" if ratio <= goal else "misses") + f" the goal of <= {goal}"
    print(f"{name}: packer {p:.3f}s  imagesmith {o:.3f}s  ratio {ratio:.2f}")
    print(
        f"    ({verdict}; packer {min(packer):.2f}-{max(packer):.2f}s, "
        f"imagesmith {min(ours):.2f}-{max(ours):.2f}s over {rounds} rounds)"
    )
    return ratio


def main(argv: list[str]) -> int:
    rounds = ROUNDS
    if argv[:1] == ["--rounds"]:
        rounds, argv = int(argv[1]), argv[2:]
    cases = set(argv) or {"small", "tree", "tmpfs", "ssh"}
    if shutil.which("packer") is None:
        print("packer is not installed; nothing to compare against")
        return 1
    import docker

    client = docker.APIClient(version="auto")
    if not image_exists(client, BUSYBOX_IMAGE):
        import_rootfs(client, busybox_rootfs(), BUSYBOX_IMAGE)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        (work / "payload.txt").write_text("payload\n" * 100)
        if "small" in cases:
            compare("busybox + 2 provisioners + changes + docker-tag + manifest",
                    small_template("imagesmith-bench/small"), work, 0.5, rounds=rounds)  # fmt: skip
        if "ssh" in cases:
            if os.geteuid() != 0:
                print("ssh: skipped (needs root for the sshd fixture)")
            else:
                (work / "ssh").mkdir()
                with docker_over_ssh(work / "ssh") as env:
                    compare("the same build through DOCKER_HOST=ssh://",
                            small_template("imagesmith-bench/small"), work, None,
                            rounds=rounds, env=env)  # fmt: skip
        tree = work / "tree"
        if cases & {"tree", "tmpfs"}:
            make_tree(tree)
        if "tree" in cases:

            def settle() -> None:
                settle_disk(tree)

            if os.geteuid() != 0:
                print("    (not root: runs are not settled, see the module's docstring)")
            compare("20,000-file upload into the container file system",
                    tree_template(str(tree), None), work, 0.5, settle,
                    rounds=rounds)  # fmt: skip
        if "tmpfs" in cases:
            shm = Path(tempfile.mkdtemp(dir="/dev/shm"))
            try:

                def empty_volume() -> None:
                    shutil.rmtree(shm / "tree", ignore_errors=True)

                compare("20,000-file upload into a tmpfs volume",
                        tree_template(str(tree), str(shm)), work, 0.5, empty_volume,
                        rounds=rounds)  # fmt: skip
            finally:
                shutil.rmtree(shm, ignore_errors=True)
    for ref in sorted(BUILT):
        with contextlib.suppress(docker.errors.DockerException):
            client.remove_image(ref, force=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

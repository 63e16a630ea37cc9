"""The local base images a rehearsal runs instances on, built from Debian packages.

No image registry is needed: ``debootstrap --variant=minbase`` makes a Debian root file
system with an SSH server and sudo, ``docker import`` turns it into
``imagesmith/rehearse-base:debian-bookworm``. The Amazon Linux stand-in adds Debian's
dnf on top, reachable as ``yum``, with one empty local repository, so that a template's
``yum update`` runs and reports nothing to do.

Building takes a few minutes; the root file system and the stand-in are kept as
tarballs in a cache directory, and an image already on the Docker engine is reused.

Run ``python -m imagesmith.rehearse.baseimage [--cache-dir DIR] [--rebuild]`` as root
(``scripts/rehearse-base-image.sh`` does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imagesmith.errors import ImagesmithError
from imagesmith.rehearse.images import AMAZON_STANDIN_IMAGE, DEBIAN_IMAGE

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("openssh-server", "sudo", "procps", "iproute2", "less", "ca-certificates")

DEBIAN_TARBALL = f"rehearse-debian-{SUITE}.tar"
AMAZON_TARBALL = "rehearse-amazon-linux-standin.tar"

# Run in the Debian image to make the Amazon Linux stand-in: yum is dnf, with one empty
# repository so that dnf has something to ask (it refuses to run without one).
STANDIN_SCRIPT = r"""
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends dnf createrepo-c
mkdir -p /var/lib/rehearsal-repo /etc/yum.repos.d /etc/dnf/vars
createrepo_c -q /var/lib/rehearsal-repo
cat > /etc/yum.repos.d/rehearsal.repo <<'REPO'
[rehearsal]
name=imagesmith rehearsal stand-in (empty)
baseurl=file:///var/lib/rehearsal-repo
enabled=1
gpgcheck=0
REPO
echo 2 > /etc/dnf/vars/releasever
ln -sf /usr/bin/dnf /usr/bin/yum
apt-get purge -y -q createrepo-c
apt-get autoremove -y -q
apt-get clean
rm -rf /var/lib/apt/lists/*
dnf -y -q makecache
"""


class BaseImageError(ImagesmithError):
    pass


def default_cache_dir() -> Path:
    if os.environ.get("IMAGESMITH_CACHE_DIR"):
        return Path(os.environ["IMAGESMITH_CACHE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/cache/imagesmith")
    return Path.home() / ".cache" / "imagesmith"


def ensure_base_images(
    cache_dir: Path | None = None,
    *,
    rebuild: bool = False,
    log: Callable[[str], None] = print,
    docker_client: Any = None,
) -> None:
    """Make sure both base images are on the local Docker engine."""
    import docker.errors

    import docker

    cache = cache_dir or default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    client = docker_client or docker.from_env()

    def present(tag: str) -> bool:
        try:
            client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    debian_tar = cache / DEBIAN_TARBALL
    amazon_tar = cache / AMAZON_TARBALL
    if rebuild:
        debian_tar.unlink(missing_ok=True)
        amazon_tar.unlink(missing_ok=True)

    if rebuild or not present(DEBIAN_IMAGE):
        if not debian_tar.exists():
            log(f"Building the Debian {SUITE} root file system (debootstrap, a few minutes)...")
            _debootstrap_tarball(debian_tar)
        log(f"Importing {DEBIAN_IMAGE}...")
        repo, tag = DEBIAN_IMAGE.rsplit(":", 1)
        client.api.import_image_from_file(
            str(debian_tar), repository=repo, tag=tag, changes=['CMD ["/bin/bash"]']
        )

    if rebuild or not present(AMAZON_STANDIN_IMAGE):
        if amazon_tar.exists():
            log(f"Loading {AMAZON_STANDIN_IMAGE} from {amazon_tar}...")
            with amazon_tar.open("rb") as f:
                client.images.load(f)
        else:
            log(f"Building {AMAZON_STANDIN_IMAGE} (Debian's dnf as yum)...")
            _build_standin(client)
            part = amazon_tar.with_suffix(".part")
            with part.open("wb") as out:
                for chunk in client.images.get(AMAZON_STANDIN_IMAGE).save(named=True):
                    out.write(chunk)
            part.rename(amazon_tar)
    log(f"Base images ready: {DEBIAN_IMAGE}, {AMAZON_STANDIN_IMAGE}")


def _debootstrap_tarball(dest: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise BaseImageError(
            "Building the rehearsal base image needs debootstrap: run apt-get install debootstrap."
        )
    if os.geteuid() != 0:
        raise BaseImageError("Building the rehearsal base image needs root: run it with sudo.")
    work = Path(tempfile.mkdtemp(prefix="imagesmith-rootfs-", dir=dest.parent))
    root = work / "root"
    try:
        cmd = [
            "debootstrap",
            "--variant=minbase",
            "--include=" + ",".join(PACKAGES),
            SUITE,
            str(root),
            MIRROR,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise BaseImageError(f"debootstrap failed (exit {done.returncode}): {tail}")
        _trim(root)
        part = dest.with_suffix(".part")
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(part), "."],
            check=True,
        )
        part.rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _trim(root: Path) -> None:
    # Host keys are made per container at start, like an instance's first boot; the
    # package lists and archives only make the image larger.
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    for sub in ("var/lib/apt/lists", "var/cache/apt/archives"):
        for item in (root / sub).glob("*"):
            if item.is_file():
                item.unlink()
    (root / "etc" / "hostname").write_text("rehearsal\n")


def _build_standin(client: Any) -> None:
    container = client.containers.run(
        DEBIAN_IMAGE,
        ["/bin/sh", "-c", STANDIN_SCRIPT],
        detach=True,
        network_mode="host",
        labels={"imagesmith.rehearsal": "base-image"},
    )
    try:
        result = container.wait()
        if result.get("StatusCode") != 0:
            logs = container.logs().decode(errors="replace").strip().splitlines()
            raise BaseImageError(
                f"Building {AMAZON_STANDIN_IMAGE} failed: " + " | ".join(logs[-5:])
            )
        repo, tag = AMAZON_STANDIN_IMAGE.rsplit(":", 1)
        container.commit(repository=repo, tag=tag, conf={"Cmd": ["/bin/bash"]})
    finally:
        container.remove(force=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imagesmith.rehearse.baseimage",
        description="Build the local images rehearsals run instances on.",
    )
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    try:
        ensure_base_images(args.cache_dir, rebuild=args.rebuild)
    except ImagesmithError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the Docker engine's own errors
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures of the rehearsal tests: the Docker engine and the rehearsal base images."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Building the base images takes a minute or two; the tarballs stay here between runs.
CACHE_DIR = Path("/var/cache/imagesmith-tests")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    if shutil.which("dockerd") is None:
        pytest.skip("the Docker engine (dockerd) is not installed")
    import docker

    client = docker.from_env()
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_images(docker_client: Any) -> None:
    """Both rehearsal base images, reused from the engine or the tarball cache."""
    from imagesmith.rehearse.baseimage import ensure_base_images

    ensure_base_images(CACHE_DIR, log=lambda msg: None, docker_client=docker_client)


def rehearsal_containers(client: Any) -> list[str]:
    """Ids of the rehearsal instance containers on the engine, whoever started them."""
    from imagesmith.rehearse.machine import LABEL

    found = client.api.containers(all=True, filters={"label": f"{LABEL}=instance"})
    return [c["Id"] for c in found]


def rehearsal_loops() -> list[str]:
    import subprocess

    from imagesmith.rehearse.machine import VOLUMES_PREFIX

    listing = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if VOLUMES_PREFIX in line]

"""Fixtures shared by the docker tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from docker_helpers import containers_of, fresh_image


@pytest.fixture
def image(docker_client: Any, busybox_image: str) -> Iterator[str]:
    """A base image of this test's own: any container a build made from it is found by
    its image (``containers_of``), whatever it is named, and removed afterwards."""
    tag = fresh_image(docker_client, busybox_image)
    yield tag
    for c in containers_of(docker_client, tag):  # only after a failure
        docker_client.remove_container(c["Id"], force=True)
    docker_client.remove_image(tag, force=True)

"""The local base images rehearsals run on: contents, reuse and the tarball cache."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import CACHE_DIR
from imagesmith.rehearse import baseimage
from imagesmith.rehearse.images import AMAZON_STANDIN_IMAGE, DEBIAN_IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("base_images")]

PROBE = (
    "test -x /usr/sbin/sshd && command -v sudo >/dev/null && test ! -e /etc/ssh/ssh_host_rsa_key"
    " && echo ok; command -v yum || echo no-yum"
)


def _run(client: Any, image: str, script: str) -> str:
    out: bytes = client.containers.run(
        image, ["sh", "-c", script], network_mode="none", remove=True
    )
    return out.decode()


def test_debian_image_has_ssh_server_and_sudo_but_no_yum(docker_client: Any) -> None:
    assert _run(docker_client, DEBIAN_IMAGE, PROBE) == "ok\nno-yum\n"


def test_amazon_standin_answers_yum_from_an_empty_repository(docker_client: Any) -> None:
    assert _run(docker_client, AMAZON_STANDIN_IMAGE, PROBE) == "ok\n/usr/bin/yum\n"
    update = "yum -y -x docker\\* -x ecs\\* update >/dev/null && echo updated"
    install = "yum -y install ecs-init >/dev/null 2>&1 || echo refused"
    out = _run(docker_client, AMAZON_STANDIN_IMAGE, f"{update}; {install}")
    assert out == "updated\nrefused\n"


def test_present_images_are_reused_without_building(docker_client: Any) -> None:
    said: list[str] = []
    baseimage.ensure_base_images(CACHE_DIR, log=said.append, docker_client=docker_client)
    assert said == [f"Base images ready: {DEBIAN_IMAGE}, {AMAZON_STANDIN_IMAGE}"]


def test_a_removed_image_comes_back_from_the_tarball_cache(docker_client: Any) -> None:
    tarball = CACHE_DIR / baseimage.AMAZON_TARBALL
    if not tarball.exists():
        pytest.skip(f"{tarball} was not made on this machine (the images came from elsewhere)")
    before = docker_client.images.get(AMAZON_STANDIN_IMAGE).id
    docker_client.images.remove(AMAZON_STANDIN_IMAGE)
    said: list[str] = []
    baseimage.ensure_base_images(CACHE_DIR, log=said.append, docker_client=docker_client)
    assert said[0] == f"Loading {AMAZON_STANDIN_IMAGE} from {tarball}..."
    assert docker_client.images.get(AMAZON_STANDIN_IMAGE).id == before


def test_building_without_debootstrap_says_what_to_install(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without debootstrap
    with pytest.raises(baseimage.BaseImageError, match="apt-get install debootstrap"):
        baseimage._debootstrap_tarball(tmp_path / "x.tar")

"""docker-tag, docker-save, docker-import and docker-push on real builds."""

from __future__ import annotations

import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import run_build

pytestmark = pytest.mark.docker


def test_tag_then_save_and_tag_with_the_deprecated_key(
    docker_client: Any, busybox_image: str, tmp_path: Path
) -> None:
    repo = f"imagesmith-test/built-{uuid.uuid4().hex[:8]}"
    saved = tmp_path / "image.tar"
    tag = {"type": "docker-tag", "repository": repo, "tags": ["v1", "latest"]}
    old = {"type": "docker-tag", "repository": repo, "tag": "old"}
    save = {"type": "docker-save", "path": str(saved)}
    out = run_build(
        {"image": busybox_image, "pull": False, "commit": True},
        ["echo x > /x"],
        [
            [tag, save],
            [old],
        ],
    )  # fmt: skip
    assert out.rc == 0, out.output
    image_id = out.output.split("Image ID: ")[1].split()[0]
    lines = out.output.splitlines()
    assert f"    docker (docker-tag): Tagging image: {image_id}" in lines
    assert f"    docker (docker-tag): Repository: {repo}:v1" in lines
    assert f"    docker (docker-save): Saved to: {saved}" in lines
    assert any(
        ln.startswith('==> docker (docker-tag): Deprecation warning: "tag" option') for ln in lines
    )
    assert (
        f"--> docker: Imported Docker image: {repo}:latest with tags {repo}:v1 {repo}:latest"
        in lines
    )
    assert f"--> docker: Imported Docker image: {repo}:old with tags {repo}:old" in lines
    assert docker_client.inspect_image(f"{repo}:v1")["Id"] == image_id
    with tarfile.open(saved) as tar:
        assert "manifest.json" in tar.getnames()
    docker_client.remove_image(image_id, force=True)


def test_export_then_import(docker_client: Any, busybox_image: str, tmp_path: Path) -> None:
    repo = f"imagesmith-test/imported-{uuid.uuid4().hex[:8]}"
    out = run_build(
        {"image": busybox_image, "pull": False, "export_path": str(tmp_path / "c.tar")},
        ["echo made > /made"],
        [[{"type": "docker-import", "repository": repo, "tag": "1",
           "changes": ["ENV FROM=import"]}]],
    )  # fmt: skip
    assert out.rc == 0, out.output
    assert f"    docker (docker-import): Repository: {repo}:1" in out.output
    assert f"--> docker: Imported Docker image: {repo}:1" in out.output
    # keep_input_artifact defaults to false for docker-import: the export is deleted.
    assert not (tmp_path / "c.tar").exists()
    assert "FROM=import" in docker_client.inspect_image(f"{repo}:1")["Config"]["Env"]
    docker_client.remove_image(f"{repo}:1", force=True)


def test_tag_refuses_an_export_artifact(busybox_image: str, tmp_path: Path) -> None:
    out = run_build(
        {"image": busybox_image, "pull": False, "export_path": str(tmp_path / "c.tar")},
        ["true"],
        [[{"type": "docker-tag", "repository": "x/y"}]],
    )
    assert out.rc == 1
    assert "Unknown artifact type: packer.docker" in out.output
    assert "Can only tag from Docker builder artifacts." in out.output


def test_push_with_login_to_a_loopback_registry(
    docker_client: Any, busybox_image: str, docker_registry_auth: tuple[str, str, str]
) -> None:
    address, user, password = docker_registry_auth
    repo = f"{address}/imagesmith/pushed"
    tag = {"type": "docker-tag", "repository": repo, "tags": ["t1"]}
    out = run_build(
        {"image": busybox_image, "pull": False, "commit": True},
        ["echo pushed > /p"],
        [[tag,
          {"type": "docker-push", "login": True, "login_server": address,
           "login_username": user, "login_password": password}]],
    )  # fmt: skip
    assert out.rc == 0, out.output
    lines = out.output.splitlines()
    assert "    docker (docker-push): Logging in..." in lines
    assert f"    docker (docker-push): Pushing: {repo}:t1" in lines
    assert "    docker (docker-push): Logging out..." in lines
    assert password not in out.output
    docker_client.remove_image(f"{repo}:t1", force=True)
    docker_client.login(user, password=password, registry=address, reauth=True)
    for _ in docker_client.pull(repo, tag="t1", stream=True):
        pass
    assert docker_client.inspect_image(f"{repo}:t1")


def test_push_with_a_wrong_password_says_so(
    busybox_image: str, docker_registry_auth: tuple[str, str, str]
) -> None:
    address, user, _ = docker_registry_auth
    out = run_build(
        {"image": busybox_image, "pull": False, "commit": True},
        ["true"],
        [[{"type": "docker-tag", "repository": f"{address}/x/y"},
          {"type": "docker-push", "login": True, "login_server": address,
           "login_username": user, "login_password": "wrong"}]],
    )  # fmt: skip
    assert out.rc == 1
    assert "Error logging in to Docker: " in out.output

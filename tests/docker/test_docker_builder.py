"""The docker builder end to end: ``imagesmith build`` on templates, against the real engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import Upload, container_exists, run_build

pytestmark = pytest.mark.docker


def test_commit_keeps_base_config_applies_changes_and_removes_the_container(
    docker_client: Any, busybox_image: str, tmp_path: Path
) -> None:
    base = "imagesmith-test/busybox-cfg:1"
    cid = docker_client.create_container(busybox_image, entrypoint=["/bin/true"])["Id"]
    docker_client.commit(cid, repository="imagesmith-test/busybox-cfg", tag="1", changes=[
        "ENV APP=1", "WORKDIR /srv", "USER nobody", 'ENTRYPOINT ["/bin/sh"]',
        'CMD ["-c", "echo hi"]', "LABEL base=yes",
    ])  # fmt: skip
    docker_client.remove_container(cid)
    (tmp_path / "f.txt").write_text("payload\n")
    out = run_build(
        {"image": base, "pull": False, "commit": True, "changes": ["ENV FOO=bar"],
         "message": "built", "author": "me"},
        ["id -u; pwd", Upload(str(tmp_path / "f.txt"), "/tmp/f.txt"),
         "stat -c %u /tmp/f.txt"],
    )  # fmt: skip
    assert out.rc == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "==> docker: Starting docker container..."
    assert lines[1].startswith("    docker: Container ID: ")
    assert "==> docker: Using docker communicator to connect:" in lines
    assert "    docker: 65534" in lines and "    docker: /srv" in lines
    image_line = next(ln for ln in lines if ln.startswith("    docker: Image ID: sha256:"))
    image_id = image_line.split(": ")[-1]
    assert f"--> docker: Imported Docker image: {image_id}" in lines
    assert not container_exists(docker_client, out.container_id)

    info = docker_client.inspect_image(image_id)
    config = info["Config"]
    assert config["Entrypoint"] == ["/bin/sh"] and config["Cmd"] == ["-c", "echo hi"]
    assert config["Env"][-2:] == ["APP=1", "FOO=bar"]
    assert (config["WorkingDir"], config["User"], config["Labels"]) == (
        "/srv",
        "nobody",
        {"base": "yes"},
    )
    assert (info["Comment"], info["Author"]) == ("built", "me")
    docker_client.remove_image(image_id)


def test_base_without_entrypoint_or_cmd_stays_that_way(
    docker_client: Any, busybox_image: str
) -> None:
    out = run_build(
        {"image": busybox_image, "pull": False, "commit": True,
         "run_command": ["-d", "-i", "-t", "--network", "none", "{{.Image}}", "/bin/sh"]},
        ["true"],
    )  # fmt: skip
    assert out.rc == 0, out.output
    assert (
        "    docker: Run command: docker run -d -i -t --network none " + busybox_image + " /bin/sh"
        in out.output
    )
    image_id = out.output.split("Image ID: ")[1].split()[0]
    config = docker_client.inspect_image(image_id)["Config"]
    assert not config.get("Cmd") and not config.get("Entrypoint")
    docker_client.remove_image(image_id)


def test_export_writes_the_container_file_system(busybox_image: str, tmp_path: Path) -> None:
    target = tmp_path / "out" / "c.tar"
    out = run_build({"image": busybox_image, "pull": False, "export_path": str(target)},
                    ["echo made > /made.txt"])  # fmt: skip
    assert out.rc == 0, out.output
    assert "==> docker: Exporting the container" in out.output
    assert f"--> docker: Exported Docker file: {target}" in out.output
    import tarfile

    with tarfile.open(target) as tar:
        assert tar.extractfile("made.txt").read() == b"made\n"  # type: ignore[union-attr]


def test_discard_leaves_nothing(docker_client: Any, busybox_image: str) -> None:
    out = run_build({"image": busybox_image, "pull": False, "discard": True}, ["true"])
    assert out.rc == 0, out.output
    assert "--> docker: Exported Docker file: " in out.output
    assert not container_exists(docker_client, out.container_id)


def test_failing_command_fails_fast_and_cleans_up(docker_client: Any, busybox_image: str) -> None:
    out = run_build({"image": busybox_image, "pull": False, "commit": True},
                    ["echo before; exit 7", "echo never"])  # fmt: skip
    assert out.rc == 1
    assert "Script exited with non-zero exit status: 7" in out.output
    assert "never" not in out.output and "Committing" not in out.output
    assert "==> docker: Killing the container: " in out.output
    assert not container_exists(docker_client, out.container_id)


def test_missing_image_with_pull_false_says_what_to_do(docker_client: Any) -> None:
    out = run_build(
        {"image": "imagesmith-test/absent:404", "pull": False, "commit": True}, ["true"]
    )
    assert out.rc == 1
    assert (
        'Image imagesmith-test/absent:404 is not on this Docker host and "pull" is false'
        in out.output
    )
    assert "Starting docker container" not in out.output


def test_image_without_a_shell_fails_with_the_reason(docker_client: Any) -> None:
    from fixtures.docker_engine import busybox_rootfs, image_exists, import_rootfs

    tag = "imagesmith-test/busybox-nosh:1"
    if not image_exists(docker_client, tag):
        import_rootfs(docker_client, busybox_rootfs(shell=False), tag)
    out = run_build({"image": tag, "pull": False, "commit": True}, ["true"])
    assert out.rc == 1
    assert "has no /bin/sh" in out.output
    assert not container_exists(docker_client, out.container_id)


def test_image_without_tmp_fails_on_upload_at_once(docker_client: Any, tmp_path: Path) -> None:
    from fixtures.docker_engine import busybox_rootfs, image_exists, import_rootfs

    tag = "imagesmith-test/busybox-notmp:1"
    if not image_exists(docker_client, tag):
        import_rootfs(docker_client, busybox_rootfs(tmp=False), tag)
    (tmp_path / "s.sh").write_text("true\n")
    out = run_build({"image": tag, "pull": False, "commit": True},
                    [Upload(str(tmp_path / "s.sh"), "/tmp/script_1.sh")])  # fmt: skip
    assert out.rc == 1
    assert "directory /tmp does not exist in the container" in out.output


def test_container_that_exits_at_once_is_explained(busybox_image: str) -> None:
    run_command = ["--network", "none", "{{.Image}}", "/bin/sh"]
    raw = {"image": busybox_image, "pull": False, "commit": True, "run_command": run_command}
    out = run_build(raw, ["true"])
    assert out.rc == 1
    # Seen when the container is started, or (if /bin/sh ends a moment later) at the
    # first command: either way the reason and the fix are given.
    assert (
        "The container stopped as soon as it started (exit code 0)" in out.output
        or "is no longer running (its process exited with code 0)" in out.output
    ), out.output
    assert "The build needs it to keep running: pass -i -t" in out.output


def test_pull_from_a_loopback_registry(
    docker_client: Any, busybox_image: str, docker_registry: str
) -> None:
    remote = f"{docker_registry}/imagesmith/busybox"
    docker_client.tag(busybox_image, remote, "pulled")
    for _ in docker_client.push(remote, tag="pulled", stream=True):
        pass
    docker_client.remove_image(f"{remote}:pulled")
    out = run_build({"image": f"{remote}:pulled", "commit": True}, ["true"])
    assert out.rc == 0, out.output
    assert f"==> docker: Pulling Docker image: {remote}:pulled" in out.output
    docker_client.remove_image(f"{remote}:pulled", force=True)


def test_pull_failure_reports_the_daemons_reason(docker_registry: str) -> None:
    missing = f"{docker_registry}/imagesmith/none:x"
    out = run_build({"image": missing, "commit": True}, ["true"])
    assert out.rc == 1
    assert "Error pulling Docker image: " in out.output
    assert json.dumps("Starting docker container")[1:-1] not in out.output

"""Differential tests: one template through packer 1.6.6 and through ``imagesmith build``.

The images must hold the same files with the same modes and owners and the same
config, except for the documented difference (imagesmith keeps the base image's
ENTRYPOINT and CMD where packer leaves ``/bin/sh`` and no CMD); the manifests must
have the same shape; the console output must be the same line for line once ids,
durations and temporary names are normalised and packer's shared-folder lines (which
imagesmith does not need) are left out.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import cli, cli_env, docker_context, forwarder, tls_daemon

pytestmark = [pytest.mark.packer, pytest.mark.docker]

BASE = "imagesmith-test/busybox-diff:1"
COMMANDS = ["mkdir -p /opt/app", "echo v1 > /opt/app/version", "chmod 640 /opt/app/version",
            "echo provisioned", "sleep 0.2", "echo to-stderr >&2"]  # fmt: skip
CHANGES = ["ENV MODE=prod", "LABEL team=img", "EXPOSE 8080", "WORKDIR /opt/app"]
RUN = ["-d", "-i", "-t", "--network", "none", "--entrypoint=/bin/sh", "--", "{{.Image}}"]


@pytest.fixture(scope="module")
def base_image(docker_client: Any, busybox_image: str) -> str:
    cid = docker_client.create_container(busybox_image, entrypoint=["/bin/true"])["Id"]
    docker_client.commit(cid, repository=BASE.split(":")[0], tag="1", changes=[
        "ENV APP=1", "USER root", 'CMD ["sh", "-c", "echo base"]', "LABEL base=yes",
    ])  # fmt: skip
    docker_client.remove_container(cid)
    return BASE


def listing(client: Any, image: str) -> list[str]:
    script = "stat -c '%n %a %u:%g %s' /opt/app /opt/app/* /tree /tree/* /tree/sub/*"
    cid = client.create_container(
        image, entrypoint=["/bin/sh", "-c", script],
        host_config=client.create_host_config(network_mode="none"),
    )["Id"]  # fmt: skip
    client.start(cid)
    client.wait(cid)
    out = client.logs(cid).decode().splitlines()
    client.remove_container(cid)
    return out


_NORMALISE = [
    (re.compile(r"sha256:[0-9a-f]{64}"), "sha256:<image>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<container>"),
    (re.compile(r"packer-shell\d+"), "packer-shell<n>"),
    (re.compile(r"after (\d+ (hours?|minutes?|seconds?|milliseconds?|microseconds?) ?)+"),
     "after <duration>"),
    (re.compile(r"docker run -v \S+:/packer-files "), "docker run "),
    (re.compile(r"imagesmith-test/diff-\w+"), "<repo>"),
]  # fmt: skip


def normalise(output: str) -> list[str]:
    lines = []
    for line in output.splitlines():
        if line == "==> docker: Creating a temporary directory for sharing data...":
            continue  # packer's shared folder; imagesmith streams files through the API
        for pattern, repl in _NORMALISE:
            line = pattern.sub(repl, line)
        lines.append(line.rstrip())
    return lines


def manifest_shape(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    assert list(data) == ["builds", "last_run_uuid"]
    builds = data["builds"]
    assert [b["packer_run_uuid"] for b in builds][-1] == data["last_run_uuid"]
    shapes = []
    for b in builds:
        shape = {k: type(v).__name__ for k, v in b.items()}
        shape["name"], shape["builder_type"] = b["name"], b["builder_type"]
        (shape["artifact_id"],) = normalise(b["artifact_id"])
        shape["files"] = b["files"]
        shapes.append(shape)
    return shapes


@pytest.fixture
def built(docker_client: Any) -> Iterator[list[str]]:
    images: list[str] = []
    yield images
    for image in images:
        docker_client.remove_image(image, force=True)


def test_same_files_config_manifest_and_output_as_packer(
    docker_client: Any, base_image: str, tmp_path: Path, built: list[str]
) -> None:
    packer = shutil.which("packer")
    if packer is None:
        pytest.skip("packer is not installed")
    (tmp_path / "conf.txt").write_text("key=value\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a\n")
    (tree / "sub" / "b.sh").write_text("#!/bin/sh\n")
    (tree / "sub" / "b.sh").chmod(0o750)
    runs = {}
    for tool in ("packer", "imagesmith"):
        work = tmp_path / tool
        work.mkdir()
        shutil.copy(tmp_path / "conf.txt", work / "conf.txt")
        shutil.copytree(tree, work / "tree")
        repo = f"imagesmith-test/diff-{tool}"
        template = {
            "builders": [{"type": "docker", "image": base_image, "pull": False,
                          "commit": True, "changes": CHANGES, "run_command": RUN}],
            "provisioners": [
                {"type": "shell", "inline": COMMANDS},
                {"type": "file", "source": "conf.txt", "destination": "/opt/app/conf.txt"},
                {"type": "file", "source": "tree/", "destination": "/tree"},
            ],
            "post-processors": [
                [{"type": "docker-tag", "repository": repo, "tags": ["v1"]},
                 {"type": "manifest", "output": "tagged.json"}],
                {"type": "manifest", "output": "committed.json"},
            ],
        }  # fmt: skip
        (work / "t.json").write_text(json.dumps(template))
        command = [packer, "build", "-color=false", "t.json"] if tool == "packer" else (
            cli(work / "t.json"))  # fmt: skip
        done = subprocess.run(command, cwd=work, env=cli_env(), capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        image = re.search(r"Image ID: (sha256:[0-9a-f]{64})", done.stdout)
        assert image, done.stdout
        built.append(image.group(1))
        runs[tool] = (done.stdout, image.group(1), work)

    (p_out, p_image, p_work), (o_out, o_image, o_work) = runs["packer"], runs["imagesmith"]
    assert normalise(o_out) == normalise(p_out)
    for name in ("tagged.json", "committed.json"):
        assert manifest_shape(o_work / name) == manifest_shape(p_work / name), name
    assert json.loads((o_work / "committed.json").read_text())["builds"][0]["artifact_id"] == (
        o_image
    )

    assert listing(docker_client, o_image) == listing(docker_client, p_image)
    theirs = docker_client.inspect_image(p_image)["Config"]
    mine = docker_client.inspect_image(o_image)["Config"]
    for key in ("Env", "Labels", "ExposedPorts", "WorkingDir", "User", "Volumes"):
        assert mine.get(key) == theirs.get(key), key
    # The documented difference: imagesmith keeps the base image's process.
    base = docker_client.inspect_image(base_image)["Config"]
    assert (theirs.get("Entrypoint"), theirs.get("Cmd")) == (["/bin/sh"], None)
    assert (mine.get("Entrypoint"), mine.get("Cmd")) == (base["Entrypoint"], base["Cmd"])
    assert base["Cmd"] == ["sh", "-c", "echo base"]


def test_both_build_on_the_daemon_of_the_current_docker_context(
    base_image: str, tmp_path: Path
) -> None:
    """With no DOCKER_HOST, packer's docker command uses the current docker context;
    imagesmith uses the same daemon. The context's daemon requires the context's own
    client certificate, so a build can only succeed through it."""
    certs, config = tmp_path / "certs", tmp_path / "docker-config"
    certs.mkdir()
    server = tls_daemon(certs)
    template = {"builders": [{"type": "docker", "image": base_image, "pull": False,
                              "discard": True, "run_command": RUN}],
                "provisioners": [{"type": "shell", "inline": ["echo in the context"]}]}  # fmt: skip
    (tmp_path / "t.json").write_text(json.dumps(template))
    env = {k: v for k, v in cli_env(DOCKER_CONFIG=str(config)).items() if k != "DOCKER_HOST"}
    for tool in ("packer", "imagesmith"):
        accepted: list[socket.socket] = []
        with forwarder(server, accepted) as port:
            docker_context(config, f"builder-{tool}", f"tcp://127.0.0.1:{port}", certs)
            (config / "config.json").write_text(json.dumps({"currentContext": f"builder-{tool}"}))
            command = (["packer", "build", "-color=false", "t.json"] if tool == "packer"
                       else cli(tmp_path / "t.json"))  # fmt: skip
            done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, tool + ":\n" + done.stdout + done.stderr
        assert "    docker: in the context" in done.stdout.splitlines(), done.stdout
        assert accepted, f"{tool} did not build through the context's daemon"

"""Differential tests: the same work through packer 1.6.6 and through imagesmith.

The provisioning is the shell commands and upload a ``shell`` and ``file``
provisioner would do; the images must hold the same files with the same modes and
owners, and the same config, except for the documented difference: imagesmith keeps
the base image's ENTRYPOINT and CMD where packer leaves ``/bin/sh`` and no CMD.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import Step, run_build

pytestmark = [pytest.mark.packer, pytest.mark.docker]

BASE = "imagesmith-test/busybox-diff:1"
COMMANDS = ["mkdir -p /opt/app", "echo v1 > /opt/app/version", "chmod 640 /opt/app/version"]
CHANGES = ["ENV MODE=prod", "LABEL team=img", "EXPOSE 8080", "WORKDIR /opt/app"]


@pytest.fixture(scope="module")
def base_image(docker_client: Any, busybox_image: str) -> str:
    cid = docker_client.create_container(busybox_image, entrypoint=["/bin/true"])["Id"]
    docker_client.commit(cid, repository=BASE.split(":")[0], tag="1", changes=[
        "ENV APP=1", "USER root", 'CMD ["sh", "-c", "echo base"]', "LABEL base=yes",
    ])  # fmt: skip
    docker_client.remove_container(cid)
    return BASE


def listing(client: Any, image: str) -> list[str]:
    cid = client.create_container(
        image, entrypoint=["/bin/sh", "-c", "stat -c '%n %a %u:%g %s' /opt/app /opt/app/*"],
        host_config=client.create_host_config(network_mode="none"),
    )["Id"]  # fmt: skip
    client.start(cid)
    client.wait(cid)
    out = client.logs(cid).decode().splitlines()
    client.remove_container(cid)
    return out


def test_same_files_and_config_as_packer(
    docker_client: Any, base_image: str, tmp_path: Path
) -> None:
    packer = shutil.which("packer")
    if packer is None:
        pytest.skip("packer is not installed")
    (tmp_path / "conf.txt").write_text("key=value\n")
    template = {
        "builders": [{
            "type": "docker", "image": base_image, "pull": False, "commit": True,
            "changes": CHANGES,
            "run_command": ["-d", "-i", "-t", "--network", "none", "--entrypoint=/bin/sh",
                            "--", "{{.Image}}"],
        }],
        "provisioners": [
            {"type": "shell", "inline": COMMANDS},
            {"type": "file", "source": "conf.txt", "destination": "/opt/app/conf.txt"},
        ],
        "post-processors": [{"type": "manifest", "output": "packer-manifest.json"}],
    }  # fmt: skip
    (tmp_path / "t.json").write_text(json.dumps(template))
    env = dict(os.environ, CHECKPOINT_DISABLE="1")
    done = subprocess.run([packer, "build", "-color=false", "t.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout
    manifest = json.loads((tmp_path / "packer-manifest.json").read_text())
    packer_image = manifest["builds"][0]["artifact_id"]

    ours = run_build(
        {"image": base_image, "pull": False, "commit": True, "changes": CHANGES},
        [*COMMANDS, Step(upload=(str(tmp_path / "conf.txt"), "/opt/app/conf.txt"))],
    )
    assert ours.result.exit_code == 0, ours.output
    our_image = ours.output.split("Image ID: ")[1].split()[0]
    # The artifact id is what the manifest records: same shape as packer's.
    assert packer_image.startswith("sha256:") and our_image.startswith("sha256:")

    try:
        assert listing(docker_client, our_image) == listing(docker_client, packer_image)
        theirs = docker_client.inspect_image(packer_image)["Config"]
        mine = docker_client.inspect_image(our_image)["Config"]
        for key in ("Env", "Labels", "ExposedPorts", "WorkingDir", "User", "Volumes"):
            assert mine.get(key) == theirs.get(key), key
        # The documented difference: imagesmith keeps the base image's process.
        base = docker_client.inspect_image(base_image)["Config"]
        assert (theirs.get("Entrypoint"), theirs.get("Cmd")) == (["/bin/sh"], None)
        assert (mine.get("Entrypoint"), mine.get("Cmd")) == (base["Entrypoint"], base["Cmd"])
        assert base["Cmd"] == ["sh", "-c", "echo base"]
    finally:
        docker_client.remove_image(our_image, force=True)
        docker_client.remove_image(packer_image, force=True)

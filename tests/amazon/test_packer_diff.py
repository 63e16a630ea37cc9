"""The same template through ``packer build`` (1.6.6) and ``imagesmith build``, against
the same moto + OpenSSH: the same output lines, and the same AMIs in the emulator."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from amazon.harness import Leftovers, Project, imagesmith, leftovers, normalise, run, tags_of
from fixtures.moto import FaultProxy, MotoServer

pytestmark = [
    pytest.mark.aws,
    pytest.mark.ssh,
    pytest.mark.packer,
    pytest.mark.skipif(shutil.which("packer") is None, reason="packer 1.6.6 is not installed"),
]


def _image(moto: MotoServer, name: str) -> dict[str, Any]:
    (image,) = [
        i for i in moto.ec2().describe_images(Owners=["self"])["Images"] if i["Name"] == name
    ]
    return dict(image)


def _shape(moto: MotoServer, image: dict[str, Any]) -> dict[str, Any]:
    """What a build decides about its AMI: tags, devices, snapshots and their tags."""
    snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    described = moto.ec2().describe_snapshots(SnapshotIds=snapshots)["Snapshots"]
    return {
        "tags": tags_of(image),
        "devices": sorted(
            (m["DeviceName"], m.get("Ebs", {}).get("VolumeSize"))
            for m in image["BlockDeviceMappings"]
        ),
        "root": image["RootDeviceName"],
        "virtualization": image["VirtualizationType"],
        "snapshot_tags": sorted(sorted(tags_of(s).items()) for s in described),
    }


@pytest.mark.parametrize("variant", ["seed", "copy-and-share", "failing-provisioner"])
def test_packer_and_imagesmith_build_the_same(
    project: Project, aws_env: dict[str, str], aws_proxy: FaultProxy, emulator: MotoServer,
    baseline: Leftovers, variant: str,
) -> None:  # fmt: skip
    outputs: dict[str, list[str]] = {}
    shapes: dict[str, dict[str, Any]] = {}
    kept: list[str] = []
    calls: dict[str, list[str]] = {}
    for tool in ("packer", "imagesmith"):
        name = f"diff-{tool}-{project.builder['ami_name'].split()[-1]}"
        template = project.variant(ami_name=name)
        if variant == "copy-and-share":
            template = project.variant(
                ami_name=name,
                ami_users=["210987654321"],
                run_tags={"Owner": "me", "Src": "{{ .SourceAMI }}"},
                snapshot_tags={"Snap": "yes"},
            )
        elif variant == "failing-provisioner":
            template["provisioners"] = [{"type": "shell", "inline": ["echo failing", "exit 4"]}]
        aws_proxy.calls.clear()
        cmd = (
            ["packer", "build", "-color=false"]
            if tool == "packer"
            else imagesmith("build", "-color=false")
        )
        result = run(
            [*cmd, str(project.write(template, f"{tool}.json"))], cwd=project.root, env=aws_env
        )
        assert result.rc == (1 if variant == "failing-provisioner" else 0), result.out
        text = result.out.replace(name, "diff-<tool>")
        outputs[tool] = [
            line for line in normalise(text)
            # (the shell provisioner adds which script failed to Packer's error text)
            if not line.startswith(("Build 'amazon-ebs' errored", "--> amazon-ebs: Script"))
        ]  # fmt: skip
        calls[tool] = aws_proxy.actions()
        if variant != "failing-provisioner":
            image = _image(emulator, name)
            kept.append(image["ImageId"])
            shapes[tool] = _shape(emulator, image)

    assert outputs["imagesmith"] == outputs["packer"]
    assert shapes.get("imagesmith") == shapes.get("packer")
    assert leftovers(emulator, keep_images=tuple(kept), baseline=baseline).empty()
    # Never more API calls than Packer (the journal's untagging call aside).
    assert len(calls["imagesmith"]) - calls["imagesmith"].count("DeleteTags") <= len(
        calls["packer"]
    )

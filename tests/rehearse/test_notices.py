"""Notices: what a rehearsal says it cannot do faithfully, from the decoded template."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from imagesmith.rehearse import notices
from imagesmith.rehearse.machine import loop_volumes_supported


def _config(tmp_path: Path, **keys: Any) -> Any:
    from imagesmith.template.planner import load_plan

    builder = {
        "type": "amazon-ebs",
        "region": "us-east-1",
        "source_ami": "ami-5e414e24",
        "instance_type": "t2.micro",
        "ssh_username": "ec2-user",
        "ami_name": "notices",
        **keys,
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"builders": [builder]}))
    plan = load_plan(
        str(path),
        vars=[],
        var_files=[],
        only=[],
        except_=[],
        debug=False,
        force=False,
        on_error="cleanup",
        run_uuid=str(uuid.uuid4()),
    )
    assert not plan.has_errors, plan.diagnostics
    return plan.builds[0].builder.config


def test_plain_build_only_hears_about_its_instance_type(tmp_path: Path) -> None:
    assert notices.build_notices("b", _config(tmp_path)) == [
        "b: instance_type t2.micro is not rehearsed: the instance is a container sharing "
        "this machine's kernel, processors and memory."
    ]


def test_every_unfaithful_setting_is_named_once(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        launch_block_device_mappings=[
            {"device_name": "/dev/xvdcy", "volume_size": 20, "volume_type": "gp2"},
            {"device_name": "/dev/xvdcz", "no_device": True},
        ],
        user_data="#cloud-config\n",
        ami_regions=["us-west-2", "eu-west-1"],
        iam_instance_profile="builder",
        ssh_password="secret",
    )
    notes = notices.build_notices("ecs", config)
    assert notices.extra_volumes(config) == [("/dev/xvdcy", 20)]
    volume = next(n for n in notes if "/dev/xvdcy (20 GiB)" in n)
    assert ("loop devices" in volume) == loop_volumes_supported()
    assert "ecs: user_data is not run: the stand-in has no cloud-init." in notes
    assert any("copies to us-west-2, eu-west-1 exist only in the emulator" in n for n in notes)
    assert any("instance profile exists only in the emulator" in n for n in notes)
    assert any("ssh_password logins are not rehearsed" in n for n in notes)
    assert not any("secret" in n for n in notes)
    assert notices.unique([*notes, *notes]) == notes

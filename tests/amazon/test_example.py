"""examples/ecs-ami: its templates validate, its scripts parse, and its Makefile hands
temporary STS credentials to the build (with a stand-in ``aws`` and ``imagesmith``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from amazon.harness import imagesmith, run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ecs-ami"


@pytest.mark.parametrize("template", ["packer.json", "local.json"])
def test_templates_validate(template: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = run(imagesmith("validate", template), cwd=EXAMPLE, env=env)
    assert (result.rc, result.out) == (0, "")


@pytest.mark.parametrize("script", sorted(p.name for p in (EXAMPLE / "scripts").glob("*.sh")))
def test_scripts_parse(script: str) -> None:
    subprocess.run(["bash", "-n", str(EXAMPLE / "scripts" / script)], check=True)
    subprocess.run(["bash", "-n", str(EXAMPLE / "files" / "firstrun.sh")], check=True)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("args", "sts_call"),
    [
        ([], "sts get-session-token --duration-seconds 3600"),
        (
            ["ROLE_ARN=arn:aws:iam::123456789012:role/builder", "DURATION=900"],
            "sts assume-role --role-arn arn:aws:iam::123456789012:role/builder "
            "--role-session-name ecs-ami-",
        ),
    ],
    ids=["session-token", "assume-role"],
)
def test_make_build_passes_temporary_credentials(
    tmp_path: Path, args: list[str], sts_call: str
) -> None:
    calls = tmp_path / "aws-calls.txt"
    aws = tmp_path / "aws"
    aws.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\nprintf "ASIATEMPORARY\\ttemp-secret\\ttemp-token\\n"\n'
    )
    build = tmp_path / "imagesmith"
    build.write_text(
        '#!/bin/sh\necho "imagesmith $* $AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY '
        '$AWS_SESSION_TOKEN"\n'
    )
    aws.chmod(0o755)
    build.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

    result = subprocess.run(
        ["make", "-s", "-C", str(EXAMPLE), "build", f"AWS={aws}", f"IMAGESMITH={build}", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout.strip() == (
        "imagesmith build packer.json ASIATEMPORARY temp-secret temp-token"
    )
    assert calls.read_text().startswith(sts_call)

"""Docker builder and post-processor configuration: Packer's errors and ours."""

from __future__ import annotations

from typing import Any

import pytest
from docker_helpers import builder, post_processor

from imagesmith.errors import ConfigError
from imagesmith.postprocessors.docker_push import DockerPushPostProcessor
from imagesmith.postprocessors.docker_tag import DockerTagPostProcessor


def errors(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        builder(raw)
    return exc.value.errors


def test_empty_config_gives_packers_two_errors() -> None:
    assert errors({}) == [
        "Image must be specified",
        "No instructions given for handling the artifact; expected commit, discard, or export_path",
    ]


def test_conflicting_outcomes_export_dir_and_ecr(tmp_path: Any) -> None:
    errs = errors({"image": "x", "commit": True, "discard": True, "export_path": str(tmp_path),
                   "ecr_login": True})  # fmt: skip
    assert errs == [
        "Cannot specify more than one of commit, discard, and export_path",
        "export_path must be a file, not a directory",
        "ECR login requires login server to be provided.",
    ]


def test_changes_are_checked_at_validate_time() -> None:
    (err,) = errors({"image": "x", "commit": True, "changes": ["ENV A=1", "FOO bar"]})
    assert "'FOO bar' is not an instruction docker commit accepts" in err


def test_unmappable_run_command_flag_is_a_config_error() -> None:
    (err,) = errors({"image": "x", "commit": True, "run_command": ["-p", "1:1", "{{.Image}}"]})
    assert err.startswith("run_command: the docker run flag -p cannot be mapped")


def test_ssh_communicator_is_refused_clearly() -> None:
    (err,) = errors({"image": "x", "commit": True, "communicator": "ssh"})
    assert 'communicator "ssh" is not supported by the docker builder' in err


def test_ecr_login_server_must_be_an_ecr_address() -> None:
    (err,) = errors({"image": "x", "commit": True, "ecr_login": True, "login_server": "r.io"})
    assert "is not an Amazon ECR registry address" in err


def test_valid_config_with_every_option() -> None:
    b = builder({
        "image": "x", "pull": False, "commit": True, "changes": ["CMD [\"a\"]"],
        "message": "m", "author": "a", "run_command": ["-d", "-i", "-t", "{{.Image}}", "sh"],
        "volumes": {"/tmp": "/x"}, "container_dir": "/pf", "privileged": True,
        "cap_add": ["A"], "cap_drop": ["B"], "tmpfs": ["/t"], "device": ["/dev/null"],
        "exec_user": "root", "fix_upload_owner": False, "login": False, "login_server": "s",
        "login_username": "u", "login_password": "p", "platform": "linux/amd64",
        "ecr_login": False, "aws_access_key": "a", "aws_secret_key": "b", "aws_token": "t",
        "aws_profile": "p",
    })  # fmt: skip
    args, spec = b._run_spec()
    assert args[-2:] == ["x", "sh"] and spec.image == "x" and spec.privileged


def test_docker_tag_needs_a_repository() -> None:
    with pytest.raises(ConfigError, match="repository must be specified"):
        post_processor(DockerTagPostProcessor, {"tags": ["a"]})


def test_docker_push_ecr_needs_a_login_server() -> None:
    with pytest.raises(ConfigError, match="ECR login requires login server"):
        post_processor(DockerPushPostProcessor, {"ecr_login": True})

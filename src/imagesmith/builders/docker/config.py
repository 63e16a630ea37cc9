"""The docker builder's template options and their checks (Packer 1.6.6's set).

Differences from Packer, on purpose:

- ``changes`` are checked at validate time (Packer let ``docker commit`` reject them
  at the end of the build).
- ``run_command`` flags are checked at validate time: each must map onto a
  container-create option (see ``runflags``).
- ``platform`` (Packer 1.7) is accepted: it selects the platform to pull and run.
- ``container_dir`` is accepted and unused: files move as tar streams through the API,
  so there is no shared temporary folder to mount.
- ``communicator`` may be ``docker`` (the default) or ``none``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from imagesmith.builders.docker.ecr import AwsAccessConfig, check_server
from imagesmith.builders.docker.runflags import (
    DEFAULT_RUN_COMMAND,
    RunCommandError,
    RunSpec,
    builder_flags,
    parse_run_command,
)
from imagesmith.communicators.config import CommunicatorConfig
from imagesmith.config.fields import opt

# What ``docker commit --change`` accepts (the daemon's list).
COMMIT_INSTRUCTIONS = (
    "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL",
    "USER", "VOLUME", "WORKDIR",
)  # fmt: skip


@dataclass
class DockerConfig:
    comm: CommunicatorConfig = opt(default_factory=CommunicatorConfig, squash=True)
    aws: AwsAccessConfig = opt(default_factory=AwsAccessConfig, squash=True)

    image: str = ""
    pull: bool = True
    commit: bool = False
    discard: bool = False
    export_path: str = ""
    changes: list[str] = field(default_factory=list)
    message: str = ""
    author: str = ""
    # Rendered when the container starts, with {{.Image}} (Packer excludes it from
    # decode-time interpolation too).
    run_command: list[str] = opt(default_factory=list, late=True)
    volumes: dict[str, str] = field(default_factory=dict)
    container_dir: str = ""
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    device: list[str] = field(default_factory=list)
    exec_user: str = ""
    fix_upload_owner: bool = True
    windows_container: bool = False
    pty: bool = False
    platform: str = ""

    login: bool = False
    login_server: str = ""
    login_username: str = ""
    login_password: str = opt("", secret=True)
    ecr_login: bool = False

    @property
    def communicator(self) -> str:
        return self.comm.communicator or "docker"

    def run_args(self, rendered_run_command: list[str]) -> list[str]:
        """Every ``docker run`` argument: the builder's flags, then run_command."""
        flags = builder_flags(
            devices=self.device,
            cap_add=self.cap_add,
            cap_drop=self.cap_drop,
            privileged=self.privileged,
            tmpfs=self.tmpfs,
            volumes=self.volumes,
        )
        return flags + (rendered_run_command or default_run_command(self.image))


def default_run_command(image: str) -> list[str]:
    return [image if a == "{{.Image}}" else a for a in DEFAULT_RUN_COMMAND]


def check_changes(changes: list[str]) -> list[str]:
    errs = []
    for change in changes:
        word = change.strip().split(None, 1)[0] if change.strip() else ""
        if word.upper() not in COMMIT_INSTRUCTIONS:
            errs.append(
                f"changes: {change!r} is not an instruction docker commit accepts; use one "
                f"of {', '.join(COMMIT_INSTRUCTIONS)}"
            )
    return errs


def validate(c: DockerConfig, run_spec: RunSpec | Exception | None) -> list[str]:
    """Every problem with ``c``, Packer's texts first in Packer's order."""
    errs: list[str] = []
    kind = c.communicator
    if kind not in ("docker", "none"):
        errs.append(
            f'communicator "{kind}" is not supported by the docker builder; use "docker" '
            '(the default) or "none"'
        )
    if not c.image:
        errs.append("Image must be specified")
    chosen = [bool(c.export_path), c.commit, c.discard]
    if sum(chosen) > 1:
        errs.append("Cannot specify more than one of commit, discard, and export_path")
    if not any(chosen):
        errs.append(
            "No instructions given for handling the artifact; expected commit, discard, or "
            "export_path"
        )
    if c.export_path and os.path.isdir(c.export_path):
        errs.append("export_path must be a file, not a directory")
    if c.ecr_login:
        problem = check_server(c.login_server)
        if problem:
            errs.append(problem)
    if c.windows_container:
        errs.append(
            "windows_container is not supported by imagesmith: it builds Linux containers "
            "through the Docker Engine API"
        )
    errs += check_changes(c.changes)
    if isinstance(run_spec, RunCommandError):
        errs.append(str(run_spec))
    return errs


def parse_run(c: DockerConfig, rendered: list[str]) -> RunSpec:
    return parse_run_command(c.run_args(rendered))

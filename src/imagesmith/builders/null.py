"""``null``: provision a machine that already exists, over SSH (Packer's null builder).

Nothing is created or destroyed: the build connects, runs the provisioners and
returns an artifact that holds nothing. With ``communicator: none`` it only runs the
provisioners that need no machine (``shell-local``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagesmith.communicators.config import CommunicatorConfig
from imagesmith.config.fields import opt
from imagesmith.engine.artifact import Artifact
from imagesmith.errors import ConfigError
from imagesmith.plugins import Builder

if TYPE_CHECKING:
    from imagesmith.engine.build import BuildRun

BUILDER_ID = "fnoeding.null"
ARTIFACT_ID = "Null"
ARTIFACT_TEXT = "Did not export anything. This is the null builder"


@dataclass
class NullConfig:
    comm: CommunicatorConfig = opt(default_factory=CommunicatorConfig, squash=True)


class NullBuilder(Builder):
    type_name = "null"
    builder_id = BUILDER_ID
    Config: ClassVar[type[NullConfig]] = NullConfig
    config: NullConfig

    def prepare(self) -> list[str]:
        comm = self.config.comm
        errs = comm.validate()
        if comm.type != "none":
            errs += _connection_errors(comm)
        if errs:
            raise ConfigError(errs)
        return []

    async def run(self, build: BuildRun) -> Artifact | None:
        from imagesmith.communicators.connect import StepConnect

        comm = self.config.comm
        connect: StepConnect[None] = StepConnect(comm, host=lambda _: comm.host())
        build.generated_data["ID"] = ARTIFACT_ID
        await build.run_steps([connect, build.provision_step(lambda _: connect.communicator)], None)
        return Artifact(
            builder_id=BUILDER_ID,
            id=ARTIFACT_ID,
            text=ARTIFACT_TEXT,
            generated_data=dict(build.generated_data),
        )


def _connection_errors(comm: CommunicatorConfig) -> list[str]:
    """The null builder's own checks: a host, a user and exactly one way to log in."""
    errs = []
    if not comm.host():
        errs.append("a Host must be specified, please reference your communicator documentation")
    if not comm.user():
        errs.append(
            "a Username must be specified, please reference your communicator documentation"
        )
    key, password, agent = comm.ssh_private_key_file, comm.password(), comm.ssh_agent_auth
    if not agent and not password and not key:
        errs.append(
            "one authentication method must be specified, "
            "please reference your communicator documentation"
        )
    if (agent and (comm.ssh_password or key)) or (comm.ssh_password and key):
        errs.append(
            "only one of ssh_agent_auth, ssh_password, and ssh_private_key_file must be specified"
        )
    return errs

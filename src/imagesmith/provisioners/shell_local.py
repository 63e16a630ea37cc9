"""``shell-local`` provisioner: run scripts on the machine running the build.

The options, their checks and the way scripts run are shared with the post-processor
of the same name (see ``localshell``). The provisioner runs with the build's data, so
``{{build `ID`}}`` and ``{{.ID}}`` give the builder's values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from imagesmith.plugins import Provisioner
from imagesmith.provisioners.localshell import (
    DECODE_PREFIX,
    ShellLocalConfig,
    plan_scripts,
    run_scripts,
)

if TYPE_CHECKING:
    from imagesmith.engine.context import ProvisionContext


class ShellLocalProvisioner(Provisioner):
    type_name = "shell-local"
    Config: ClassVar[type[ShellLocalConfig]] = ShellLocalConfig
    config: ShellLocalConfig
    #: Packer's shell-local wraps its decoding errors in this prefix.
    decode_error_prefix: ClassVar[str] = DECODE_PREFIX

    def prepare(self) -> list[str]:
        self.plan = plan_scripts(self.config)
        return []

    async def provision(self, ctx: ProvisionContext) -> None:
        await run_scripts(
            self.plan,
            ui=ctx.ui,
            info=self.info,
            generated=ctx.generated_data,
            # A provisioner timeout cancels the script; Packer reports that as the
            # script's failure to run.
            cancel_is_error=True,
        )

"""``shell-local`` post-processor: run local scripts after the build, with its artifact.

It takes the provisioner's options (see ``localshell``), runs with the data of the
artifact it receives, and passes that artifact on unchanged; its input is always
kept. A one-element ``execute_command`` is run through ``sh -c``, the form this
post-processor accepted before it shared its code with the provisioner.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from imagesmith.plugins import PostProcessor
from imagesmith.provisioners.localshell import (
    DECODE_PREFIX,
    ShellLocalConfig,
    plan_scripts,
    run_scripts,
)

if TYPE_CHECKING:
    from imagesmith.engine.artifact import Artifact
    from imagesmith.ui.base import Ui


class ShellLocalPostProcessor(PostProcessor):
    type_name = "shell-local"
    Config: ClassVar[type[ShellLocalConfig]] = ShellLocalConfig
    config: ShellLocalConfig
    keep_default = True
    force_keep = True
    #: Packer's shell-local wraps its decoding errors in this prefix.
    decode_error_prefix: ClassVar[str] = DECODE_PREFIX

    def prepare(self) -> list[str]:
        config = self.config
        if len(config.execute_command) == 1:
            config = dataclasses.replace(
                config, execute_command=["sh", "-c", *config.execute_command]
            )
        self.plan = plan_scripts(config)
        return []

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        await run_scripts(
            self.plan,
            ui=ui,
            info=self.info,
            generated=artifact.state("generated_data") or {},
            cancel_is_error=False,
        )
        return artifact

"""``breakpoint`` provisioner: pause the build until the user presses enter.

Useful to inspect a machine half-way through provisioning. Without a terminal to ask
on, or in machine-readable mode, it fails the build as Packer does rather than
pausing forever or not at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from imagesmith.errors import BuildError
from imagesmith.plugins import Provisioner

if TYPE_CHECKING:
    from imagesmith.engine.context import ProvisionContext
    from imagesmith.ui.base import Ui


@dataclass
class BreakpointConfig:
    note: str = ""
    disable: bool = False


class BreakpointProvisioner(Provisioner):
    type_name = "breakpoint"
    Config: ClassVar[type[BreakpointConfig]] = BreakpointConfig
    config: BreakpointConfig

    async def provision(self, ctx: ProvisionContext) -> None:
        note = self.config.note
        if self.config.disable:
            if note:
                ctx.ui.say(f'Breakpoint provisioner with note "{note}" disabled; continuing...')
            else:
                ctx.ui.say("Breakpoint provisioner disabled; continuing...")
            return

        if note:
            ctx.ui.say(f'Pausing at breakpoint provisioner with note "{note}".')
        else:
            ctx.ui.say("Pausing at breakpoint provisioner.")
        problem = cannot_ask(ctx.ui)
        if problem:
            raise BuildError(f"Error asking for input: {problem}")
        await ctx.ui.ask("Press enter to continue.")


def cannot_ask(ui: Ui) -> str | None:
    """Why ``ui.ask`` would not reach a person (Packer's wording), or None if it can.

    ``Ui.ask`` answers "" at once when it cannot ask, which suits prompts that have a
    default; a breakpoint has none, so it finds out beforehand.
    """
    # The Ui protocol does not say whether it is machine-readable; the console's
    # targeted UI knows.
    console = getattr(ui, "console", None)
    if getattr(console, "machine_readable", False):
        return "machine-readable UI can't ask"
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return "no available tty"
    os.close(fd)
    return None

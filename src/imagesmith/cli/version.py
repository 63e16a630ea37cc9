"""``imagesmith version``: imagesmith's version and the Packer release it matches."""

from __future__ import annotations

import imagesmith
from imagesmith.cli.common import GlobalOptions, make_console

SYNOPSIS = "Prints the imagesmith version"

HELP = "Prints the imagesmith version, and the Packer version whose templates it runs."


def run(argv: list[str], console_options: GlobalOptions) -> int:
    # Like Packer's, the command takes no flags and ignores its arguments.
    del argv
    console = make_console(console_options)
    # The record types are Packer's (its "prelease" spelling included), so scripts
    # that read `packer version -machine-readable` read these too.
    console.machine("", "version", imagesmith.__version__)
    console.machine("", "version-prelease", "")
    console.machine("", "version-commit", "")
    console.machine("", "version-packer-compatible", imagesmith.PACKER_COMPAT_VERSION)
    console.say(
        f"imagesmith v{imagesmith.__version__} "
        f"(Packer v{imagesmith.PACKER_COMPAT_VERSION} compatible)"
    )
    return 0

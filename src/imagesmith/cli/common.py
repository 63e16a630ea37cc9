"""What every command shares: global options, the Console, help and error printing.

As in Packer 1.6.6, everything a command prints goes to stdout through the UI,
errors included: help after a usage error is a ``say``, the error an ``error``, and
both become records in ``-machine-readable`` mode. Only ``-h`` prints the help as
plain text whatever the mode.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagesmith.engine.plan import Diagnostic
    from imagesmith.template.model import Template
    from imagesmith.ui.console import Console

HELP_FLAGS = ("-h", "-help", "--help")


@dataclass
class GlobalOptions:
    """Options that apply to every command, taken from argv and the environment
    before the command runs."""

    #: ``-machine-readable`` appeared anywhere in argv.
    machine_readable: bool = False
    #: ``IMAGESMITH_DEBUG`` is set: internal errors show their traceback.
    debug: bool = False

    @classmethod
    def from_env(cls, *, machine_readable: bool = False) -> GlobalOptions:
        return cls(
            machine_readable=machine_readable, debug=bool(os.environ.get("IMAGESMITH_DEBUG"))
        )


def make_console(options: GlobalOptions, *, color: bool | None = False) -> Console:
    """The Console of a command. Only ``build`` colours its output (as Packer)."""
    from imagesmith.ui.console import Console

    return Console(machine_readable=options.machine_readable, color=color)


def wants_help(argv: Sequence[str]) -> bool:
    """Whether ``-h``/``-help``/``--help`` appears before any ``--`` (Packer's rule)."""
    for arg in argv:
        if arg == "--":
            return False
        if arg in HELP_FLAGS:
            return True
    return False


def print_plain(text: str) -> None:
    """Text written as it is, never as machine-readable records (help, versions)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def usage_error(console: Console, help_text: str, message: str = "") -> int:
    """The help, then what was wrong with the arguments; rc 1."""
    console.say(help_text)
    if message:
        console.error(message)
    return 1


def print_diagnostics(console: Console, diagnostics: Sequence[Diagnostic]) -> int:
    """Print diagnostics as one message (an error if any is); the exit code they mean."""
    if not diagnostics:
        return 0
    console.diagnostics(diagnostics)
    return 1 if any(d.severity == "error" for d in diagnostics) else 0


def template_and_values(
    console: Console, command: str, help_text: str, argv: list[str]
) -> tuple[Template, dict[str, str]] | int:
    """For ``inspect`` and ``console``: parse ``-var``/``-var-file``, read the template
    (Packer's built-in one unless exactly one path is given) and the given values.

    Returns the exit code instead when a usage or template error was printed.
    """
    from imagesmith.cli.flags import FlagError, FlagSet
    from imagesmith.errors import TemplateError
    from imagesmith.template.loader import TINIEST_TEMPLATE, load_template, parse_template
    from imagesmith.template.variables import given_values

    flags = FlagSet(command)
    flags.vars("var")
    flags.multi("var-file")
    flags.string("config-type", "")
    try:
        values, positional = flags.parse(argv)
    except FlagError as exc:
        return usage_error(console, help_text, str(exc))
    try:
        if len(positional) == 1:
            tpl = load_template(positional[0])
        else:
            tpl = parse_template(TINIEST_TEMPLATE, path=None, display_name="")
        # Read (and check) the var files even where the command shows no values.
        return tpl, given_values(values["var-file"], values["var"])
    except TemplateError as exc:
        console.error(str(exc))
        return 1

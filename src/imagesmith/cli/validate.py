"""``imagesmith validate [options] TEMPLATE``: check a template without building.

Parses the template, reads the var files, initializes (variables, ``min_packer_version``,
``only``/``except``) and prepares every selected build, printing each problem found.
Success prints nothing (Packer 1.6.6).
"""

from __future__ import annotations

import os

from imagesmith.cli.common import GlobalOptions, make_console, print_diagnostics, usage_error
from imagesmith.cli.flags import FlagError, FlagSet
from imagesmith.errors import TemplateError

SYNOPSIS = "check that a template is valid"

HELP = """\
Usage: imagesmith validate [options] TEMPLATE

  Checks the template is valid by parsing the template and also
  checking the configuration with the various builders, provisioners, etc.

  If it is not valid, the errors will be shown and the command will exit
  with a non-zero exit status. If it is valid, it will exit with a zero
  exit status.

Options:

  -syntax-only           Only check syntax. Do not verify config of the template.
  -except=foo,bar,baz    Validate all builds other than these.
  -only=foo,bar,baz      Validate only these builds.
  -var 'key=value'       Variable for templates, can be used multiple times.
  -var-file=path         JSON or HCL2 file containing user variables. [ Note that even in HCL mode this expects file to contain JSON, a fix is comming soon ]"""  # noqa: E501 - Packer's text


def flag_set() -> FlagSet:
    flags = FlagSet("validate")
    flags.bool("syntax-only", False)
    flags.multi("except", split_commas=True)
    flags.multi("only", split_commas=True)
    flags.vars("var")
    flags.multi("var-file")
    flags.string("config-type", "")
    return flags


def random_uuid() -> str:
    """A version-4 UUID without importing ``uuid`` (which loads ``platform``)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def run(argv: list[str], console_options: GlobalOptions) -> int:
    console = make_console(console_options)
    try:
        values, positional = flag_set().parse(argv)
    except FlagError as exc:
        return usage_error(console, HELP, str(exc))
    if len(positional) != 1:
        return usage_error(console, HELP)

    from imagesmith.template.loader import load_template
    from imagesmith.template.planner import PlanOptions, plan_template
    from imagesmith.template.variables import given_values

    try:
        tpl = load_template(positional[0])
        given = given_values(values["var-file"], values["var"])
    except TemplateError as exc:
        console.error(str(exc))
        return 1
    if values["syntax-only"]:
        console.say("Syntax-only check passed. Everything looks okay.")
        return 0

    options = PlanOptions(values["only"], values["except"], run_uuid=random_uuid())
    plan = plan_template(tpl, given, options)
    console.add_secrets(plan.secrets)
    return print_diagnostics(console, plan.diagnostics)

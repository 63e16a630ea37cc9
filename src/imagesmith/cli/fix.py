"""``imagesmith fix [-validate=true] TEMPLATE``: print the template rewritten for Packer
1.6.6 (see ``imagesmith.template.fix``), then check that the result parses and is
consistent."""

from __future__ import annotations

from imagesmith.cli.common import GlobalOptions, make_console, usage_error
from imagesmith.cli.flags import FlagError, FlagSet
from imagesmith.errors import TemplateError
from imagesmith.template.fix import FIXERS

SYNOPSIS = "fixes templates from old versions of packer"

_FIXER_LINES = "\n".join(f"  {name:<27}{synopsis}" for name, synopsis, _ in FIXERS)

HELP = f"""\
Usage: imagesmith fix [options] TEMPLATE

  Reads the JSON template and attempts to fix known backwards
  incompatibilities. The fixed template will be outputted to standard out.

  If the template cannot be fixed due to an error, the command will exit
  with a non-zero exit status. Error messages will appear on standard error.

Fixes that are run (in order):

{_FIXER_LINES}

Options:

  -validate=true      If true (default), validates the fixed template."""

_AFTER_FAILURE = (
    "\n\nThis is usually caused by an error in the input template.\n"
    "Please fix the error and try again."
)


def run(argv: list[str], console_options: GlobalOptions) -> int:
    from imagesmith.template import jsonparse
    from imagesmith.template.fix import FixError, encode, fix_template
    from imagesmith.template.loader import go_os_error, is_hcl2_path, parse_template
    from imagesmith.template.planner import template_problems

    console = make_console(console_options)
    flags = FlagSet("fix")
    flags.bool("validate", True)
    try:
        values, positional = flags.parse(argv)
    except FlagError as exc:
        return usage_error(console, HELP, str(exc))
    if len(positional) != 1:
        return usage_error(console, HELP)
    path = positional[0]

    if is_hcl2_path(path):
        console.error("packer fix only works with JSON files for now.")
        return 1
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        console.error(f"Error opening template: {go_os_error('open', path, exc)}")
        return 1
    try:
        tpl = jsonparse.decode_first(data)
    except jsonparse.JSONSyntaxError as exc:
        console.error(f"Error parsing template: {exc.message}")
        return 1
    except jsonparse.JSONValueError as exc:
        console.error(f"Error parsing template: {exc}")
        return 1
    if not isinstance(tpl, dict):
        kind = {list: "array", str: "string", bool: "bool"}.get(type(tpl), "number")
        if tpl is None:
            console.error(f"Error parsing template: {path} holds null, not a template object.")
        else:
            console.error(
                f"Error parsing template: json: cannot unmarshal {kind} into Go value of "
                "type map[string]interface {}"
            )
        return 1

    try:
        result = encode(fix_template(tpl))
    except FixError as exc:
        console.error(f"Error fixing: {exc}")
        return 1
    console.say(result)
    if not values["validate"]:
        return 0

    try:
        fixed = parse_template(result.encode(), path=None, display_name="")
    except TemplateError as exc:
        text = str(exc).removeprefix(exc.prefix)
        console.error(f"Error! Fixed template fails to parse: {text}{_AFTER_FAILURE}")
        return 1
    problems = template_problems(fixed)
    if problems:
        from imagesmith.errors import format_go_multierror

        text = format_go_multierror(problems)
        console.error(f"Error! Fixed template failed to validate: {text}{_AFTER_FAILURE}")
        return 1
    return 0

"""``imagesmith console [options] [TEMPLATE]``: evaluate template expressions.

Expressions see the template's user variables and ``template_dir``; ``env``,
``build_name``, ``build_type`` and ``packer_version`` fail as they do in Packer's
console. ``variables`` lists the variables, ``help`` prints the help, ``exit`` quits.

On a terminal each line is evaluated and printed at a ``> `` prompt. With standard
input piped, every line is evaluated but only the last result is printed, and errors
do not change the exit code (Packer 1.6.6). Where Packer silently evaluates with no
variables when the template cannot be initialized (a required variable unset, say),
this command first prints why, as a warning.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from imagesmith.cli.common import GlobalOptions, make_console, template_and_values

if TYPE_CHECKING:
    from imagesmith.template.model import Template
    from imagesmith.ui.console import Console

SYNOPSIS = "creates a console for testing variable interpolation"

HELP = """\
Usage: imagesmith console [options] [TEMPLATE]

  Creates a console for testing variable interpolation.
  If a template is provided, this command will load the template and any
  variables defined therein into its context to be referenced during
  interpolation.

Options:
  -var 'key=value'       Variable for templates, can be used multiple times.
  -var-file=path         JSON or HCL2 file containing user variables. [ Note that even in HCL mode this expects file to contain JSON, a fix is comming soon ]"""  # noqa: E501 - Packer's text

CONSOLE_HELP = """\
Packer console JSON Mode.
The Packer console allows you to experiment with Packer interpolations.
You may access variables in the Packer config you called the console with.

Type in the interpolation to test and hit <enter> to see the result.

"variables" will dump all available variables and their values.

"{{timestamp}}" will output the timestamp, for example "1559855090".

To exit the console, type "exit" and hit <enter>, or use Control-C.

/!\\ If you would like to start console in hcl2 mode without a config you can
use the --config-type=hcl2 option."""


class Evaluator:
    """Evaluates console input lines against one template's variables."""

    def __init__(self, tpl: Template, variables: Mapping[str, str]) -> None:
        from imagesmith.template.render import RenderContext

        self.variables = dict(variables)
        self.ctx = RenderContext(
            user_variables=self.variables,
            template_dir=tpl.template_dir,
            packer_version=False,
        )

    def evaluate(self, line: str) -> tuple[str, bool, str | None]:
        """(result, exit requested, error text)."""
        from imagesmith.template.render import RenderError, render

        if line == "":
            return "", False, None
        if line == "exit":
            return "", True, None
        if line == "help":
            return CONSOLE_HELP, False, None
        if line == "variables":
            listed = "".join(f"{k}: {v},\n" for k, v in sorted(self.variables.items()))
            return "\n" + listed, False, None
        try:
            return render(line, self.ctx), False, None
        except RenderError as exc:
            return "", False, str(exc)


def interpolation_error(console: Console, detail: str) -> None:
    """Packer prints these diagnostics with no severity: ``???????`` and rc 0."""
    from imagesmith.ui.console import wrap_words

    console.say(f"???????: Interpolation error\n\n{wrap_words(detail, 80)}\n\n")


def run(argv: list[str], console_options: GlobalOptions) -> int:
    from imagesmith.template.planner import InitializeError, initialize

    console = make_console(console_options)
    loaded = template_and_values(console, "console", HELP, argv)
    if isinstance(loaded, int):
        return loaded
    tpl, given = loaded
    variables: Mapping[str, str] = given
    try:
        init = initialize(tpl, given)
        variables = init.variables
        console.add_secrets(init.secrets)
    except InitializeError as exc:
        detail = exc.diagnostic.detail
        from imagesmith.engine.plan import Diagnostic

        summary = "The template's variables are not available"
        console.diagnostics([Diagnostic("warning", summary, detail)])
    evaluator = Evaluator(tpl, variables)
    if sys.stdin.isatty():
        return interactive(console, evaluator)
    return piped(console, evaluator)


def piped(console: Console, evaluator: Evaluator) -> int:
    last = ""
    for raw in sys.stdin:
        result, _, error = evaluator.evaluate(raw.strip())
        if error is not None:
            interpolation_error(console, error)
        last = result
    console.message(last)
    return 0


def interactive(console: Console, evaluator: Evaluator) -> int:
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - line editing and history for input()
    while True:
        try:
            line = input("> ")
        except EOFError:
            print("exit")
            return 0
        except KeyboardInterrupt:
            print("^C")
            return 0
        result, stop, error = evaluator.evaluate(line)
        if error is not None:
            interpolation_error(console, error)
        if stop:
            return 0
        console.say(result)

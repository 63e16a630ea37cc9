"""``imagesmith inspect TEMPLATE``: the variables, builders and provisioners a template
defines, in Packer 1.6.6's layout and machine-readable records.

Kept from Packer: the template is only parsed (required variables may be unset);
builder names are shown raw; post-processors are not listed; a variable whose default
equals a sensitive variable's default is shown as ``<sensitive>`` too. Without exactly
one template argument Packer inspects its built-in one-builder template, and so does
this command.
"""

from __future__ import annotations

from imagesmith.cli.common import GlobalOptions, make_console, template_and_values
from imagesmith.template.model import Template

SYNOPSIS = "see components of a template"

HELP = """\
Usage: imagesmith inspect TEMPLATE

  Inspects a template, parsing and outputting the components a template
  defines. This does not validate the contents of a template (other than
  basic syntax by necessity).

Options:

  -machine-readable  Machine-readable output"""

SENSITIVE = "<sensitive>"

NOTE = (
    "\nNote: If your build names contain user variables or template\n"
    "functions such as 'timestamp', these are processed at build time,\n"
    "and therefore only show in their raw form here."
)


def run(argv: list[str], console_options: GlobalOptions) -> int:
    console = make_console(console_options)
    loaded = template_and_values(console, "inspect", HELP, argv)
    if isinstance(loaded, int):
        return loaded
    tpl, _ = loaded
    for line_kind, data in inspect_lines(tpl):
        if line_kind == "say":
            console.say(data[0])
        else:
            console.machine("", line_kind, *data)
    return 0


def shown_default(tpl: Template, name: str) -> str:
    """A variable's default as inspect shows it (masked like a sensitive one's when it
    equals a sensitive variable's default, Packer's quirk)."""
    default = tpl.variables[name].default
    for secret in tpl.sensitive_variables:
        if tpl.variables[secret].default == default:
            return SENSITIVE
    return default


def inspect_lines(tpl: Template) -> list[tuple[str, tuple[str, ...]]]:
    """What inspect prints, in order: ``("say", (text,))`` lines and machine records."""
    out: list[tuple[str, tuple[str, ...]]] = []

    def say(text: str) -> None:
        out.append(("say", (text,)))

    say("Packer Inspect: JSON mode")
    if tpl.description:
        say("Description:\n")
        say(tpl.description + "\n")

    variables = tpl.variables
    if not variables:
        say("Variables:\n")
        say("  <No variables>")
    else:
        required = sorted(n for n, v in variables.items() if v.required)
        if required:
            say("Required variables:\n")
            for name in required:
                out.append(("template-variable", (name, shown_default(tpl, name), "1")))
                say("  " + name)
            say("")
        say("Optional variables and their defaults:\n")
        width = max(len(n) for n in variables)
        for name in sorted(variables):
            if variables[name].required:
                continue
            default = shown_default(tpl, name)
            out.append(("template-variable", (name, default, "0")))
            say(f"  {name}{' ' * (width - len(name))} = {default}")
    say("")

    say("Builders:\n")
    if not tpl.builders:
        say("  <No builders>")
    else:
        width = max(len(n) for n in tpl.builders)
        for name in sorted(tpl.builders):
            b = tpl.builders[name]
            text = f"  {name}{' ' * (width - len(name))}"
            if b.name != b.type:
                text += f" ({b.type})"
            out.append(("template-builder", (name, b.type)))
            say(text)
    say("")

    say("Provisioners:\n")
    if not tpl.provisioners:
        say("  <No provisioners>")
    for p in tpl.provisioners:
        out.append(("template-provisioner", (p.type,)))
        say(f"  {p.type}")
    say(NOTE)
    return out

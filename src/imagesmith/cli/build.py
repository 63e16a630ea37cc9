"""``imagesmith build [options] TEMPLATE``: run every build a template defines."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from imagesmith.cli.common import GlobalOptions, make_console, usage_error
from imagesmith.cli.flags import FlagError, FlagSet

if TYPE_CHECKING:
    from imagesmith.engine.plan import Plan
    from imagesmith.engine.runner import RunResult
    from imagesmith.ui.console import Console

SYNOPSIS = "build image(s) from template"

HELP = """\
Usage: imagesmith build [options] TEMPLATE

  Will execute multiple builds in parallel as defined in the template.
  The various artifacts created by the template will be outputted.

Options:

  -color=false                  Disable color output. (Default: color)
  -debug                        Debug mode enabled for builds.
  -except=foo,bar,baz           Run all builds and post-processors other than these.
  -only=foo,bar,baz             Build only the specified builds.
  -force                        Force a build to continue if artifacts exist, deletes existing artifacts.
  -machine-readable             Produce machine-readable output.
  -on-error=[cleanup|abort|ask|run-cleanup-provisioner] If the build fails do: clean up (default), abort, ask, or run-cleanup-provisioner.
  -parallel-builds=1            Number of builds to run in parallel. 1 disables parallelization. 0 means no limit (Default: 0)
  -timestamp-ui                 Enable prefixing of each ui output with an RFC3339 timestamp.
  -var 'key=value'              Variable for templates, can be used multiple times.
  -var-file=path                JSON or HCL2 file containing user variables.

imagesmith options:

  -rehearse                     Run the amazon builders locally: an EC2 emulator on loopback,
                                instances as containers, AMIs as local images. No AWS account.
  -rehearse-image=IMAGE         Container image standing in for every source AMI (implies -rehearse).
  -rehearse-map=FILE            JSON map from source AMI ids or filters to images (implies -rehearse)."""  # noqa: E501 - Packer's text

ON_ERROR_CHOICES = ["cleanup", "abort", "ask", "run-cleanup-provisioner"]


def flag_set() -> FlagSet:
    flags = FlagSet("build")
    flags.bool("color", True)
    flags.bool("debug", False)
    flags.multi("except", split_commas=True)
    flags.multi("only", split_commas=True)
    flags.bool("force", False)
    flags.string("on-error", "cleanup", choices=ON_ERROR_CHOICES)
    flags.int("parallel-builds", 0)
    flags.bool("timestamp-ui", False)
    flags.vars("var")
    flags.multi("var-file")
    flags.string("config-type", "")
    flags.bool("rehearse", False)
    flags.string("rehearse-image", "")
    flags.string("rehearse-map", "")
    return flags


def run(argv: list[str], console_options: GlobalOptions) -> int:
    try:
        options, positional = flag_set().parse(argv)
    except FlagError as exc:
        return usage_error(make_console(console_options), HELP, str(exc))
    if len(positional) != 1:
        return usage_error(make_console(console_options), HELP)

    from imagesmith.ui.console import Console

    console = Console(
        machine_readable=console_options.machine_readable,
        color=None if options["color"] else False,
        timestamp=options["timestamp-ui"],
    )
    return build(positional[0], options, console)


def build(template: str, options: dict[str, Any], console: Console) -> int:
    """Plan the template's builds and run them; returns the exit code."""
    import uuid

    from imagesmith.errors import TemplateError
    from imagesmith.template.planner import load_plan

    # Packer hands every child process the run's id (shell-local scripts see it).
    run_uuid = str(uuid.uuid4())
    os.environ["PACKER_RUN_UUID"] = run_uuid
    try:
        plan = load_plan(
            template,
            vars=options["var"],
            var_files=options["var-file"],
            only=options["only"],
            except_=options["except"],
            debug=options["debug"],
            force=options["force"],
            on_error=options["on-error"],
            run_uuid=run_uuid,
        )
    except TemplateError as exc:
        console.error(str(exc))
        return 1

    rehearse = None
    if options["rehearse"] or options["rehearse-image"] or options["rehearse-map"]:
        rehearse = {
            "image": options["rehearse-image"] or None,
            "map_path": options["rehearse-map"] or None,
        }
    from imagesmith.errors import ImagesmithError

    try:
        result = run_plan_sync(
            plan,
            console,
            parallel_builds=options["parallel-builds"],
            debug=options["debug"],
            rehearse=rehearse,
        )
    except ImagesmithError as exc:
        console.error(str(exc))
        return 1
    return result.exit_code


def run_plan_sync(
    plan: Plan,
    console: Console,
    *,
    parallel_builds: int,
    debug: bool,
    rehearse: dict[str, str | None] | None = None,
) -> RunResult:
    import asyncio
    import contextlib

    from imagesmith.engine.runner import run_plan

    async def main() -> RunResult:
        if rehearse is None:
            scope: Any = contextlib.nullcontext()
        else:
            from imagesmith.rehearse.cli import rehearsing

            scope = rehearsing(plan, **rehearse, say=console.say)
        async with scope:
            result = await run_plan(plan, console, parallel_builds=parallel_builds, debug=debug)
        if result.abandoned:
            # The user abandoned cleanups that may still hold worker threads (a blocked
            # API call); waiting for them at interpreter exit would undo the choice.
            sys.stdout.flush()
            os._exit(result.exit_code)
        return result

    return asyncio.run(main())

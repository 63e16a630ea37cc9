"""``imagesmith <command> [args]``: the entry point, and the one error boundary.

Argument handling follows Packer's CLI library: ``-machine-readable`` is taken out of
argv wherever it is; ``-h``/``--help`` anywhere asks for help; ``-v``/``--version``
before the command prints the version; no command or an unknown one prints the usage
with exit code 127. Only the chosen command's module is imported, so ``--help`` and
``validate`` never load the build engine or the cloud and container libraries.

An ``ImagesmithError`` that escapes a command is printed as its message. Anything
else is a bug: one line says so, and the traceback follows only when
``IMAGESMITH_DEBUG`` is set (or ``build -debug`` was asked for).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

import imagesmith
from imagesmith.cli.common import HELP_FLAGS, GlobalOptions, print_plain

#: Commands and their synopses, in the order listed. Kept here rather than read from
#: the modules so that printing the usage imports none of them.
COMMANDS: dict[str, str] = {
    "build": "build image(s) from template",
    "cleanup": "remove what interrupted builds left behind",
    "console": "creates a console for testing variable interpolation",
    "fix": "fixes templates from old versions of packer",
    "inspect": "see components of a template",
    "validate": "check that a template is valid",
    "version": "Prints the imagesmith version",
}

MACHINE_READABLE_FLAGS = ("-machine-readable", "--machine-readable")
VERSION_FLAGS = ("-v", "-version", "--version")
# Packer's column width, so that the list lines up as Packer's does.
_NAME_WIDTH = 16


def usage() -> str:
    lines = [
        "Usage: imagesmith [--version] [--help] <command> [<args>]",
        "",
        "Available commands are:",
    ]
    for name, synopsis in COMMANDS.items():
        lines.append(f"    {name:<{_NAME_WIDTH - 4}}    {synopsis}")
    return "\n".join(lines) + "\n"


def run() -> NoReturn:
    """Entry point of the ``imagesmith`` script and ``python -m imagesmith``.

    Runs ``main`` and leaves with ``os._exit`` once output is flushed: by then every
    build has cleaned up, and tearing down an interpreter that loaded botocore and
    asyncssh costs about 0.1 s of garbage collection for nothing. Embedders and tests
    call ``main``, which returns.

    The cyclic garbage collector runs far less often than by default: start-up creates
    a few hundred thousand long-lived objects (modules, botocore's models, asyncssh)
    and hardly any garbage, and at the default threshold of 700 allocations the
    collector walks them again and again (about 30 ms of an amazon-ebs build's
    start). Collections still happen, so a long build's garbage cycles are reclaimed.
    """
    gc.set_threshold(50_000, 20, 20)
    code = main()
    logging = sys.modules.get("logging")  # flush log handlers, if anything logged
    if logging is not None:
        logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    machine_readable = any(a in MACHINE_READABLE_FLAGS for a in args)
    args = [a for a in args if a not in MACHINE_READABLE_FLAGS]
    options = GlobalOptions.from_env(machine_readable=machine_readable)

    command, command_args, top_flags, is_help, is_version = _split(args)
    if is_version:
        print_plain(imagesmith.__version__)
        return 0
    if command is None or command not in COMMANDS:
        print_plain(usage())
        return 0 if is_help and command is None else 127
    try:
        module = _load(command)
    except ModuleNotFoundError as exc:
        if exc.name != f"imagesmith.cli.{command}":
            raise
        print_plain(f"The {command} command is not available in this installation.")
        return 1
    if top_flags:
        print_plain(
            "Invalid flags before the subcommand. If these flags are for\n"
            "the subcommand, please put them after the subcommand.\n"
        )
        print_plain(module.HELP)
        return 1
    if is_help:
        print_plain(module.HELP)
        return 0
    return _run(module, command_args, options)


def _split(args: list[str]) -> tuple[str | None, list[str], list[str], bool, bool]:
    """(command, its args, flags before it, help asked, version asked), as Packer's
    CLI library reads argv."""
    command: str | None = None
    command_args: list[str] = []
    top_flags: list[str] = []
    is_help = is_version = False
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in HELP_FLAGS:
            is_help = True
            continue
        if command is None:
            if arg in VERSION_FLAGS:
                is_version = True
                continue
            if arg.startswith("-"):
                top_flags.append(arg)
            elif arg:
                command = arg
                command_args = args[i + 1 :]
    return command, command_args, top_flags, is_help, is_version


def _load(command: str) -> ModuleType:
    return importlib.import_module(f"imagesmith.cli.{command}")


def _run(module: ModuleType, args: list[str], options: GlobalOptions) -> int:
    from imagesmith.errors import ImagesmithError

    try:
        code: int = module.run(args, options)
        return code
    except ImagesmithError as exc:
        from imagesmith.cli.common import make_console

        make_console(options).error(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``imagesmith inspect x | head``): nothing to report,
        # and nothing more to flush at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        debug = options.debug or "-debug" in args
        sys.stdout.flush()
        sys.stderr.write(
            f"imagesmith: internal error (this is a bug, please report it): "
            f"{type(exc).__name__}: {exc}"
            + ("" if debug else " (set IMAGESMITH_DEBUG=1 to see the traceback)")
            + "\n"
        )
        if debug:
            import traceback

            traceback.print_exc()
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``imagesmith`` entry point, run as users run it (``python -m imagesmith`` and the
console script): usage and exit codes, help, versions, the error boundary, and which
modules each command imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import imagesmith as pkg
from fixtures.packer import (
    Differential,
    clean_env,
    imagesmith,
    imagesmith_subprocess,
    needs_packer,
    same_usage_output,
)
from imagesmith.cli import main as cli_main

USAGE = (
    "Usage: imagesmith [--version] [--help] <command> [<args>]\n\n"
    "Available commands are:\n"
    "    build           build image(s) from template\n"
    "    cleanup         remove what interrupted builds left behind\n"
    "    console         creates a console for testing variable interpolation\n"
    "    fix             fixes templates from old versions of packer\n"
    "    inspect         see components of a template\n"
    "    validate        check that a template is valid\n"
    "    version         Prints the imagesmith version\n\n"
)


def test_no_command_or_an_unknown_one_prints_the_usage_with_127(tmp_path: Path) -> None:
    for args in ([], ["bogus"], ["help"], ["-machine-readable"], ["-x"]):
        result = imagesmith_subprocess(*args, cwd=tmp_path)
        assert (result.rc, result.out, result.err) == (127, USAGE, "")


def test_help_and_version_flags(tmp_path: Path) -> None:
    for flag in ("-h", "--help", "-help"):
        assert imagesmith(flag, cwd=tmp_path) == imagesmith("--help", cwd=tmp_path)
        assert (imagesmith(flag, cwd=tmp_path).rc, imagesmith(flag, cwd=tmp_path).out) == (0, USAGE)
    for flag in ("-v", "--version", "-version"):
        result = imagesmith(flag, "-machine-readable", cwd=tmp_path)
        assert (result.rc, result.out) == (0, pkg.__version__ + "\n")


def test_the_console_script_and_the_module_agree(tmp_path: Path) -> None:
    script = shutil.which("imagesmith", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the imagesmith console script is not installed")
    proc = subprocess.run(
        [script, "version"], capture_output=True, text=True, env=clean_env(), check=False
    )
    assert (proc.returncode, proc.stdout) == (0, imagesmith("version", cwd=tmp_path).out)


def test_every_command_has_help(tmp_path: Path) -> None:
    for command in cli_main.COMMANDS:
        module = cli_main._load(command)
        assert cli_main.COMMANDS[command] == module.SYNOPSIS
        for args in ([command, "-h"], [command, "--help"], [command, "x.json", "-h"]):
            result = imagesmith(*args, cwd=tmp_path)
            assert (result.rc, result.out) == (0, module.HELP + "\n"), args


def test_flags_before_the_command_are_refused(tmp_path: Path) -> None:
    result = imagesmith("-x", "validate", "t.json", cwd=tmp_path)
    assert result.rc == 1
    assert result.out.startswith(
        "Invalid flags before the subcommand. If these flags are for\n"
        "the subcommand, please put them after the subcommand.\n\nUsage: imagesmith validate"
    )


def test_machine_readable_anywhere_switches_the_output(tmp_path: Path) -> None:
    for args in (["-machine-readable", "version"], ["version", "-machine-readable"]):
        lines = imagesmith(*args, cwd=tmp_path).out.splitlines()
        assert [line.split(",", 1)[1] for line in lines] == [
            f",version,{pkg.__version__}",
            ",version-prelease,",
            ",version-commit,",
            f",version-packer-compatible,{pkg.PACKER_COMPAT_VERSION}",
            f",ui,say,imagesmith v{pkg.__version__} "
            f"(Packer v{pkg.PACKER_COMPAT_VERSION} compatible)",
        ]


def test_version(tmp_path: Path) -> None:
    result = imagesmith_subprocess("version", "ignored", cwd=tmp_path)
    assert (result.rc, result.out) == (
        0,
        f"imagesmith v{pkg.__version__} (Packer v1.6.6 compatible)\n",
    )


@needs_packer
@pytest.mark.packer
def test_usage_errors_match_packer(tmp_path: Path, differential: Differential) -> None:
    (tmp_path / "t.json").write_text(json.dumps({"builders": [{"type": "null"}]}))
    for args in (
        ["validate", "-bogus", "t.json"],
        ["validate", "-machine-readable", "-bogus", "t.json"],
        ["validate", "-machine-readable"],
        ["inspect", "-h"],
        # (Packer prints some flag errors from a goroutine that may lose the race with
        # its exit, e.g. console's; validate's always makes it.)
        ["console", "-h"],
        ["validate", "t.json", "-h"],
        ["validate", "--", "-h"],
    ):
        ref, ours = differential(*args)
        # Machine-readable records carry the time they were written.
        assert ours.rc == ref.rc, args
        assert same_usage_output(_no_ts(ref.out), _no_ts(ours.out)), args


def _no_ts(text: str) -> str:
    return "\n".join(line.split(",", 1)[-1] for line in text.splitlines())


def test_an_internal_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    # A template whose only builder comes from a module that fails in prepare() would
    # need a broken component; a missing command module is the simplest real failure
    # of the boundary: run a command whose module raises on purpose.
    code = (
        "import sys, types\n"
        "module = types.ModuleType('imagesmith.cli.version')\n"
        "module.HELP = 'help'\n"
        "def run(argv, options):\n"
        "    raise RuntimeError('boom')\n"
        "module.run = run\n"
        "sys.modules['imagesmith.cli.version'] = module\n"
        "from imagesmith.cli.main import main\n"
        "raise SystemExit(main(['version']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), check=False
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "imagesmith: internal error (this is a bug, please report it): RuntimeError: boom "
        "(set IMAGESMITH_DEBUG=1 to see the traceback)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(IMAGESMITH_DEBUG="1"),
        check=False,
    )
    assert (
        "Traceback (most recent call last):" in proc.stderr and "RuntimeError: boom" in proc.stderr
    )


# What help must never load, and what validate must never load (component modules may
# use asyncio; they keep boto3, asyncssh and the docker SDK for build time).
HEAVY = ("asyncio", "boto3", "botocore", "asyncssh", "docker")
CLOUD = ("boto3", "botocore", "asyncssh", "docker")


def _imported(tmp_path: Path, *args: str) -> set[str]:
    code = (
        "import sys\n"
        "from imagesmith.cli.main import main\n"
        f"rc = main({list(args)!r})\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MODULES "))
    return {m.split(".")[0] for m in line.split()[1:]}


def test_help_and_validate_stay_off_the_heavy_libraries(tmp_path: Path) -> None:
    for args in (["--help"], ["build", "-h"], ["version"], ["validate", "-h"]):
        assert not _imported(tmp_path, *args) & set(HEAVY), args
    (tmp_path / "t.json").write_text(
        json.dumps(
            {
                "builders": [
                    {"type": "null", "communicator": "none"},
                    {
                        "type": "amazon-ebs",
                        "region": "us-east-1",
                        "source_ami": "ami-1",
                        "instance_type": "t2.micro",
                        "ssh_username": "u",
                        "ami_name": "a",
                    },
                    {"type": "docker", "image": "x", "commit": True},
                ],
                "provisioners": [
                    {"type": "shell-local", "inline": ["true"]},
                    {"type": "shell", "inline": ["true"]},
                ],
                "post-processors": ["manifest", {"type": "docker-tag", "repository": "r"}],
            }
        )
    )
    for args in (["validate", "t.json"], ["inspect", "t.json"], ["fix", "t.json"]):
        assert not _imported(tmp_path, *args) & set(CLOUD), args

"""Local scripts: what the ``shell-local`` provisioner and post-processor share.

Both take the same options (Packer 1.6.6's ``shell-local`` config), check them the
same way and run the same way: each script (or one temporary file holding the
``inline`` lines) is run through ``execute_command``, a list exec'd directly, by
default ``/bin/sh -c "{{.Vars}} {{.Script}}"``. Output is streamed line by line:
stdout as ``message``, stderr as ``error``.

How values are rendered follows Packer: ``inline`` and ``environment_vars`` are
rendered once at Prepare (where ``{{build `ID`}}`` becomes ``{{.ID}}``) and again
here with the build data; ``execute_command`` only here, with ``.Vars``, ``.Script``
and ``.Command`` on top of the build data.

Differences from Packer, on purpose:

- A cancelled or timed-out script gets SIGTERM, then SIGKILL, sent to its whole
  process group; Packer killed only the direct child and left its children running.
- Once the script has exited, output is still read until its pipes close, but only
  for ``DRAIN_GRACE`` seconds: a background process that keeps them open (a daemon
  the script started) no longer makes the build hang forever.
- ``PACKER_BUILD_NAME`` is quoted like every other value in ``{{.Vars}}``.
- Only POSIX hosts are supported: Windows' defaults (``cmd /V /C``, ``.cmd``
  temporary files, ``set %s=%s && ``) are not implemented.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagesmith.config.fields import opt
from imagesmith.errors import BuildError, ConfigError
from imagesmith.golang import format_list
from imagesmith.provisioners.envvars import flatten_env, packer_env, parse_env_vars

if TYPE_CHECKING:
    from imagesmith.engine.context import BuildInfo
    from imagesmith.ui.base import Ui

log = logging.getLogger(__name__)

SUPPORTED_OS = ("darwin", "freebsd", "linux", "openbsd", "solaris", "windows")
DEFAULT_EXECUTE_COMMAND = ("/bin/sh", "-c", "{{.Vars}} {{.Script}}")
DEFAULT_SHEBANG = "/bin/sh -e"
DEFAULT_ENV_VAR_FORMAT = "%s='%s' "
#: Seconds output is still read after the script exited (see the module docstring).
DRAIN_GRACE = 2.0
#: How Packer's shell-local words errors of its config decoding.
DECODE_PREFIX = "Error decoding config: "
#: Seconds between SIGTERM and SIGKILL when a script is cancelled.
TERM_GRACE = 5.0

TOO_MANY_OPTIONS = (
    "You may only specify one of the following options: Command, Inline, Script or "
    "Scripts. Please consolidate these options in your config."
)
NOTHING_TO_RUN = "Command, Inline, Script and Scripts options cannot all be empty."
NO_INLINE_WITH_WSL = (
    "Packer is unable to use the Command and Inline features with the Windows Linux "
    "Subsystem. Please use the Script or Scripts options instead"
)


@dataclass
class ShellLocalConfig:
    command: str = ""
    # None and [] differ, as nil and empty slices do in Packer's checks.
    inline: list[str] | None = None
    script: str = ""
    scripts: list[str] = field(default_factory=list)
    environment_vars: list[str] = field(default_factory=list)
    env_var_format: str = ""
    # Rendered per script with .Vars/.Script/.Command, never at decode time.
    execute_command: list[str] = opt(default_factory=list, late=True)
    inline_shebang: str = ""
    only_on: list[str] = field(default_factory=list)
    valid_exit_codes: list[int] = field(default_factory=list)
    tempfile_extension: str = ""
    use_linux_pathing: bool = False


class SingleConfigError(ConfigError):
    """A problem Packer reports on its own, printed as it is rather than as a list."""

    def __init__(self, message: str) -> None:
        super().__init__([message])
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ScriptPlan:
    """A validated config with Packer's defaults filled in."""

    scripts: tuple[str, ...]
    inline: tuple[str, ...] | None
    execute_command: tuple[str, ...]
    inline_shebang: str
    env_var_format: str
    environment_vars: tuple[str, ...]
    only_on: tuple[str, ...]
    valid_exit_codes: tuple[int, ...]
    tempfile_extension: str


def plan_scripts(config: ShellLocalConfig) -> ScriptPlan:
    """Check ``config`` the way Packer does, in its order; raise ``ConfigError``.

    Two problems end the check at once and are reported alone, as Packer does: an
    unknown ``only_on`` name and a script path ``use_linux_pathing`` cannot convert.
    """
    check_syntax("execute_command", config.execute_command, prefix=DECODE_PREFIX)
    errors: list[str] = []
    inline = list(config.inline) if config.inline is not None else None
    scripts = list(config.scripts)

    if not config.command and not inline and not scripts and not config.script:
        errors.append(NOTHING_TO_RUN)
    if config.command:
        if inline or scripts or config.script:
            errors.append(TOO_MANY_OPTIONS)
        else:
            inline = [config.command]
    if config.script:
        if scripts or inline:
            errors.append(TOO_MANY_OPTIONS)
        else:
            scripts = [config.script]
    if scripts and inline is not None:
        errors.append(TOO_MANY_OPTIONS)

    for path in scripts:
        try:
            os.stat(path)
        except OSError as e:
            errors.append(f"Bad script '{path}': {go_os_error('stat', path, e)}")

    for name in config.only_on:
        if name not in SUPPORTED_OS:
            raise SingleConfigError(
                f"Invalid OS specified in only_on: '{name}'\n"
                f"Supported OS names: {', '.join(SUPPORTED_OS)}"
            )

    if config.use_linux_pathing:
        scripts = [to_linux_path(os.path.abspath(s)) for s in scripts]
        if inline:
            errors.append(NO_INLINE_WITH_WSL)

    _, env_errors = parse_env_vars(config.environment_vars)
    errors.extend(env_errors)
    if errors:
        raise ConfigError(errors)

    return ScriptPlan(
        scripts=tuple(scripts),
        inline=tuple(inline) if inline is not None else None,
        execute_command=tuple(config.execute_command or DEFAULT_EXECUTE_COMMAND),
        inline_shebang=config.inline_shebang or DEFAULT_SHEBANG,
        env_var_format=config.env_var_format or DEFAULT_ENV_VAR_FORMAT,
        environment_vars=tuple(config.environment_vars),
        only_on=tuple(config.only_on),
        valid_exit_codes=tuple(config.valid_exit_codes) or (0,),
        tempfile_extension=config.tempfile_extension.removeprefix("."),
    )


def check_syntax(key: str, values: list[str], *, prefix: str = "") -> None:
    """Parse (without rendering) the strings of a field rendered only at run time.

    Packer's decoder checks their syntax at Prepare even though it leaves them raw;
    the first bad one is reported alone, as ``invalid '<key>': <error> in:...``.
    """
    from imagesmith.template import gotemplate
    from imagesmith.template.functions import FUNCTION_NAMES

    for text in values:
        if "{{" not in text:
            continue
        try:
            gotemplate.parse(text, FUNCTION_NAMES)
        except gotemplate.TemplateError as e:
            raise SingleConfigError(f"{prefix}invalid '{key}': {e} in:\n\n{text}") from None


def to_linux_path(path: str) -> str:
    """``C:/path/to/file`` as WSL sees it: ``/mnt/c/path/to/file``."""
    path = path.replace("\\", "/")
    drive, sep, rest = path.partition(":/")
    if not sep:
        raise SingleConfigError(
            "There was an error splitting your absolute path; expected to find a drive "
            f"following the format ':/' but did not: absolute path: {path}"
        )
    return f"/mnt/{drive.lower()}/{rest}"


def host_goos() -> str:
    """This host's OS under Go's name for it (``only_on`` uses those names)."""
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform.startswith("freebsd"):
        return "freebsd"
    if sys.platform.startswith("openbsd"):
        return "openbsd"
    return {"darwin": "darwin", "win32": "windows", "sunos5": "solaris"}.get(
        sys.platform, sys.platform
    )


def go_os_error(op: str, path: str, exc: OSError) -> str:
    """An ``OSError`` as Go's ``*PathError`` prints it: ``stat x: no such file or directory``."""
    reason = exc.strerror or str(exc)
    return f"{op} {path}: {reason[:1].lower()}{reason[1:]}"


# --- running ---------------------------------------------------------------------------


async def run_scripts(
    plan: ScriptPlan,
    *,
    ui: Ui,
    info: BuildInfo,
    generated: Mapping[str, Any],
    cancel_is_error: bool,
) -> None:
    """Run every script of ``plan`` in order; raise ``BuildError`` on the first failure.

    ``cancel_is_error``: turn a cancellation (a provisioner ``timeout``) into Packer's
    "Error executing script" error instead of letting it through.
    """
    if plan.only_on and host_goos() not in plan.only_on:
        ui.say("Skipping shell-local due to runtime OS")
        return

    def render(text: str, data: Mapping[str, Any]) -> str:
        return info.renderer.render(text, data=data, generated=generated)

    temp: str | None = None
    try:
        scripts = list(plan.scripts)
        if not scripts and plan.inline is not None:
            lines = [_rendered(render, line, generated) for line in plan.inline]
            temp = write_inline_script(plan.inline_shebang, lines, plan.tempfile_extension)
            scripts = [temp]

        env_vars = packer_env(info, generated)
        for item in plan.environment_vars:
            key, _, value = _rendered(render, item, generated).partition("=")
            env_vars[key] = value
        flat = flatten_env(env_vars, plan.env_var_format)

        for script in scripts:
            await _run_one(plan, script, flat, render, ui, info, generated, cancel_is_error)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.remove(temp)


async def _run_one(
    plan: ScriptPlan,
    script: str,
    flat_vars: str,
    render: Callable[[str, Mapping[str, Any]], str],
    ui: Ui,
    info: BuildInfo,
    generated: Mapping[str, Any],
    cancel_is_error: bool,
) -> None:
    from imagesmith.template.render import RenderError

    abs_script = os.path.abspath(script)
    data = {**generated, "Vars": flat_vars, "Script": abs_script, "Command": abs_script}
    try:
        argv = [render(part, data) for part in plan.execute_command]
    except RenderError as e:
        raise BuildError(f"Error processing command: {e}") from None

    ui.say(f"Running local shell script: {script}")
    env = dict(os.environ, PACKER_RUN_UUID=info.run_uuid)
    failed = BuildError(
        f"Error executing script: {abs_script}\n\nPlease see output above for more information."
    )
    try:
        status = await run_command(argv, env=env, on_stdout=ui.message, on_stderr=ui.error)
    except (OSError, ValueError) as e:
        # Only the program: the arguments may hold secrets from environment_vars.
        log.debug("cannot start %s: %s", argv[0] if argv else "", e)
        raise failed from None
    except asyncio.CancelledError:
        if cancel_is_error:
            raise failed from None
        raise

    if status not in plan.valid_exit_codes:
        raise BuildError(
            f"Script exited with non-zero exit status: {status}."
            f"Allowed exit codes are: {format_list(list(plan.valid_exit_codes))}"
        )


def _rendered(
    render: Callable[[str, Mapping[str, Any]], str], text: str, data: Mapping[str, Any]
) -> str:
    from imagesmith.template.render import RenderError

    try:
        return render(text, data)
    except RenderError as e:
        raise BuildError(str(e)) from None


def write_inline_script(shebang: str, lines: list[str], extension: str) -> str:
    """Write ``lines`` to a new ``$TMPDIR/packer-shell<digits>[.ext]``, mode 0700."""
    directory = os.environ.get("TMPDIR") or "/tmp"
    suffix = f".{extension}" if extension else ""
    body = "".join(f"{line}\n" for line in lines)
    if shebang:
        body = f"#!{shebang}\n{body}"
    for _ in range(10000):
        path = os.path.join(directory, f"packer-shell{random.getrandbits(32)}{suffix}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        except OSError as e:
            raise BuildError(
                f"Error preparing shell script: {go_os_error('open', path, e)}"
            ) from None
        try:
            os.fchmod(fd, 0o700)
            os.write(fd, body.encode())
        except OSError as e:
            os.close(fd)
            os.remove(path)
            raise BuildError(f"Error preparing shell script: {e}") from None
        os.close(fd)
        return path
    raise BuildError(f"Error preparing shell script: no free temporary name in {directory}")


# --- the process -----------------------------------------------------------------------


async def run_command(
    argv: list[str],
    *,
    env: Mapping[str, str],
    on_stdout: Callable[[str], None],
    on_stderr: Callable[[str], None],
) -> int:
    """Run ``argv`` in a process group of its own, streaming its output by line.

    Returns the exit status (-1 when a signal ended it, as Go reports). Raises
    ``OSError`` when it cannot start. On cancellation the process group is terminated
    before ``CancelledError`` propagates.
    """
    # Our own pipes rather than asyncio's: asyncio's wait() also waits for the pipes to
    # close, which a background child of the script can delay forever.
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            env=dict(env),
            start_new_session=True,
        )
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)

    pumps = [
        asyncio.ensure_future(_pump_lines(out_r, on_stdout)),
        asyncio.ensure_future(_pump_lines(err_r, on_stderr)),
    ]
    try:
        status = await proc.wait()
        _, late = await asyncio.wait(pumps, timeout=DRAIN_GRACE)
        if late:
            log.debug("output of %s still open after it exited; no longer read", argv[0])
    except BaseException:
        await _terminate(proc)
        raise
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    return -1 if status < 0 else status


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, SIGKILL it after ``TERM_GRACE`` or on a new cancel."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), TERM_GRACE)
    except (TimeoutError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


async def _pump_lines(fd: int, emit: Callable[[str], None]) -> None:
    """Read ``fd`` to its end, calling ``emit`` with each cleaned line; closes ``fd``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    pending = b""
    try:
        while chunk := await reader.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                emit(clean_line(line.decode("utf-8", "replace")))
        if pending:
            emit(clean_line(pending.decode("utf-8", "replace")))
    finally:
        transport.close()


def clean_line(line: str) -> str:
    """What Packer shows of an output line: trailing space trimmed, then only the text
    after the last carriage return (what a terminal would have left visible)."""
    line = line.rstrip()
    return line[line.rfind("\r") + 1 :]

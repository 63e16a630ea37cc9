"""``shell``: upload scripts to the machine and run them (Packer's remote shell
provisioner).

For each script: print ``Provisioning with shell script: <path>``, upload it to
``remote_path`` (the same path for every script of the provisioner, as in Packer),
make it executable, run ``execute_command`` streaming stdout as messages and stderr
as errors, check the exit code, remove the script. Packer issues upload, chmod, run
and rm as four remote operations; here the chmod rides on the upload's channel
(``cat > f && chmod 0755 f``), which leaves the same file with the same mode, and
the last script's ``rm`` also removes the env file. The user's ``execute_command``
always runs as its own ``/bin/sh -c``, exactly as written.

Where every command costs a process started by a container runtime (the docker
communicator: 25-45 ms each), the ``rm`` is folded into the command that runs the
script: a small shell runs ``execute_command``, then removes the files only if its
exit status is a valid one (as Packer removes them only after a valid run), and exits
with that status. A failed ``rm`` prints a random marker line, which is taken out of
the output and fails the provisioner as a separate ``rm`` would.

Retries (``start_retry_timeout``) apply to losing the machine (a reboot), not to
errors the machine reports: a full disk or a missing ``remote_folder`` fails at once
instead of after five minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import random
import secrets
import shlex
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, TypeVar

from imagesmith.communicators.base import DISCONNECTED_EXIT_STATUS, ConnectionLost
from imagesmith.communicators.config import ZERO, go_os_error
from imagesmith.config.fields import Duration, opt, was_set
from imagesmith.errors import BuildError, ConfigError
from imagesmith.golang import format_duration, format_list
from imagesmith.plugins import Provisioner
from imagesmith.provisioners.envvars import flatten_env, packer_env, parse_env_vars

if TYPE_CHECKING:
    from imagesmith.communicators.base import Communicator
    from imagesmith.engine.context import ProvisionContext

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_EXECUTE = "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"
DEFAULT_EXECUTE_ENV_FILE = "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}"
DEFAULT_START_RETRY_TIMEOUT = 5 * 60.0
#: Pause between attempts to reach a machine that went away (Packer: 2 s).
RETRY_SLEEP = 1.0
DISCONNECTED = (
    "Script disconnected unexpectedly. If you expected your script to disconnect, "
    'i.e. from a restart, you can try adding `"expect_disconnect": true` or '
    '`"valid_exit_codes": [0, 2300218]` to the shell provisioner parameters.'
)


@dataclass
class ShellConfig:
    inline: list[str] = field(default_factory=list)
    inline_shebang: str = ""
    script: str = ""
    scripts: list[str] = field(default_factory=list)
    environment_vars: list[str] = field(default_factory=list)
    env_var_format: str = ""
    use_env_var_file: bool = False
    execute_command: str = opt("", late=True)
    remote_folder: str = ""
    remote_file: str = ""
    remote_path: str = ""
    skip_clean: bool = False
    binary: bool = False
    expect_disconnect: bool = False
    valid_exit_codes: list[int] = field(default_factory=list)
    start_retry_timeout: Duration = ZERO
    pause_after: Duration = ZERO


def unix_lines(data: bytes) -> bytes:
    """Packer's UnixReader: every line ends in ``\\n``, a ``\\r`` before it dropped."""
    if not data:
        return data
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return b"".join((ln[:-1] if ln.endswith(b"\r") else ln) + b"\n" for ln in lines)


class ShellProvisioner(Provisioner):
    type_name = "shell"
    Config: ClassVar[type[ShellConfig]] = ShellConfig
    config: ShellConfig

    def prepare(self) -> list[str]:
        c = self.config
        errs: list[str] = []
        if c.script and c.scripts:
            errs.append("Only one of script or scripts can be specified.")
        self.scripts = [c.script] if c.script else list(c.scripts)
        if not self.scripts and not c.inline:
            errs.append("Either a script file or inline script must be specified.")
        elif self.scripts and c.inline:
            errs.append("Only a script file or an inline script can be specified, not both.")
        for path in self.scripts:
            try:
                os.stat(path)
            except OSError as e:
                errs.append(f"Bad script '{path}': {go_os_error('stat', path, e)}")
        self.env, env_errs = parse_env_vars(c.environment_vars)
        errs += env_errs
        if errs:
            raise ConfigError(errs)

        self.env_format = c.env_var_format or (
            "export %s='%s'\n" if c.use_env_var_file else "%s='%s' "
        )
        self.execute = c.execute_command or (
            DEFAULT_EXECUTE_ENV_FILE if c.use_env_var_file else DEFAULT_EXECUTE
        )
        folder = c.remote_folder or "/tmp"
        self.remote_folder = folder
        # Chosen once: every script of this provisioner goes to the same path.
        # Packer draws from 0-9998; several builds provisioning one host (null builders,
        # shared bastions) then overwrite each other's scripts. A wider draw keeps the
        # name's shape and makes that collision practically impossible.
        remote_file = c.remote_file or f"script_{random.randrange(10**9)}.sh"
        self.remote_path = c.remote_path or f"{folder}/{remote_file}"
        self.valid_codes = list(c.valid_exit_codes) if was_set(c, "valid_exit_codes") else [0]
        self.retry_timeout = float(c.start_retry_timeout or DEFAULT_START_RETRY_TIMEOUT)
        return []

    # -- running --------------------------------------------------------------------------

    async def provision(self, ctx: ProvisionContext) -> None:
        comm = ctx.comm
        if comm is None:
            raise BuildError("the shell provisioner needs a communicator")
        generated = ctx.generated_data
        inline_file = self._write_inline(ctx) if self.config.inline else None
        scripts = [inline_file] if inline_file else list(self.scripts)
        try:
            env = {**packer_env(ctx.info, generated), **self.env}
            env_file = ""
            if self.config.use_env_var_file:
                env_file = await self._upload_env_file(comm, flatten_env(env, self.env_format))
            data = {
                **generated,
                "Vars": flatten_env(env, self.env_format),
                "EnvVarFile": env_file,
                "Path": self.remote_path,
            }
            try:
                command = ctx.info.renderer.render(self.execute, data=data, generated=generated)
            except Exception as e:
                raise BuildError(f"Error processing command: {e}") from None
            for i, path in enumerate(scripts):
                last = i == len(scripts) - 1
                remove = [] if self.config.skip_clean else [self.remote_path]
                if remove and last and env_file:
                    remove.append(env_file)
                inline = inline_file is not None
                removed = await self._run_script(ctx, comm, path, command, inline, remove)
                if remove and not removed:
                    await self._remove(comm, remove)
            if not scripts and env_file and not self.config.skip_clean:
                await self._remove(comm, [env_file])
        finally:
            if inline_file:
                with contextlib.suppress(OSError):
                    os.unlink(inline_file)
        pause = float(self.config.pause_after)
        if pause > 0:
            ctx.ui.say(f"Pausing {format_duration(pause)} after this provisioner...")
            await asyncio.sleep(pause)

    def _write_inline(self, ctx: ProvisionContext) -> str:
        """The inline commands as a local script ``packer-shell<digits>`` (its name is
        what Packer prints), each line rendered with the build data."""
        lines = [f"#!{self.config.inline_shebang or '/bin/sh -e'}"]
        generated = ctx.generated_data
        for command in self.config.inline:
            try:
                lines.append(ctx.info.renderer.render(command, data=generated, generated=generated))
            except Exception as e:
                raise BuildError(f"Error interpolating Inline: {e}") from None
        return _local_script("\n".join(lines) + "\n")

    async def _upload_env_file(self, comm: Communicator, content: str) -> str:
        path = f"{self.remote_folder}/varfile_{random.randrange(10**9)}.sh"
        data = content.encode()
        if not self.config.binary:
            data = unix_lines(data)

        async def upload() -> None:
            await comm.upload(path, io.BytesIO(data), mode=0o600, size=len(data))

        await self._retryable(upload, "Error uploading envVarFile")
        return path

    async def _run_script(
        self,
        ctx: ProvisionContext,
        comm: Communicator,
        path: str,
        command: str,
        inline: bool,
        remove: list[str],
    ) -> bool:
        """Upload and run one script; True if ``remove`` was removed on the way."""
        ctx.ui.say(f"Provisioning with shell script: {path}")
        try:
            with open(path, "rb") as f:
                script = f.read()
        except OSError as e:
            raise BuildError(
                f"Error opening shell script: {go_os_error('open', path, e)}"
            ) from None
        if not self.config.binary:
            script = unix_lines(script)

        fold = bool(remove) and comm.costly_commands
        marker = f"imagesmith-rm-failed-{secrets.token_hex(16)}" if fold else ""
        to_run = then_remove(command, remove, self.valid_codes, marker) if fold else command
        removal_failed = False

        def on_stdout(line: str) -> None:
            nonlocal removal_failed
            if fold and line == marker:
                removal_failed = True
                return
            ctx.ui.message(line)

        async def attempt() -> int:
            # Upload and run together, so that a reboot between the two re-uploads.
            await comm.upload(self.remote_path, io.BytesIO(script), mode=0o755, size=len(script))
            return await comm.run(to_run, on_stdout=on_stdout, on_stderr=ctx.ui.error)

        status = await self._retryable(attempt, "Error uploading script")
        if status == DISCONNECTED_EXIT_STATUS and DISCONNECTED_EXIT_STATUS not in self.valid_codes:
            if self.config.expect_disconnect:
                return False
            raise BuildError(DISCONNECTED)
        if status not in self.valid_codes:
            what = f"the inline commands, run as {path}" if inline else f"script: {path}"
            raise BuildError(
                f"Script exited with non-zero exit status: {status}."
                f"Allowed exit codes are: {format_list(self.valid_codes)} ({what})"
            )
        if removal_failed:
            raise BuildError(f"Error removing temporary script at {remove[0]}!")
        return fold

    async def _remove(self, comm: Communicator, paths: list[str]) -> None:
        command = "rm -f " + " ".join(shlex.quote(p) for p in paths)

        async def attempt() -> None:
            status = await comm.run(command)
            # A machine still rebooting counts as done, as in Packer.
            if status not in (0, DISCONNECTED_EXIT_STATUS):
                raise BuildError(f"Error removing temporary script at {paths[0]}!")

        await self._retryable(attempt, f"Error removing temporary script at {paths[0]}")

    async def _retryable(self, fn: Callable[[], Awaitable[T]], what: str) -> T:
        """Run ``fn``, retrying while the machine cannot be reached, until
        ``start_retry_timeout``."""
        deadline = time.monotonic() + self.retry_timeout
        while True:
            try:
                return await fn()
            except ConnectionLost as e:
                if time.monotonic() >= deadline:
                    raise BuildError(f"Retryable error: {what}: {e}") from None
                log.debug("retrying after: %s", e)
                await asyncio.sleep(RETRY_SLEEP)
            except BuildError:
                raise
            except Exception as e:
                raise BuildError(f"{what}: {e}") from None


def then_remove(command: str, paths: list[str], valid_codes: list[int], marker: str) -> str:
    """A shell script that runs ``command`` as its own ``/bin/sh -c``, removes ``paths``
    if the exit status is one of ``valid_codes`` (printing ``marker`` if that fails),
    and exits with the command's status."""
    codes = " ".join(str(code) for code in valid_codes)
    files = " ".join(shlex.quote(p) for p in paths)
    return (
        f"/bin/sh -c {shlex.quote(command)}\n"
        "status=$?\n"
        f'case " {codes} " in *" $status "*) rm -f {files} || echo {marker} ;; esac\n'
        'exit "$status"\n'
    )


def _local_script(text: str) -> str:
    """Write ``text`` to a new ``packer-shell<digits>`` file in the temp directory (the
    name Packer's Go temp files have, which users and log filters know)."""
    folder = tempfile.gettempdir()
    while True:
        path = os.path.join(folder, f"packer-shell{random.randrange(10**9, 10**10)}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

"""The EC2 emulator a rehearsal starts on loopback for the run, and stops after it."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagesmith.errors import ImagesmithError

INSTALL_HINT = "pip install 'imagesmith[rehearse]'"

# moto's own account: what "self" means in owners filters and who owns created AMIs.
ACCOUNT_ID = "123456789012"


class EmulatorError(ImagesmithError):
    pass


def check_installed() -> None:
    """Raise a clear error when moto's server is not installed."""
    missing = [m for m in ("moto", "flask", "werkzeug") if importlib.util.find_spec(m) is None]
    if missing:
        raise EmulatorError(
            "A rehearsal needs the EC2 emulator moto with its server, which is not installed "
            f"(missing: {', '.join(missing)}): run {INSTALL_HINT}."
        )


class Emulator:
    """A moto server in a child process, serving the given AMIs in every region.

    Use ``await Emulator.start(amis, regions=[...])`` then ``await emulator.stop()``.
    """

    def __init__(self, proc: asyncio.subprocess.Process, port: int, workdir: Path) -> None:
        self._proc = proc
        self.port = port
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._workdir = workdir

    @classmethod
    async def start(
        cls, amis: Sequence[dict[str, Any]], *, regions: Sequence[str] = (), timeout: float = 60
    ) -> Emulator:
        """``amis`` are moto AMI records (``ami_id``, ``name``, ``owner_id``, ...): the only
        images the emulator knows, so a template's lookups find exactly these."""
        check_installed()
        workdir = Path(tempfile.mkdtemp(prefix="imagesmith-rehearse-ec2-"))
        try:
            amis_path = workdir / "amis.json"
            amis_path.write_text(json.dumps(list(amis)))
            log = (workdir / "emulator.log").open("wb")
            env = dict(os.environ, MOTO_AMIS_PATH=str(amis_path))
            # A session of its own: a terminal's Ctrl-C or a SIGTERM to the build's
            # process group reaches imagesmith, which still needs the emulator to clean up.
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "imagesmith.rehearse.emulator_server",
                *regions,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,
            )
            log.close()
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
            port = int(line.strip() or b"0")
            if not port:
                raise EmulatorError(
                    "The EC2 emulator stopped while starting: " + _tail(workdir / "emulator.log")
                )
        except BaseException as exc:
            await _kill(proc)
            shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(exc, TimeoutError):
                raise EmulatorError(
                    f"The EC2 emulator did not start within {timeout:.0f} seconds."
                ) from None
            raise
        return cls(proc, port, workdir)

    @property
    def running(self) -> bool:
        return self._proc.returncode is None

    async def stop(self) -> None:
        """Stop the emulator and remove its files. Safe to call twice."""
        await _kill(self._proc)
        shutil.rmtree(self._workdir, ignore_errors=True)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        # Closing stdin is the emulator's signal to exit; kill covers a wedged one.
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no output"
    return " | ".join(text[-lines:]) or "no output"

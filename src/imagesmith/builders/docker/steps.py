"""The docker builder's steps: pull, run, connect, (provision), commit or export.

Each step reads and sets fields of ``DockerState``. The container is registered for
removal before the create call is even made (by its generated name), so an interrupt
at any point leaves nothing behind; ``StepRun.cleanup`` removes it by force. The run's
journal holds the name meanwhile, for ``imagesmith cleanup`` after a SIGKILL
(``leftovers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagesmith.builders.docker import client as dc
from imagesmith.builders.docker import leftovers
from imagesmith.builders.docker.config import DockerConfig
from imagesmith.builders.docker.ecr import ecr_credentials
from imagesmith.builders.docker.runflags import RunSpec, create_body
from imagesmith.communicators.base import Communicator, NoneCommunicator
from imagesmith.engine.step import Step
from imagesmith.errors import BuildError

if TYPE_CHECKING:
    from imagesmith.builders.docker.client import Engine
    from imagesmith.engine.build import BuildRun
    from imagesmith.journal import Journal


@dataclass
class DockerState:
    config: DockerConfig
    client: Engine
    journal: Journal
    spec: RunSpec
    #: Whether the template gave run_command (then "Run command:" is shown).
    run_command_given: bool
    run_args: list[str]
    #: The run image's own config (Cmd, Entrypoint, ...), read before the container starts.
    base_config: dict[str, Any] = field(default_factory=dict)
    container_name: str = ""
    container_id: str = ""
    container_config: dict[str, Any] = field(default_factory=dict)
    #: Where the container has tmpfs mounts (``--tmpfs``, ``tmpfs``).
    tmpfs_mounts: list[str] = field(default_factory=list)
    comm: Communicator | None = None
    image_id: str = ""


async def _login(state: DockerState, build: BuildRun) -> str | None:
    """Packer's login sequence for the pull; returns the server to log out of."""
    c = state.config
    if not (c.login or c.ecr_login):
        return None
    username, password = c.login_username, c.login_password
    if c.ecr_login:
        build.ui.message("Fetching ECR credentials...")
        username, password = await ecr_credentials(c.login_server, c.aws)
    build.ui.message("Logging in...")
    try:
        await dc.login(state.client, c.login_server, username, password)
    except BuildError as e:
        raise BuildError(f"Error logging in: {e}") from None
    return c.login_server


class StepPull(Step[DockerState]):
    """Pulls the image when ``pull`` is set; reads the run image's config either way."""

    name = "StepPull"

    async def run(self, state: DockerState, build: BuildRun) -> None:
        c = state.config
        if c.pull:
            build.ui.say(f"Pulling Docker image: {c.image}")
            server = await _login(state, build)
            try:
                await dc.pull(state.client, c.image, c.platform)
            except BuildError as e:
                hint = ""
                if await _image_config(state.client, c.image) is not None:
                    hint = ' The image is on this Docker host: set "pull": false to use it as is.'
                raise BuildError(f"Error pulling Docker image: {e}.{hint}") from None
            finally:
                if server is not None:
                    build.ui.message("Logging out...")
                    dc.logout(state.client, server)
        base = await _image_config(state.client, state.spec.image)
        if base is None:
            raise BuildError(
                f'Image {state.spec.image} is not on this Docker host and "pull" is false: '
                f"build or pull it first (docker pull {state.spec.image}), or set "
                '"pull": true.'
            )
        state.base_config = base


async def _image_config(client: Engine, image: str) -> dict[str, Any] | None:
    try:
        info = await dc.call(client.inspect_image, image)
    except Exception as e:
        if dc.is_not_found(e):
            return None
        if dc.is_api_error(e):
            raise BuildError(dc.explain(e)) from None
        raise
    return dict(info.get("Config") or {})


def process_argv(spec: RunSpec, base: dict[str, Any]) -> list[str]:
    """The container's process as ``docker run`` would start it, as one argv.

    Starting it as the entrypoint alone (no Cmd) keeps it out of the committed image:
    at commit the base image's Entrypoint and Cmd are put back (see ``commit_config``).
    """
    if spec.entrypoint is not None:
        return spec.entrypoint + spec.command
    return list(base.get("Entrypoint") or []) + (spec.command or list(base.get("Cmd") or []))


def commit_config(container: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The config to commit: the container's (so ENV, WORKDIR, USER, labels... are the
    base image's plus what run_command set, as in Packer), except that ENTRYPOINT and
    CMD are the base image's. ``changes`` then apply on top (the daemon does that).

    An empty list, not null, keeps the daemon from filling Entrypoint back in from the
    container (which ran /bin/sh)."""
    return {
        "Env": container.get("Env"),
        "Entrypoint": list(base.get("Entrypoint") or []),
        "Cmd": base.get("Cmd"),
    }


def tmpfs_mounts(info: dict[str, Any]) -> list[str]:
    """The container's tmpfs mount points, from its inspect data."""
    found = list((info.get("HostConfig") or {}).get("Tmpfs") or {})
    for mount in info.get("Mounts") or []:
        if mount.get("Type") == "tmpfs" and mount.get("Destination"):
            found.append(str(mount["Destination"]))
    return sorted(set(found))


async def _network_mode(client: Engine, spec: RunSpec) -> str | None:
    """``--network`` when given; otherwise the daemon's default network if it has one,
    and ``none`` on a daemon started without a bridge (``dockerd --bridge=none``)."""
    if spec.network:
        return spec.network
    try:
        found = await dc.call(client.networks, "bridge")
    except Exception as e:
        if not dc.is_api_error(e):
            raise
        found = []
    return None if any(n.get("Name") == "bridge" for n in found) else "none"


class StepRun(Step[DockerState]):
    """Creates and starts the container (``container_id``, ``container_config``)."""

    name = "StepRun"

    async def run(self, state: DockerState, build: BuildRun) -> None:
        spec, client = state.spec, state.client
        build.ui.say("Starting docker container...")
        if state.run_command_given:
            build.ui.message(f"Run command: docker run {' '.join(state.run_args)}")
        argv = process_argv(spec, state.base_config)
        if not argv:
            raise BuildError(
                f"The container has nothing to run: image {spec.image} has no ENTRYPOINT or "
                'CMD and run_command gives none; add one, e.g. "--entrypoint=/bin/sh".'
            )
        network = await _network_mode(client, spec)
        body = create_body(spec, argv, network)
        # Named after the run, and journalled before it exists, so that `imagesmith
        # cleanup` finds a container a killed process left.
        state.container_name = spec.name or leftovers.container_name(build.info.run_uuid)
        leftovers.record(state.journal, build.info.name, state.container_name, client.api.endpoint)
        create = asyncio.ensure_future(
            dc.call(
                client.create_container,
                body,
                name=state.container_name,
                platform=spec.platform or state.config.platform or None,
            )
        )
        try:
            created = await asyncio.shield(create)
        except asyncio.CancelledError:
            # Learn the id of a container created just as the interrupt came, so the
            # cleanup removes it rather than racing its creation.
            with contextlib.suppress(BaseException):
                state.container_id = (await asyncio.wait_for(create, 30))["Id"]
            raise
        except Exception as e:
            raise self._create_error(state, e) from None
        state.container_id = created["Id"]
        try:
            await dc.call(client.start, state.container_id)
            info = await dc.call(client.inspect_container, state.container_id)
        except Exception as e:
            raise self._start_error(state, argv, e) from None
        if not info.get("State", {}).get("Running"):
            raise await self._exited(state, argv, info)
        state.container_config = dict(info.get("Config") or {})
        state.tmpfs_mounts = tmpfs_mounts(info)
        build.ui.message(f"Container ID: {state.container_id}")

    def _create_error(self, state: DockerState, e: BaseException) -> BaseException:
        if not dc.is_api_error(e):
            return e
        return BuildError(f"Error running container: {dc.explain(e)}")

    def _start_error(self, state: DockerState, argv: list[str], e: BaseException) -> BaseException:
        if not dc.is_api_error(e):
            return e
        text = dc.explain(e)
        if "no such file or directory" in text and argv[0] in text:
            return BuildError(
                f"Error running container: image {state.spec.image} has no {argv[0]}. The "
                "docker builder keeps the container alive with a shell and runs provisioners "
                "through /bin/sh: use an image that has one, or set run_command."
            )
        return BuildError(f"Error running container: {text}")

    async def _exited(
        self, state: DockerState, argv: list[str], info: dict[str, Any]
    ) -> BuildError:
        code = info.get("State", {}).get("ExitCode")
        logs = b""
        with contextlib.suppress(Exception):
            tty = bool((info.get("Config") or {}).get("Tty"))
            logs = await dc.call(state.client.logs, state.container_id, tail=5, tty=tty)
        tail = logs.decode(errors="replace").strip()
        said = f" Its last output: {tail}" if tail else ""
        return BuildError(
            f"The container stopped as soon as it started (exit code {code}): its process "
            f"{' '.join(argv)} ended. The build needs it to keep running: pass -i -t with a "
            f"shell in run_command, or a command that waits.{said}"
        )

    async def cleanup(self, state: DockerState, build: BuildRun) -> None:
        ref = state.container_id or state.container_name
        if not ref:
            return
        build.ui.say(f"Killing the container: {ref}")
        try:
            await dc.call(state.client.remove_container, ref)
        except Exception as e:
            if not dc.is_not_found(e):
                build.ui.error(
                    f"Error removing container {ref}: {dc.explain(e)}. Remove it with "
                    f"`docker rm -f {ref}` or `imagesmith cleanup`."
                )
                return
        leftovers.removed(state.journal, state.container_name)


class StepConnect(Step[DockerState]):
    """Sets ``comm`` and the build data a container build exposes."""

    name = "StepConnect"

    async def run(self, state: DockerState, build: BuildRun) -> None:
        from imagesmith.communicators.docker import DockerCommunicator

        c = state.config
        kind = c.communicator
        build.generated_data.update(
            {
                "ID": state.container_id,
                "Host": "",
                "Port": 0,
                "User": "",
                "Password": "",
                "ConnType": kind,
                "SSHPublicKey": "",
                "SSHPrivateKey": "",
            }
        )
        if kind == "none":
            state.comm = NoneCommunicator()
            return
        build.ui.say("Using docker communicator to connect:")
        state.comm = DockerCommunicator(
            state.client,
            state.container_id,
            exec_user=c.exec_user,
            container_user=str(state.container_config.get("User") or ""),
            workdir=str(state.container_config.get("WorkingDir") or ""),
            fix_upload_owner=c.fix_upload_owner,
            pty=c.pty,
            tmpfs_mounts=state.tmpfs_mounts,
        )


class StepCommit(Step[DockerState]):
    """Commits the container to an image (``image_id``; build data ``ImageSha256``)."""

    name = "StepCommit"

    async def run(self, state: DockerState, build: BuildRun) -> None:
        c = state.config
        build.ui.say("Committing the container")
        try:
            image_id = await dc.call(
                state.client.commit,
                state.container_id,
                message=c.message,
                author=c.author,
                changes=c.changes,
                config=commit_config(state.container_config, state.base_config),
                pause=True,
            )
        except Exception as e:
            if not dc.is_api_error(e):
                raise
            raise BuildError(f"Error committing container: {dc.explain(e)}") from None
        state.image_id = image_id
        build.generated_data["ImageSha256"] = state.image_id
        build.ui.message(f"Image ID: {state.image_id}")


class StepExport(Step[DockerState]):
    """Writes the container's file system to ``export_path`` as a tar file."""

    name = "StepExport"

    async def run(self, state: DockerState, build: BuildRun) -> None:
        path = state.config.export_path
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, mode=0o755, exist_ok=True)
        try:
            out = open(path, "wb")  # noqa: SIM115 - closed below, removed on failure
        except OSError as e:
            raise BuildError(f"Error creating output file: {e}") from None
        build.ui.say("Exporting the container")
        try:
            await dc.call(self._export, state, out)
        except BaseException as e:
            out.close()
            with contextlib.suppress(OSError):
                os.remove(path)
            if isinstance(e, Exception) and dc.is_api_error(e):
                raise BuildError(f"Error exporting container: {dc.explain(e)}") from None
            raise
        out.close()

    @staticmethod
    def _export(state: DockerState, out: Any) -> None:
        for chunk in state.client.export(state.container_id):
            out.write(chunk)

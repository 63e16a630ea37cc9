"""The Docker Engine API calls the docker builder, communicator and post-processors make.

``Engine`` names each endpoint the way the daemon documents it, over the small HTTP
client in ``api``; the helpers below turn its errors into one-sentence messages that
say what to do, and run blocking calls in a worker thread so the event loop (and an
interrupt) is never held up.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO, TypeVar

from imagesmith.builders.docker import api
from imagesmith.builders.docker.endpoint import Endpoint, EndpointError
from imagesmith.errors import BuildError

T = TypeVar("T")


class Engine:
    """The endpoints, by name. Every method blocks (see ``call``)."""

    def __init__(self, client: api.Client) -> None:
        self.api = client

    def close(self) -> None:
        """Nothing to release: each call has its own connection."""

    # -- images --------------------------------------------------------------------------

    def inspect_image(self, name: str) -> dict[str, Any]:
        return dict(self.api.call("GET", self.api.path("/images/{}/json", name)).json())

    def remove_image(self, name: str, *, force: bool = False) -> None:
        self.api.call("DELETE", self.api.path("/images/{}", name), params={"force": force}).read()

    def tag(self, image: str, repo: str, tag: str | None) -> None:
        path = self.api.path("/images/{}/tag", image)
        self.api.call("POST", path, params={"repo": repo, "tag": tag}).read()

    def pull(self, repo: str, tag: str, platform: str | None) -> Iterator[dict[str, Any]]:
        headers = {"X-Registry-Auth": self.api.registry_auth(registry_of(repo))}
        params = {"fromImage": repo, "tag": tag, "platform": platform or None}
        return self.api.call(
            "POST", "/images/create", params=params, headers=headers, timeout=None
        ).json_lines()

    def push(self, repo: str, tag: str | None) -> Iterator[dict[str, Any]]:
        headers = {"X-Registry-Auth": self.api.registry_auth(registry_of(repo))}
        path = self.api.path("/images/{}/push", repo)
        return self.api.call(
            "POST", path, params={"tag": tag}, headers=headers, timeout=None
        ).json_lines()

    def save(self, name: str) -> Iterator[bytes]:
        path = self.api.path("/images/{}/get", name)
        return self.api.call("GET", path, timeout=None).chunks(1 << 20)

    def import_image(
        self, source: BinaryIO, repo: str | None, tag: str | None, changes: list[str]
    ) -> Iterator[dict[str, Any]]:
        params = {"fromSrc": "-", "repo": repo, "tag": tag, "changes": changes or None}
        body = iter(lambda: source.read(1 << 20), b"")
        return self.api.call(
            "POST", "/images/create", params=params, body=body, timeout=None
        ).json_lines()

    def login(self, username: str, password: str, server: str) -> None:
        config = {"username": username, "password": password, "serveraddress": server}
        result = self.api.call("POST", "/auth", json_body=config).json() or {}
        if result.get("IdentityToken"):
            config = {"identitytoken": str(result["IdentityToken"]), "serveraddress": server}
        self.api.auth[server] = api.encode_auth(config)

    def logout(self, server: str) -> None:
        self.api.auth.pop(server, None)

    # -- containers ----------------------------------------------------------------------

    def networks(self, name: str) -> list[dict[str, Any]]:
        filters = json.dumps({"name": {name: True}})
        return list(self.api.call("GET", "/networks", params={"filters": filters}).json() or [])

    def containers(self, *, name: str) -> list[dict[str, Any]]:
        """All containers (running or not) whose name contains ``name``."""
        filters = json.dumps({"name": {name: True}})
        answer = self.api.call("GET", "/containers/json", params={"all": True, "filters": filters})
        return list(answer.json() or [])

    def create_container(
        self, config: dict[str, Any], *, name: str | None, platform: str | None
    ) -> dict[str, Any]:
        params = {"name": name, "platform": platform or None}
        return dict(
            self.api.call("POST", "/containers/create", params=params, json_body=config).json()
        )

    def start(self, container: str) -> None:
        self.api.call("POST", self.api.path("/containers/{}/start", container)).read()

    def inspect_container(self, container: str) -> dict[str, Any]:
        return dict(self.api.call("GET", self.api.path("/containers/{}/json", container)).json())

    def logs(self, container: str, *, tail: int, tty: bool) -> bytes:
        path = self.api.path("/containers/{}/logs", container)
        params = {"stdout": True, "stderr": True, "tail": tail}
        data = self.api.call("GET", path, params=params).read()
        return data if tty else api.demux_bytes(data)

    def remove_container(self, container: str) -> None:
        """Kill (if running) and remove, with its anonymous volumes."""
        path = self.api.path("/containers/{}", container)
        self.api.call("DELETE", path, params={"force": True, "v": True}).read()

    def commit(
        self,
        container: str,
        *,
        message: str,
        author: str,
        changes: list[str],
        config: dict[str, Any],
        pause: bool,
    ) -> str:
        params = {
            "container": container,
            "comment": message or None,
            "author": author or None,
            "changes": changes or None,
            "pause": pause,
        }
        result = self.api.call("POST", "/commit", params=params, json_body=config, timeout=None)
        return str(result.json()["Id"])

    def export(self, container: str) -> Iterator[bytes]:
        path = self.api.path("/containers/{}/export", container)
        return self.api.call("GET", path, timeout=None).chunks(1 << 20)

    def put_archive(
        self, container: str, path: str, body: Iterable[bytes], params: dict[str, str]
    ) -> None:
        url = self.api.path("/containers/{}/archive", container)
        query = {"path": path, "noOverwriteDirNonDir": "1", **params}
        self.api.call("PUT", url, params=query, body=body, timeout=None).read()

    def get_archive(self, container: str, path: str) -> Iterator[bytes]:
        url = self.api.path("/containers/{}/archive", container)
        return self.api.call("GET", url, params={"path": path}, timeout=None).chunks()

    # -- exec ----------------------------------------------------------------------------

    def exec_create(
        self, container: str, cmd: list[str], *, user: str, tty: bool, stdin: bool = False
    ) -> str:
        config = {
            "AttachStdin": stdin,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": tty,
            "Cmd": cmd,
            "User": user,
        }
        path = self.api.path("/containers/{}/exec", container)
        return str(self.api.call("POST", path, json_body=config).json()["Id"])

    def exec_start(
        self,
        exec_id: str,
        *,
        tty: bool,
        on_output: Callable[[int, bytes], None],
        stdin: Iterable[bytes] | None = None,
    ) -> None:
        self.api.exec_stream(exec_id, tty=tty, on_output=on_output, stdin=stdin)

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return dict(self.api.call("GET", self.api.path("/exec/{}/json", exec_id)).json())


def no_daemon_message(endpoint: Endpoint, detail: str = "") -> str:
    where = endpoint.host
    why = f" ({detail})" if detail else ""
    if endpoint.context:
        # The user chose this daemon through a context: name it, since the address alone
        # may surprise someone who has forgotten `docker context use`.
        return (
            f"Cannot connect to the Docker daemon at {where}{why}, the endpoint of docker "
            f'context "{endpoint.context}". Check it with `docker --context '
            f"{endpoint.context} version`, or choose another with `docker context use`."
        )
    if where.startswith("ssh://"):
        # The daemon is behind ssh: the way to check it is the way it is reached.
        from imagesmith.builders.docker.sshdial import SshDialer

        try:
            check = SshDialer(where).check_command()
        except ValueError:
            check = "ssh HOST docker version"
        return (
            f"Cannot connect to the Docker daemon at {where}{why}. Check that `{check}` "
            "works from this machine and that the login may use the daemon there."
        )
    return (
        f"Cannot connect to the Docker daemon at {where}{why}. Is the docker daemon "
        "running? Start it with `systemctl start docker` (or run `dockerd`), or set "
        "DOCKER_HOST to a running daemon."
    )


def connect() -> Engine:
    """A client for the daemon the docker command would use (``DOCKER_HOST`` or the
    docker context); ``BuildError`` for an address it cannot use. Whether a daemon
    answers shows at the first call (``explain`` then says how to start one): checking
    here would cost a round trip on every build."""
    try:
        return Engine(api.Client())
    except EndpointError as e:
        raise BuildError(str(e)) from None
    except api.DaemonUnreachable as e:
        # The address itself (DOCKER_HOST, the TLS files) is unusable: nothing to start.
        raise BuildError(
            f"Cannot use the Docker daemon at {e.endpoint.host}: {e.reason}."
        ) from None


def explain(e: BaseException) -> str:
    """The daemon's own explanation of a failed call."""
    if isinstance(e, api.DaemonUnreachable):
        return no_daemon_message(e.endpoint, e.reason)
    if isinstance(e, api.ApiError):
        return e.message
    return str(e)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call in a worker thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def is_not_found(e: BaseException) -> bool:
    return isinstance(e, api.NotFound)


def is_api_error(e: BaseException) -> bool:
    return isinstance(e, api.DockerError)


def status_of(e: BaseException) -> int | None:
    return e.status if isinstance(e, api.ApiError) else None


def split_repo_tag(name: str) -> tuple[str, str | None]:
    """``repo[:tag]`` split the way Docker does (a ``:`` inside a host:port is no tag)."""
    if "@" in name:
        return name, None
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        return name, None
    return repo, tag


def registry_of(name: str) -> str:
    """The registry host of an image reference (Docker Hub when it names none)."""
    first, sep, _ = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


async def login(client: Engine, server: str, username: str, password: str) -> None:
    """Log the client in to ``server``; the credentials stay in this client only."""
    from imagesmith.builders.docker.credentials import server_key

    try:
        await call(client.login, username, password, server_key(server))
    except api.DockerError as e:
        raise BuildError(explain(e)) from None
    if server and server_key(server) != server:
        client.api.auth[server] = client.api.auth[server_key(server)]


def logout(client: Engine, server: str) -> None:
    """Forget the credentials: with the API a login lives in the client, not on disk."""
    from imagesmith.builders.docker.credentials import server_key

    client.logout(server)
    client.logout(server_key(server))


def _follow(events: Iterator[dict[str, Any]]) -> None:
    """Read a progress stream to its end; the daemon reports failures inside it."""
    for event in events:
        if "error" in event:
            raise BuildError(str(event["error"]).strip())


async def pull(client: Engine, image: str, platform: str | None = None) -> None:
    """Pull ``image``, raising ``BuildError`` with the daemon's reason."""
    repo, tag = split_repo_tag(image)

    def run() -> None:
        _follow(client.pull(repo, tag or "latest", platform))

    try:
        await call(run)
    except api.DockerError as e:
        raise BuildError(explain(e)) from None


async def push(client: Engine, name: str) -> None:
    """Push ``repo:tag``."""
    repo, tag = split_repo_tag(name)

    def run() -> None:
        _follow(client.push(repo, tag))

    try:
        await call(run)
    except api.DockerError as e:
        raise BuildError(explain(e)) from None


def image_id_from_status(status: str) -> str:
    """The image id an import reports as its last status (``sha256:...``)."""
    status = status.strip()
    if not status.startswith("sha256:"):
        raise BuildError(f"Error importing image: the daemon reported no image id ({status!r})")
    return status

"""The Docker Engine API connection the docker builder and post-processors share.

A thin layer over the Docker SDK's low-level ``APIClient``: it connects with the
user's ``DOCKER_HOST`` settings, turns SDK exceptions into one-sentence messages that
say what to do, and runs blocking calls in a worker thread so the event loop (and an
interrupt) is never held up. The SDK is imported here, inside functions only.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any, TypeVar

from imagesmith.errors import BuildError

T = TypeVar("T")

DEFAULT_HOST = "unix:///var/run/docker.sock"
# Long enough for a commit or an export of a large container; short waits are
# bounded by the daemon itself.
API_TIMEOUT = 600


def daemon_address() -> str:
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def no_daemon_message(detail: str = "") -> str:
    where = daemon_address()
    why = f" ({detail})" if detail else ""
    return (
        f"Cannot connect to the Docker daemon at {where}{why}. Is the docker daemon "
        "running? Start it with `systemctl start docker` (or run `dockerd`), or set "
        "DOCKER_HOST to a running daemon."
    )


def connect() -> Any:
    """A connected ``docker.APIClient``; ``BuildError`` with a hint when there is none."""
    from docker.utils import kwargs_from_env

    import docker

    kwargs = kwargs_from_env()
    kwargs.setdefault("base_url", DEFAULT_HOST)
    try:
        # version="auto" asks the daemon, which both checks it answers and lets an
        # older engine (API 1.41 here) serve a newer SDK.
        return docker.APIClient(version="auto", timeout=API_TIMEOUT, **kwargs)
    except docker.errors.DockerException as e:
        raise BuildError(no_daemon_message(_root_cause(e))) from None


def _root_cause(e: BaseException) -> str:
    text = str(e)
    for marker in ("Connection refused", "No such file or directory", "Permission denied"):
        if marker in text:
            return marker.lower()
    return text.split(": ", 1)[-1][:200]


def explain(e: BaseException) -> str:
    """The daemon's own explanation of a failed call, without the SDK's URL noise."""
    import docker.errors

    if isinstance(e, docker.errors.APIError):
        explanation = e.explanation
        if isinstance(explanation, bytes):
            explanation = explanation.decode(errors="replace")
        if explanation:
            return str(explanation).strip()
        if e.response is not None:
            return f"{e.response.status_code} {e.response.reason}"
    if _is_connection_error(e):
        return no_daemon_message(_root_cause(e))
    return str(e)


def _is_connection_error(e: BaseException) -> bool:
    import requests

    return isinstance(e, requests.exceptions.ConnectionError)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking SDK call in a worker thread."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def is_not_found(e: BaseException) -> bool:
    import docker.errors

    return isinstance(e, docker.errors.NotFound)


def is_api_error(e: BaseException) -> bool:
    import docker.errors

    return isinstance(e, docker.errors.DockerException) or _is_connection_error(e)


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


async def login(client: Any, server: str, username: str, password: str) -> None:
    """Log the client in to ``server``; the credentials stay in this client only."""
    try:
        await call(client.login, username, password=password, registry=server or None, reauth=True)
    except Exception as e:
        if not is_api_error(e):
            raise
        raise BuildError(explain(e)) from None


def logout(client: Any, server: str) -> None:
    """Forget the credentials: with the API a login lives in the client, not on disk."""
    configs = getattr(client, "_auth_configs", None)
    auths = getattr(configs, "auths", None)
    if isinstance(auths, dict):
        auths.pop(server or "https://index.docker.io/v1/", None)


async def pull(client: Any, image: str, platform: str | None = None) -> None:
    """Pull ``image`` (every tag's layers), raising ``BuildError`` with the daemon's reason."""
    import json

    repo, tag = split_repo_tag(image)

    def run() -> None:
        stream = client.pull(repo, tag=tag or "latest", stream=True, platform=platform or None)
        for raw in stream:
            for line in raw.decode(errors="replace").splitlines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if "error" in event:
                    raise BuildError(str(event["error"]).strip())

    try:
        await call(run)
    except BuildError:
        raise
    except Exception as e:
        if not is_api_error(e):
            raise
        raise BuildError(explain(e)) from None


async def push(client: Any, name: str) -> None:
    """Push ``repo:tag``; the daemon reports push errors inside the stream."""
    import json

    repo, tag = split_repo_tag(name)

    def run() -> None:
        for raw in client.push(repo, tag=tag, stream=True):
            for line in raw.decode(errors="replace").splitlines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if "error" in event:
                    raise BuildError(str(event["error"]).strip())

    try:
        await call(run)
    except BuildError:
        raise
    except Exception as e:
        if not is_api_error(e):
            raise
        raise BuildError(explain(e)) from None

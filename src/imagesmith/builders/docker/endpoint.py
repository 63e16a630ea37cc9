"""Which daemon the docker builder talks to, found the way the docker command finds it.

Packer's docker builder ran the ``docker`` command, so a template built on whatever
daemon that command would use: ``DOCKER_HOST`` when it is set, otherwise the docker
context chosen by ``DOCKER_CONTEXT`` or by ``currentContext`` in
``$DOCKER_CONFIG/config.json`` (``docker context use``), otherwise the local socket.
This module makes the same choice, reading the context store the docker command
writes:

- ``$DOCKER_CONFIG/contexts/meta/<sha256 of the name>/meta.json`` holds the context's
  endpoint, ``{"Endpoints": {"docker": {"Host": ..., "SkipTLSVerify": ...}}}``;
- ``$DOCKER_CONFIG/contexts/tls/<sha256 of the name>/docker/`` holds its ``ca.pem``,
  ``cert.pem`` and ``key.pem``, when it has any.

The context named ``default`` is the one that is not stored: ``DOCKER_HOST``'s default,
with ``DOCKER_TLS_VERIFY`` and ``DOCKER_CERT_PATH`` as usual.

Where the docker command only warns (a ``config.json`` it cannot parse) and goes on
with the local daemon, this module stops with the file's name: building on another
daemon than the one the user chose is the worse surprise.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_CONTEXT = "default"


class EndpointError(Exception):
    """The docker configuration names a daemon that cannot be found; the message says
    which file or variable, and what to do."""


@dataclass(frozen=True)
class Tls:
    """Where a TCP endpoint's certificates are, and whether the daemon's is checked."""

    folder: str
    verify: bool


@dataclass(frozen=True)
class Endpoint:
    host: str
    tls: Tls | None = None
    #: The docker context the address came from; None for DOCKER_HOST and the default.
    context: str | None = None

    @property
    def origin(self) -> str:
        """What chose this address, for messages."""
        return f'docker context "{self.context}"' if self.context else "DOCKER_HOST"


def config_dir(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def resolve(env: Mapping[str, str] | None = None) -> Endpoint:
    """The daemon the docker command would use in this environment."""
    env = os.environ if env is None else env
    if env.get("DOCKER_HOST"):
        return _from_environment(env["DOCKER_HOST"], env)
    name, chosen_by = _context_name(env)
    if name == DEFAULT_CONTEXT:
        return _from_environment(DEFAULT_HOST, env)
    return _from_store(name, chosen_by, config_dir(env))


def _from_environment(host: str, env: Mapping[str, str]) -> Endpoint:
    tls = None
    if host.startswith(("tcp://", "http://", "https://")):
        verify = bool(env.get("DOCKER_TLS_VERIFY"))
        if verify or env.get("DOCKER_CERT_PATH") or host.startswith("https://"):
            # The docker command's default certificate folder is its configuration folder.
            folder = env.get("DOCKER_CERT_PATH") or config_dir(env)
            tls = Tls(folder, verify)
    return Endpoint(host, tls)


def _context_name(env: Mapping[str, str]) -> tuple[str, str]:
    """The chosen context's name, and what chose it (for messages)."""
    if env.get("DOCKER_CONTEXT"):
        return env["DOCKER_CONTEXT"], "DOCKER_CONTEXT"
    path = os.path.join(config_dir(env), "config.json")
    config = _load(
        path, "fix it so that the current docker context can be read, or set DOCKER_HOST"
    )
    if config is None:
        return DEFAULT_CONTEXT, ""
    name = config.get("currentContext") if isinstance(config, dict) else None
    if not name:
        return DEFAULT_CONTEXT, ""
    if not isinstance(name, str):
        raise EndpointError(
            f'"currentContext" in {path} must be the name of a docker context; fix it with '
            "`docker context use NAME`."
        )
    return name, f'"currentContext" in {path}'


def _from_store(name: str, chosen_by: str, folder: str) -> Endpoint:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta_path = os.path.join(folder, "contexts", "meta", digest, "meta.json")
    meta = _load(meta_path, f'recreate docker context "{name}" with `docker context create`')
    if meta is None:
        raise EndpointError(
            f'Docker context "{name}" (set by {chosen_by}) does not exist in '
            f"{os.path.join(folder, 'contexts')}; create it with `docker context create`, "
            "or choose another with `docker context use`."
        )
    endpoints = meta.get("Endpoints") if isinstance(meta, dict) else None
    docker = endpoints.get("docker") if isinstance(endpoints, dict) else None
    host = docker.get("Host") if isinstance(docker, dict) else None
    if not isinstance(host, str) or not host:
        raise EndpointError(
            f'Docker context "{name}" in {meta_path} has no docker endpoint; give it one with '
            f"`docker context update {name} --docker host=...`."
        )
    assert isinstance(docker, dict)
    skip_verify = bool(docker.get("SkipTLSVerify"))
    tls_folder = os.path.join(folder, "contexts", "tls", digest, "docker")
    tls = None
    # As the docker command: TLS when the context has certificates or skips their check.
    if skip_verify or _has_files(tls_folder):
        tls = Tls(tls_folder, not skip_verify)
    return Endpoint(host, tls, name)


def _load(path: str, fix: str) -> object | None:
    """The JSON document in ``path``, None when there is no such file; ``fix`` ends the
    message about a file that cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise EndpointError(f"Cannot read {path} ({e.strerror}); {fix}.") from None
    except ValueError as e:
        raise EndpointError(f"{path} is not valid JSON ({e}); {fix}.") from None


def _has_files(folder: str) -> bool:
    try:
        return any(entry.is_file() for entry in os.scandir(folder))
    except OSError:
        return False

"""Registry credentials from the user's docker configuration, as the docker CLI finds them.

Packer's docker steps ran ``docker pull`` and ``docker push``, which use what ``docker
login`` stored: ``auths`` entries of ``$DOCKER_CONFIG/config.json`` (default
``~/.docker``), or a credential helper (``credHelpers`` for one registry, ``credsStore``
for all), run as ``docker-credential-<name> get``. This module finds the same, so a
pull or push without ``login`` in the template is authenticated the same way.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess

from imagesmith.builders.docker.endpoint import config_dir

HUB = "https://index.docker.io/v1/"


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def server_key(registry: str) -> str:
    """The key docker uses for a registry (``docker.io`` is stored as Hub's v1 URL)."""
    if registry in ("", "docker.io", "index.docker.io", "registry-1.docker.io"):
        return HUB
    return registry


def _host(key: str) -> str:
    """``https://r.example/v1/`` and ``r.example`` name the same registry."""
    if "://" in key:
        key = key.split("://", 1)[1]
    return key.split("/", 1)[0]


def same_registry(a: str, b: str) -> bool:
    return _host(server_key(a)) == _host(server_key(b))


def lookup(registry: str) -> dict[str, str] | None:
    """``{"username", "password", "serveraddress"}`` (or an identity token) for the
    registry, or None when the configuration holds nothing for it."""
    try:
        with open(config_path(), encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    key = server_key(registry)
    helpers = config.get("credHelpers") or {}
    helper = helpers.get(key) or helpers.get(_host(key)) or config.get("credsStore")
    if helper:
        found = _from_helper(str(helper), key)
        if found:
            return found
    auths = config.get("auths") or {}
    for stored, entry in auths.items():
        if same_registry(stored, key):
            return _from_entry(entry, key)
    return None


def _from_entry(entry: object, server: str) -> dict[str, str] | None:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return {"identitytoken": str(entry["identitytoken"]), "serveraddress": server}
    encoded = entry.get("auth")
    if not encoded:
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return {"username": user, "password": password, "serveraddress": server}


def _from_helper(name: str, server: str) -> dict[str, str] | None:
    exe = shutil.which(f"docker-credential-{name}")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, "get"], input=server, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        data = json.loads(done.stdout)
    except ValueError:
        return None
    user, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    if user == "<token>":
        return {"identitytoken": secret, "serveraddress": server}
    return {"username": user, "password": secret, "serveraddress": server}

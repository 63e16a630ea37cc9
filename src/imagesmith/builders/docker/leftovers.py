"""Containers of docker builds that could not remove them, for ``imagesmith cleanup``.

A build removes its container whatever happens to the build, except when the process
itself is killed (SIGKILL, a CI job cancelled, the machine lost). For that case:

- the container's name says whose it is: ``imagesmith-<run tag>-<random>``, the run tag
  being the first 12 hex digits of the run id. Not a label, since a commit would carry
  labels into the image;
- the run's journal (``imagesmith.journal``) records the name and the daemon before the
  container is created, and crosses it off once it is removed.

``cleanup`` removes what the journals of dead runs list, on the daemon each was made
on, and looks on the daemon of its own environment (``DOCKER_HOST`` or the docker
context) for containers named like that whose run has no journal here; those are only
listed, unless ``-force``, since a build on another machine may share the daemon.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from typing import Any

from imagesmith.builders.docker import api
from imagesmith.builders.docker.client import Engine, explain, is_not_found
from imagesmith.builders.docker.endpoint import Endpoint, Tls
from imagesmith.journal import Entry, Journal, Leftover

KIND = "docker-container"
_NAME = re.compile(r"imagesmith-([0-9a-f]{12})-[0-9a-f]{8}")


def run_tag(run_id: str) -> str:
    return run_id.replace("-", "")[:12]


def container_name(run_id: str) -> str:
    return f"imagesmith-{run_tag(run_id)}-{os.urandom(4).hex()}"


def record(journal: Journal, build: str, name: str, endpoint: Endpoint) -> None:
    """The container is about to be created: journal it with how to reach its daemon."""
    journal.add(
        Entry(
            run_id=journal.run_id,
            kind=KIND,
            id=name,
            region="",
            build=build,
            created=time.time(),
            endpoint=endpoint.host,
            extra=_endpoint_extra(endpoint),
        )
    )


def removed(journal: Journal, name: str) -> None:
    journal.remove(KIND, "", name)


def _endpoint_extra(endpoint: Endpoint) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if endpoint.context:
        extra["context"] = endpoint.context
    if endpoint.tls:
        extra["tls"] = {"folder": endpoint.tls.folder, "verify": endpoint.tls.verify}
    return extra


def endpoint_of(entry: Entry) -> Endpoint:
    """The daemon a journalled container was created on."""
    tls = entry.extra.get("tls")
    return Endpoint(
        entry.endpoint,
        Tls(str(tls["folder"]), bool(tls["verify"])) if isinstance(tls, dict) else None,
        entry.extra.get("context") or None,
    )


def search(
    endpoint: Endpoint, known_runs: set[str], running_runs: set[str]
) -> tuple[list[Leftover], list[Leftover]]:
    """Containers on ``endpoint`` named after a run (blocking): (of runs whose journal is
    here, of others). Runs still going are left out."""
    engine = Engine(api.Client(endpoint))
    try:
        containers = engine.containers(name="imagesmith-")
    finally:
        engine.close()
    known_by_tag = {run_tag(r): r for r in known_runs}
    running_tags = {run_tag(r) for r in running_runs}
    known: list[Leftover] = []
    foreign: list[Leftover] = []
    for container in containers:
        for name in container.get("Names") or []:
            match = _NAME.fullmatch(name.lstrip("/"))
            if match is None or match.group(1) in running_tags:
                continue
            tag = match.group(1)
            entry = Entry(
                run_id=known_by_tag.get(tag, tag),
                kind=KIND,
                id=match.group(0),
                region="",
                endpoint=endpoint.host,
                extra=_endpoint_extra(endpoint),
            )
            (known if tag in known_by_tag else foreign).append(Leftover(entry))
    return known, foreign


async def remove_all(
    leftovers: list[Leftover], *, say: Callable[[str], None], error: Callable[[str], None]
) -> int:
    """Remove the containers (killing them first); returns how many could not be."""
    failures = 0
    for leftover in leftovers:
        say(f"Removing {leftover.label}...")
        try:
            await asyncio.to_thread(_remove, leftover.entry)
        except api.DockerError as e:
            error(f"Could not remove {leftover.label}: {explain(e)}")
            failures += 1
            continue
        if leftover.journal is not None:
            leftover.journal.remove(leftover.entry)
        say(f"Removed {leftover.label}")
    return failures


def _remove(entry: Entry) -> None:
    engine = Engine(api.Client(endpoint_of(entry)))
    try:
        engine.remove_container(entry.id)
    except api.DockerError as e:
        # Never created (killed just before), or removed by hand since: nothing to do.
        if not is_not_found(e):
            raise
    finally:
        engine.close()

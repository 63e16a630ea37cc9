"""``imagesmith build -rehearse``: run a template's amazon builds with no AWS account.

The build command calls ``prepare_rehearsal`` once the plan is loaded and before the
builds run, inside the event loop that runs them, and ``Rehearsal.close`` after them,
whatever happened (``rehearsing`` does both)::

    async with rehearsing(plan, image=..., map_path=..., say=console.say) as rehearsal:
        result = await run_plan(plan, console, ...)

While it is open, ``imagesmith.rehearse.seam.active()`` hands the amazon builders the
emulator's endpoint and the container machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagesmith.errors import ImagesmithError
from imagesmith.rehearse import images, notices, seam
from imagesmith.rehearse.emulator import Emulator, check_installed
from imagesmith.rehearse.machine import (
    ContainerMachines,
    sweep_stale_containers,
    sweep_stale_volumes,
)

if TYPE_CHECKING:
    from imagesmith.engine.plan import Plan, PlannedBuild

REHEARSED_TYPES = ("amazon-ebs",)
PREFIX = "==> Rehearsal: "

# Environment a rehearsal sets for its duration, so that any AWS client in the
# process (a plugin, a shell-local script) also talks to the emulator, never to AWS.
_ENV_SET = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
_ENV_CLEARED = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_IAM")


class RehearsalError(ImagesmithError):
    pass


@dataclass
class Rehearsal:
    emulator: Emulator
    machines: ContainerMachines
    sources: list[images.ResolvedSource]
    notices: list[str]
    say: Callable[[str], None]
    _lookup: _Ec2Lookup
    _saved_env: dict[str, str | None] = field(default_factory=dict)
    _closed: bool = False

    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url

    async def close(self) -> None:
        """Remove the containers and stop the emulator; name the images left to inspect."""
        if self._closed:
            return
        self._closed = True
        made: list[tuple[str, dict[str, Any]]] = []
        try:
            # What the emulator holds now is what the template would leave on AWS.
            with contextlib.suppress(Exception):
                made = await asyncio.to_thread(self._lookup.owned_images)
            await self.machines.close()
        finally:
            seam.deactivate()
            await self.emulator.stop()
            _restore_env(self._saved_env)
        for region, image in made:
            tags = ", ".join(f"{t['Key']}={t['Value']}" for t in image.get("Tags", []))
            self.say(
                f'{PREFIX}{region}: AMI {image["ImageId"]} "{image.get("Name", "")}"'
                + (f" tags: {tags}" if tags else " (no tags)")
            )
        for image_id, local in self.machines.committed.items():
            self.say(
                f"{PREFIX}AMI {image_id} is the local image {local[1]} (docker run --rm -it "
                f"{local[0]} bash)"
            )


def source_spec(build: PlannedBuild) -> images.SourceSpec:
    config = build.builder.config
    ami_filter = config.run.source_ami_filter
    return images.SourceSpec(
        build=build.name,
        source_ami=config.run.source_ami,
        filters=ami_filter.all_filters(),
        owners=list(ami_filter.owners),
    )


def build_regions(build: PlannedBuild) -> list[str]:
    config = build.builder.config
    region = config.access.effective_region() or "us-east-1"
    return list(dict.fromkeys([region, *config.ami.ami_regions]))


async def prepare_rehearsal(
    plan: Plan,
    *,
    image: str | None = None,
    map_path: str | None = None,
    say: Callable[[str], None] = print,
    docker_client: Any = None,
) -> Rehearsal:
    """Start the emulator serving the template's source AMIs and make the rehearsal
    active. ``image`` is ``-rehearse-image``, ``map_path`` is ``-rehearse-map``.

    Raises ``ImagesmithError`` with one clear sentence when the rehearsal cannot run
    (moto missing, no amazon builds, a stand-in image absent, a bad map file).
    """
    check_installed()
    mapping = images.load_mapping(map_path) if map_path else None
    builds = [b for b in plan.builds if b.builder_type in REHEARSED_TYPES]
    others = sorted({b.builder_type for b in plan.builds} - set(REHEARSED_TYPES))
    if not builds:
        raise RehearsalError(
            "-rehearse runs amazon-ebs builds, and this template has none"
            + (f" (its builders: {', '.join(others)})." if others else ".")
        )

    sources: list[images.ResolvedSource] = []
    regions: list[str] = []
    notes = notices.general_notices()
    for build in builds:
        region = build_regions(build)[0]
        resolved = images.resolve(
            source_spec(build), region=region, flag_image=image, mapping=mapping
        )
        sources.append(resolved)
        regions += build_regions(build)
        notes += resolved.notices
        notes += notices.build_notices(build.name, build.builder.config)
    if others:
        notes.append(
            f"Builds of type {', '.join(others)} run as usual: a rehearsal only emulates EC2."
        )

    client = docker_client or await asyncio.to_thread(_docker_client)
    await asyncio.to_thread(_check_images, client, sources)
    await asyncio.to_thread(sweep_stale_volumes)
    await asyncio.to_thread(sweep_stale_containers, client)

    amis = list({s.ami["ami_id"]: s.ami for s in sources}.values())
    emulator = await Emulator.start(amis, regions=list(dict.fromkeys(regions)))
    image_by_ami = {s.ami["ami_id"]: s.image for s in sources}
    fallback = image or (mapping.default if mapping and mapping.default else None)
    ec2 = _Ec2Lookup(emulator.endpoint_url, list(dict.fromkeys(regions)))

    async def image_for(instance_id: str) -> str:
        ami_id = await asyncio.to_thread(ec2.image_of_instance, instance_id)
        found = image_by_ami.get(ami_id) or fallback
        if found is None:
            raise RehearsalError(
                f"The rehearsal has no image for instance {instance_id} launched from "
                f"{ami_id}: name one with -rehearse-image or -rehearse-map."
            )
        return found

    async def ami_exists(image_id: str) -> bool:
        return await asyncio.to_thread(ec2.image_exists, image_id)

    machines = ContainerMachines(
        run_id=plan.run_uuid or str(os.getpid()),
        image_for=image_for,
        ami_exists=ami_exists,
        report=lambda msg: say(PREFIX + msg),
        docker_client=client,
    )
    rehearsal = Rehearsal(emulator, machines, sources, notices.unique(notes), say, ec2)
    rehearsal._saved_env = _apply_env(emulator.endpoint_url)
    seam.activate(seam.RehearsalTarget(endpoint_url=emulator.endpoint_url, backend=machines))

    say(
        f"{PREFIX}no AWS account is used: EC2 is emulated at {emulator.endpoint_url} and "
        "each instance is a container on the local Docker engine."
    )
    for s in sources:
        say(f"{PREFIX}{s.spec.build}: source AMI {s.ami['ami_id']} runs as {s.image}")
    for note in rehearsal.notices:
        say(f"{PREFIX}{note}")
    return rehearsal


@asynccontextmanager
async def rehearsing(
    plan: Plan,
    *,
    image: str | None = None,
    map_path: str | None = None,
    say: Callable[[str], None] = print,
) -> AsyncIterator[Rehearsal]:
    rehearsal = await prepare_rehearsal(plan, image=image, map_path=map_path, say=say)
    try:
        yield rehearsal
    finally:
        await asyncio.shield(rehearsal.close())


class _Ec2Lookup:
    """The few emulator queries the rehearsal itself makes."""

    def __init__(self, endpoint_url: str, regions: list[str]) -> None:
        self.endpoint_url = endpoint_url
        self.regions = regions or ["us-east-1"]
        self._clients: dict[str, Any] = {}

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            import boto3

            self._clients[region] = boto3.client(
                "ec2",
                region_name=region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id="rehearsal",
                aws_secret_access_key="rehearsal",  # the emulator accepts any key
            )
        return self._clients[region]

    def image_of_instance(self, instance_id: str) -> str:
        for region in self.regions:
            try:
                answer = self._client(region).describe_instances(InstanceIds=[instance_id])
            except Exception:  # not in this region
                continue
            for reservation in answer.get("Reservations", []):
                for instance in reservation.get("Instances", []):
                    return str(instance.get("ImageId", ""))
        return ""

    def owned_images(self) -> list[tuple[str, dict[str, Any]]]:
        """(region, image) of every AMI the builds made, build regions and copies."""
        found = []
        for region in self.regions:
            for image in self._client(region).describe_images(Owners=["self"])["Images"]:
                found.append((region, image))
        return found

    def image_exists(self, image_id: str) -> bool:
        for region in self.regions:
            try:
                answer = self._client(region).describe_images(ImageIds=[image_id])
            except Exception:  # InvalidAMIID.NotFound in this region
                continue
            if answer.get("Images"):
                return True
        return False


def _docker_client() -> Any:
    import docker.errors

    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise RehearsalError(
            f"A rehearsal runs instances on the local Docker engine, which cannot be "
            f"reached ({exc}): start dockerd, or run scripts/quickstart.sh."
        ) from None
    return client


def _check_images(client: Any, sources: list[images.ResolvedSource]) -> None:
    import docker.errors

    for image in dict.fromkeys(s.image for s in sources):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            hint = (
                "build it with scripts/rehearse-base-image.sh"
                if image in (images.DEBIAN_IMAGE, images.AMAZON_STANDIN_IMAGE)
                else "docker pull or build it, or choose another with -rehearse-image"
            )
            raise RehearsalError(
                f"The image {image} that stands in for a source AMI is not on the local "
                f"Docker engine: {hint}."
            ) from None


def _apply_env(endpoint_url: str) -> dict[str, str | None]:
    saved = {k: os.environ.get(k) for k in (*_ENV_SET, *_ENV_CLEARED)}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint_url,
        AWS_ACCESS_KEY_ID="rehearsal",
        AWS_SECRET_ACCESS_KEY="rehearsal",  # the emulator accepts any key
    )
    for key in _ENV_CLEARED:
        os.environ.pop(key, None)
    return saved


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

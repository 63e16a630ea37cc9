"""Instances of a rehearsal: each one a container on the local Docker engine.

A launched instance becomes a container of the image that stands in for its source
AMI, on the host's network, running an SSH server on a free loopback port. The
build's user gets passwordless sudo and the build's temporary key, as cloud-init gives
them on EC2, so the provisioners run for real over SSH. "Creating the AMI" commits the
container to a local image named after the AMI.

Nothing outlives the run: terminating an instance removes its container, ``close``
removes every container the rehearsal started, and a container also ends by itself
when the imagesmith process that started it dies, SIGKILL included (its main process
waits on a stdin that only imagesmith holds open, and the engine removes it on exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from imagesmith.errors import ImagesmithError

LABEL = "imagesmith.rehearsal"
LABEL_RUN = "imagesmith.rehearsal.run"
IMAGE_REPOSITORY = "imagesmith-rehearsal"
# Backing files of volume stand-ins live in <tmp>/<prefix><pid>-<random>/.
VOLUMES_PREFIX = "imagesmith-rehearsal-volumes-"
LABEL_PID = "imagesmith.rehearsal.pid"

T = TypeVar("T")

# The container's main process: prepare the user as cloud-init would, start sshd on
# the given port, and live only while imagesmith keeps stdin open.
START_SCRIPT = r"""
set -eu
user=$1 port=$2 key=$3
if [ ! -x /usr/sbin/sshd ]; then
    echo "rehearsal: this image has no SSH server (/usr/sbin/sshd)" >&2; exit 97
fi
if ! command -v sudo >/dev/null 2>&1; then
    echo "rehearsal: this image has no sudo" >&2; exit 98
fi
if ! id "$user" >/dev/null 2>&1; then
    if command -v useradd >/dev/null 2>&1; then
        useradd -m -s /bin/bash "$user" 2>/dev/null || useradd -m "$user"
    else
        adduser -D "$user"
    fi
fi
if [ "$user" != root ] && command -v usermod >/dev/null 2>&1; then
    usermod -p '*' "$user"  # a locked ('!') account may not log in even with a key
fi
home=$(awk -F: -v u="$user" '$1 == u { print $6 }' /etc/passwd)
mkdir -p "$home/.ssh"
printf '%s\n' "$key" >> "$home/.ssh/authorized_keys"
chmod 700 "$home/.ssh"
chmod 600 "$home/.ssh/authorized_keys"
chown -R "$(id -u "$user"):$(id -g "$user")" "$home/.ssh"
mkdir -p /etc/sudoers.d
printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" > /etc/sudoers.d/90-rehearsal-users
chmod 440 /etc/sudoers.d/90-rehearsal-users
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
# Provisioning scripts that must act differently in a container (mount, swapon) test
# for this file. /run/imagesmith is a tmpfs, so the marker never reaches the image.
echo "imagesmith rehearsal" > /run/imagesmith/rehearsal
/usr/sbin/sshd -D -e -p "$port" -o ListenAddress=127.0.0.1 -o LogLevel=VERBOSE -o UsePAM=no \
    -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no &
sshd=$!
# A background list gets /dev/null as its stdin: hand it ours on another descriptor.
exec 3<&0
( cat <&3 >/dev/null; kill "$sshd" 2>/dev/null ) &
wait "$sshd"
"""

# What START_SCRIPT reports missing ("rehearsal: this image <reason>").
_MISSING = ("has no SSH server (/usr/sbin/sshd)", "has no sudo")


class MachineError(ImagesmithError):
    pass


@dataclass
class Machine:
    instance_id: str
    image: str
    port: int
    container: Any
    attach: Any
    loop_devices: list[str] = field(default_factory=list)
    output: list[bytes] = field(default_factory=list)


def image_tags(image_id: str, image_name: str) -> tuple[str, str]:
    """The local image (repository, tag) pairs of an AMI, as ``repository:tag`` strings.

    The first names it by AMI id, the second by ``ami_name`` made a valid Docker tag.
    """
    repository = f"{IMAGE_REPOSITORY}/{image_id.lower()}"
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", image_name).lstrip(".-")[:128] or "unnamed"
    return f"{repository}:latest", f"{repository}:{tag}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ContainerMachines:
    """``InstanceBackend`` of a rehearsal (see ``imagesmith.rehearse.seam``).

    ``image_for`` says which local image stands in for an instance (from the AMI it
    was launched from). ``ami_exists`` tells at ``close`` whether an AMI still exists in
    the emulator: images committed for AMIs the build deregistered (a failed build, or
    a post-processor that did not keep its input) are removed then. ``report`` receives
    one line per resource that could not be removed.
    """

    def __init__(
        self,
        *,
        run_id: str,
        image_for: Callable[[str], Awaitable[str]],
        ami_exists: Callable[[str], Awaitable[bool]] | None = None,
        report: Callable[[str], None] = lambda msg: None,
        docker_client: Any = None,
        ready_timeout: float = 60,
    ) -> None:
        self.run_id = run_id
        self._image_for = image_for
        self._ami_exists = ami_exists
        self._report = report
        self._client = docker_client
        self._ready_timeout = ready_timeout
        self._machines: dict[str, Machine] = {}
        self._committed: dict[str, list[str]] = {}  # AMI id -> local image tags
        self._workdir: Path | None = None

    @property
    def committed(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._committed.items()}

    def machine(self, instance_id: str) -> Machine | None:
        return self._machines.get(instance_id)

    def _docker(self) -> Any:
        if self._client is None:
            import docker

            self._client = docker.from_env()
        return self._client

    async def instance_launched(
        self,
        *,
        instance_id: str,
        ssh_username: str,
        public_key: str,
        block_devices: list[dict[str, Any]],
    ) -> tuple[str, int]:
        image = await self._image_for(instance_id)
        await asyncio.to_thread(self._check_image, image, instance_id)
        machine = Machine(instance_id, image, 0, None, None)
        self._machines[instance_id] = machine
        machine.loop_devices = await _settled(self._loop_devices, block_devices)
        for _attempt in range(3):
            machine.port = free_port()
            await _settled(self._start, machine, ssh_username, public_key.strip())
            if await self._wait_ready(machine):
                return "127.0.0.1", machine.port
            await asyncio.to_thread(self._remove_container, machine)
        raise MachineError(
            f"The SSH server of the rehearsal instance {instance_id} could not take a free "
            "loopback port in three tries."
        )

    async def image_created(self, *, instance_id: str, image_id: str, image_name: str) -> None:
        machine = self._machines.get(instance_id)
        if machine is None or machine.container is None:
            raise MachineError(
                f"The rehearsal has no machine for instance {instance_id} to save as {image_id}."
            )
        tags = await _settled(self._commit, machine, image_id, image_name)
        self._committed[image_id] = tags

    async def instance_terminated(self, *, instance_id: str) -> None:
        machine = self._machines.pop(instance_id, None)
        if machine is not None:
            await asyncio.shield(asyncio.to_thread(self._dispose, machine))

    async def close(self) -> None:
        await asyncio.shield(self._close())

    async def _close(self) -> None:
        for instance_id in list(self._machines):
            await self.instance_terminated(instance_id=instance_id)
        await asyncio.to_thread(self._remove_labelled)
        if self._ami_exists is not None:
            for image_id, tags in list(self._committed.items()):
                try:
                    exists = await self._ami_exists(image_id)
                except Exception as exc:  # the emulator is gone: keep what was made
                    self._report(f"Could not check AMI {image_id} in the emulator: {exc}")
                    continue
                if not exists:
                    await asyncio.to_thread(self._remove_images, tags)
                    del self._committed[image_id]
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    # -- blocking helpers, run in threads ------------------------------------------

    def _check_image(self, image: str, instance_id: str) -> None:
        import docker.errors

        try:
            self._docker().images.get(image)
        except docker.errors.ImageNotFound:
            raise MachineError(
                f"The image {image} that stands in for the source AMI of instance "
                f"{instance_id} is not on the local Docker engine: build the base images "
                "with scripts/rehearse-base-image.sh, or docker pull/build it."
            ) from None

    def _start(self, machine: Machine, user: str, key: str) -> None:
        client = self._docker()
        devices = [f"{loop}:{path}:rwm" for loop, path in _pairs(machine.loop_devices)]
        api = client.api
        created = api.create_container(
            machine.image,
            ["/bin/sh", "-c", START_SCRIPT, "rehearsal-start", user, str(machine.port), key],
            entrypoint=[],
            name=f"imagesmith-rehearsal-{machine.instance_id}-{machine.port}",
            stdin_open=True,  # with detach=False this also sets StdinOnce
            labels={
                LABEL: "instance",
                LABEL_RUN: self.run_id,
                LABEL_PID: str(os.getpid()),
                f"{LABEL}.instance-id": machine.instance_id,
            },
            host_config=api.create_host_config(
                network_mode="host",
                auto_remove=True,
                devices=devices,
                tmpfs={"/run/imagesmith": "mode=0755"},
            ),
        )
        container = client.containers.get(created["Id"])
        machine.container = container
        # Attach before start: when this process dies the attachment closes, stdin
        # reaches EOF, and the container stops and is removed. The same attachment
        # carries the output, which the engine forgets when it removes the container.
        machine.attach = client.api.attach_socket(
            container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        machine.output = []
        reader = threading.Thread(target=_collect, args=(machine.attach, machine.output))
        reader.daemon = True
        reader.start()
        container.start()

    async def _wait_ready(self, machine: Machine) -> bool:
        """True once sshd listens; False if it lost the port; raises on other failures."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ready_timeout
        want = f"Server listening on 127.0.0.1 port {machine.port}."
        while loop.time() < deadline:
            status, logs = await asyncio.to_thread(self._status_and_logs, machine)
            if want in logs:
                return True
            if status not in ("created", "running"):
                if "Address already in use" in logs or "Cannot bind" in logs:
                    return False
                raise MachineError(self._failure(machine, status, logs))
            await asyncio.sleep(0.05)
        raise MachineError(
            f"The SSH server of the rehearsal instance {machine.instance_id} did not start "
            f"within {self._ready_timeout:.0f} seconds."
        )

    def _status_and_logs(self, machine: Machine) -> tuple[str, str]:
        import docker.errors

        try:
            machine.container.reload()
            status: str = machine.container.status
        except docker.errors.NotFound:
            status = "removed"
        return status, b"".join(machine.output).decode(errors="replace")

    def _failure(self, machine: Machine, status: str, logs: str) -> str:
        reason = next((r for r in _MISSING if f"rehearsal: this image {r}" in logs), None)
        if reason:
            return (
                f"The image {machine.image} {reason}, so it cannot stand in for an "
                "instance: a rehearsal needs an image with "
                "openssh-server and sudo, such as the one scripts/rehearse-base-image.sh builds."
            )
        tail = " | ".join(logs.strip().splitlines()[-3:]) or "no output"
        return (
            f"The rehearsal instance {machine.instance_id} ({machine.image}) stopped while "
            f"starting its SSH server ({status}): {tail}"
        )

    def _commit(self, machine: Machine, image_id: str, image_name: str) -> list[str]:
        client = self._docker()
        source = client.images.get(machine.image).attrs.get("Config") or {}
        first, second = image_tags(image_id, image_name)
        repository, tag = first.rsplit(":", 1)
        conf = {
            # What the stand-in image itself runs, not this rehearsal's start script.
            "Cmd": source.get("Cmd") or ["/bin/sh"],
            "Env": source.get("Env") or [],
            "Labels": {
                f"{LABEL}.ami-id": image_id,
                f"{LABEL}.ami-name": image_name,
                f"{LABEL}.source-image": machine.image,
            },
        }
        image = machine.container.commit(repository=repository, tag=tag, conf=conf)
        repository2, tag2 = second.rsplit(":", 1)
        image.tag(repository2, tag2)
        return [first, second]

    def _dispose(self, machine: Machine) -> None:
        self._remove_container(machine)
        for loop in machine.loop_devices[::2]:
            done = subprocess.run(["losetup", "-d", loop], capture_output=True, text=True)
            if done.returncode != 0:
                self._report(
                    f"Could not detach the loop device {loop} of a rehearsal volume: "
                    f"{done.stderr.strip()}. Detach it with losetup -d {loop}."
                )

    def _remove_container(self, machine: Machine) -> None:

        if machine.attach is not None:
            with contextlib.suppress(Exception):
                machine.attach.close()
            machine.attach = None
        if machine.container is None:
            return
        self._remove_by_id(machine.container.id, machine.container.name)
        machine.container = None

    def _remove_by_id(self, container_id: str, name: str) -> None:
        """Remove a container and return once the engine has, whoever started removing it
        (the engine itself does for a container that stopped)."""
        import docker.errors

        api = self._docker().api
        try:
            api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                self._report(
                    f"Could not remove the rehearsal container {name}: {exc}. "
                    f"Remove it with docker rm -f {name}."
                )
                return
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            api.wait(container_id, timeout=30, condition="removed")

    def _remove_labelled(self) -> None:

        api = self._docker().api
        # The low-level listing: the high-level one inspects each container and trips
        # over those the engine is removing at that moment.
        for found in api.containers(all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"}):
            name = (found.get("Names") or [found["Id"][:12]])[0].lstrip("/")
            self._remove_by_id(found["Id"], name)

    def _remove_images(self, tags: list[str]) -> None:
        import docker.errors

        for tag in tags:
            try:
                self._docker().images.remove(tag, noprune=False)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                self._report(f"Could not remove the rehearsal image {tag}: {exc}.")

    def _loop_devices(self, block_devices: list[dict[str, Any]]) -> list[str]:
        """Sparse files on loop devices for the extra EBS volumes: [loop, path, ...]."""
        wanted = [
            (str(d["DeviceName"]), int(d.get("Ebs", {}).get("VolumeSize") or 1))
            for d in block_devices
            if d.get("DeviceName") and "Ebs" in d and not d.get("NoDevice")
        ]
        if not wanted or not loop_volumes_supported():
            return []
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"{VOLUMES_PREFIX}{os.getpid()}-"))
        pairs: list[str] = []
        for path, size_gib in wanted:
            backing = self._workdir / (path.strip("/").replace("/", "_") + ".img")
            with backing.open("wb") as f:
                f.truncate(size_gib << 30)
            done = subprocess.run(
                ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True
            )
            if done.returncode != 0:
                self._report(f"No loop device for the rehearsal volume {path}: {done.stderr}")
                continue
            pairs += [done.stdout.strip(), path]
        return pairs


async def _settled(func: Callable[..., T], *args: Any) -> T:
    """Run ``func`` in a thread; if cancelled, wait for the thread before re-raising, so
    that what it created is recorded and cleanup can find it."""
    job = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await job
        raise


def sweep_stale_containers(client: Any) -> list[str]:
    """Remove instance containers whose rehearsal process died before starting them
    (a started one ends by itself). Returns the ids removed."""
    import docker.errors

    removed = []
    for found in client.api.containers(all=True, filters={"label": LABEL_PID}):
        pid = (found.get("Labels") or {}).get(LABEL_PID, "")
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.api.remove_container(found["Id"], force=True)
                removed.append(found["Id"])
    return removed


def sweep_stale_volumes() -> list[str]:
    """Detach the loop devices and delete the files of rehearsals whose process died
    without cleaning up (SIGKILL). Returns the loop devices detached."""
    if not loop_volumes_supported():
        return []
    pattern = re.compile(re.escape(VOLUMES_PREFIX) + r"(\d+)-")
    detached = []
    listing = subprocess.run(["losetup", "-J", "-l"], capture_output=True, text=True)
    with contextlib.suppress(ValueError):
        for dev in json.loads(listing.stdout or "{}").get("loopdevices", []):
            found = pattern.search(dev.get("back-file") or "")
            stale = found is not None and not _alive(int(found.group(1)))
            if stale and subprocess.run(["losetup", "-d", dev["name"]]).returncode == 0:
                detached.append(dev["name"])
    for path in Path(tempfile.gettempdir()).glob(VOLUMES_PREFIX + "*"):
        found = pattern.search(path.name + "-")
        if found and not _alive(int(found.group(1))):
            shutil.rmtree(path, ignore_errors=True)
    return detached


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _collect(attach: Any, into: list[bytes]) -> None:
    """Gather a container's output from its attachment until the container ends."""
    from docker.utils.socket import frames_iter

    with contextlib.suppress(Exception):  # the attachment closing ends the stream
        for _stream, data in frames_iter(attach, tty=False):
            into.append(data)


def loop_volumes_supported() -> bool:
    """Whether extra volumes can be given loop-device stand-ins (root and losetup)."""
    return os.geteuid() == 0 and shutil.which("losetup") is not None


def _pairs(flat: list[str]) -> list[tuple[str, str]]:
    return list(zip(flat[::2], flat[1::2], strict=True))

"""Rehearsal instances: containers with a real SSH server, committed as AMI images."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import asyncssh
import pytest

from conftest import rehearsal_containers, rehearsal_loops
from imagesmith.rehearse.images import AMAZON_STANDIN_IMAGE, DEBIAN_IMAGE
from imagesmith.rehearse.machine import (
    ContainerMachines,
    MachineError,
    image_tags,
    loop_volumes_supported,
    sweep_stale_volumes,
)

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("base_images")]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx test"
VOLUME = [{"DeviceName": "/dev/xvdcy", "Ebs": {"VolumeSize": 2, "VolumeType": "gp2"}}]


def _key() -> tuple[asyncssh.SSHKey, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    return key, key.export_public_key().decode()


def _machines(image: str, **kwargs: Any) -> ContainerMachines:
    async def image_for(instance_id: str) -> str:
        return image

    return ContainerMachines(run_id=f"test-{os.getpid()}", image_for=image_for, **kwargs)


async def _ssh(
    port: int, user: str, key: asyncssh.SSHKey, command: str
) -> asyncssh.SSHCompletedProcess:
    async with asyncssh.connect(
        "127.0.0.1", port=port, username=user, client_keys=[key], known_hosts=None
    ) as conn:
        return await conn.run(command, check=False)


def test_image_tags_follow_ami_id_and_name() -> None:
    assert image_tags("ami-0ABC", "docker-in-aws-ecs 1733250000") == (
        "imagesmith-rehearsal/ami-0abc:latest",
        "imagesmith-rehearsal/ami-0abc:docker-in-aws-ecs_1733250000",
    )
    assert image_tags("ami-1", "..x/y")[1] == "imagesmith-rehearsal/ami-1:x_y"
    assert len(image_tags("ami-1", "n" * 300)[1].split(":")[1]) == 128


def test_instance_provisioned_over_ssh_then_committed_then_removed(docker_client: Any) -> None:
    key, public = _key()
    other, _ = _key()
    checked: list[str] = []

    async def gone(image_id: str) -> bool:
        checked.append(image_id)
        return False

    async def scenario() -> None:
        machines = _machines(AMAZON_STANDIN_IMAGE, ami_exists=gone, docker_client=docker_client)
        try:
            host, port = await machines.instance_launched(
                instance_id="i-0123456789abcdef0",
                ssh_username="ec2-user",
                public_key=public,
                block_devices=VOLUME,
            )
            assert host == "127.0.0.1"
            done = await _ssh(port, "ec2-user", key, "id -un; sudo -n id -u; echo baked > ~/marker")
            assert (done.exit_status, done.stdout) == (0, "ec2-user\n0\n")
            if loop_volumes_supported():
                done = await _ssh(
                    port, "ec2-user", key, "test -b /dev/xvdcy && sudo mkswap /dev/xvdcy"
                )
                assert done.exit_status == 0, done.stderr
            done = await _ssh(port, "ec2-user", key, "sudo yum -y update")
            assert done.exit_status == 0 and "Nothing to do" in str(done.stdout)
            with pytest.raises(asyncssh.PermissionDenied):
                await _ssh(port, "ec2-user", other, "true")

            await machines.image_created(
                instance_id="i-0123456789abcdef0", image_id="ami-0feedbeef", image_name="web 1"
            )
            latest, named = machines.committed["ami-0feedbeef"]
            image = docker_client.images.get(named)
            assert latest in image.tags
            assert image.labels["imagesmith.rehearsal.ami-name"] == "web 1"
            assert image.attrs["Config"]["Cmd"] == ["/bin/bash"]
            out = docker_client.containers.run(
                latest, ["cat", "/home/ec2-user/marker"], network_mode="none", remove=True
            )
            assert out == b"baked\n"

            container = machines.machine("i-0123456789abcdef0").container  # type: ignore[union-attr]
            await machines.instance_terminated(instance_id="i-0123456789abcdef0")
            assert container.id not in rehearsal_containers(docker_client)
            assert rehearsal_loops() == []
        finally:
            await machines.close()
        assert checked == ["ami-0feedbeef"]
        assert machines.committed == {}
        assert not [t for i in docker_client.images.list() for t in i.tags if "ami-0feedbeef" in t]

    asyncio.run(scenario())


def test_root_and_a_new_user_on_debian(docker_client: Any) -> None:
    key, public = _key()

    async def scenario() -> None:
        machines = _machines(DEBIAN_IMAGE, docker_client=docker_client)
        try:
            _, p1 = await machines.instance_launched(
                instance_id="i-1", ssh_username="admin", public_key=public, block_devices=[]
            )
            _, p2 = await machines.instance_launched(
                instance_id="i-2", ssh_username="root", public_key=public, block_devices=[]
            )
            assert p1 != p2
            one = await _ssh(p1, "admin", key, "sudo -n true && whoami && command -v yum || true")
            assert one.stdout == "admin\n"
            two = await _ssh(p2, "root", key, "whoami")
            assert two.stdout == "root\n"
        finally:
            await machines.close()
        assert rehearsal_containers(docker_client) == []

    asyncio.run(scenario())


def test_image_absent_from_the_engine_is_named(docker_client: Any) -> None:
    async def scenario() -> None:
        machines = _machines("imagesmith-test/no-such-image:1", docker_client=docker_client)
        try:
            with pytest.raises(MachineError, match=r"no-such-image:1 that stands in .* not on the"):
                await machines.instance_launched(
                    instance_id="i-1",
                    ssh_username="u",
                    public_key="ssh-ed25519 AAAA",
                    block_devices=[],
                )
        finally:
            await machines.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def image_without_sshd(docker_client: Any) -> Iterator[str]:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox-static is not installed")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(busybox, "bin/busybox")
        for name in ("sh", "cat", "echo"):
            link = tarfile.TarInfo(f"bin/{name}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    docker_client.api.import_image_from_data(
        buf.getvalue(), repository="imagesmith-test/rehearse-no-sshd", tag="1"
    )
    yield "imagesmith-test/rehearse-no-sshd:1"
    docker_client.images.remove("imagesmith-test/rehearse-no-sshd:1", force=True)


def test_image_without_ssh_server_is_refused_clearly(
    docker_client: Any, image_without_sshd: str
) -> None:
    async def scenario() -> None:
        machines = _machines(image_without_sshd, docker_client=docker_client)
        try:
            with pytest.raises(MachineError) as err:
                await machines.instance_launched(
                    instance_id="i-1",
                    ssh_username="u",
                    public_key="ssh-ed25519 AAAA",
                    block_devices=[],
                )
            assert "has no SSH server" in str(err.value)
            assert "openssh-server and sudo" in str(err.value)
        finally:
            await machines.close()
        assert rehearsal_containers(docker_client) == []

    asyncio.run(scenario())


def test_killed_rehearsal_leaves_no_container_and_its_volumes_are_swept(
    docker_client: Any,
) -> None:
    driver = textwrap.dedent(
        f"""
        import asyncio
        from imagesmith.rehearse.machine import ContainerMachines
        async def main():
            async def image_for(i):
                return {DEBIAN_IMAGE!r}
            m = ContainerMachines(run_id="killed", image_for=image_for)
            await m.instance_launched(instance_id="i-k", ssh_username="admin",
                public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx x",
                block_devices={VOLUME!r})
            print(m.machine("i-k").container.id, flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        container_id = proc.stdout.readline().strip()
        assert container_id in rehearsal_containers(docker_client)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if container_id not in rehearsal_containers(docker_client):
                break
            time.sleep(0.2)
        assert container_id not in rehearsal_containers(docker_client)
        if loop_volumes_supported():
            assert len(rehearsal_loops()) == 1
            assert len(sweep_stale_volumes()) == 1
            assert rehearsal_loops() == []
    finally:
        proc.kill()
        proc.wait()


def test_close_keeps_images_of_amis_that_still_exist(docker_client: Any) -> None:
    _, public = _key()

    async def exists(image_id: str) -> bool:
        return True

    async def scenario() -> list[str]:
        machines = _machines(DEBIAN_IMAGE, ami_exists=exists, docker_client=docker_client)
        try:
            await machines.instance_launched(
                instance_id="i-9", ssh_username="admin", public_key=public, block_devices=VOLUME
            )
            await machines.image_created(instance_id="i-9", image_id="ami-0keep", image_name="k")
        finally:
            await machines.close()  # no terminate first: close removes the machine too
        return machines.committed["ami-0keep"]

    tags = asyncio.run(scenario())
    try:
        assert rehearsal_containers(docker_client) == []
        assert rehearsal_loops() == []
        assert docker_client.images.get(tags[0])
    finally:
        for tag in tags:
            docker_client.images.remove(tag)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.5])
def test_launch_cancelled_midway_leaves_nothing_after_close(
    docker_client: Any, delay: float
) -> None:
    _, public = _key()

    async def scenario() -> None:
        machines = _machines(DEBIAN_IMAGE, docker_client=docker_client)
        launch = asyncio.ensure_future(
            machines.instance_launched(
                instance_id="i-c", ssh_username="admin", public_key=public, block_devices=VOLUME
            )
        )
        await asyncio.sleep(delay)
        launch.cancel()
        # On a fast machine the launch may be over before the cancellation arrives;
        # either way, close() must leave nothing behind.
        with contextlib.suppress(asyncio.CancelledError):
            await launch
        await machines.close()

    asyncio.run(scenario())
    assert rehearsal_containers(docker_client) == []
    assert rehearsal_loops() == []


def test_containers_of_dead_rehearsals_are_swept(docker_client: Any) -> None:
    from imagesmith.rehearse.machine import LABEL, LABEL_PID, sweep_stale_containers

    gone = subprocess.Popen(["true"])
    gone.wait()
    labels = {LABEL: "instance", LABEL_PID: str(gone.pid)}
    dead = docker_client.api.create_container(DEBIAN_IMAGE, ["true"], labels=labels)["Id"]
    live = docker_client.api.create_container(
        DEBIAN_IMAGE, ["true"], labels={LABEL: "instance", LABEL_PID: str(os.getpid())}
    )["Id"]
    try:
        assert sweep_stale_containers(docker_client) == [dead]
        assert rehearsal_containers(docker_client) == [live]
    finally:
        for cid in (dead, live):
            with contextlib.suppress(Exception):
                docker_client.api.remove_container(cid, force=True)

"""The EC2 emulator of a rehearsal: served AMIs, lifetime, and the install hint."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import boto3
import pytest

import imagesmith
from imagesmith.rehearse.emulator import Emulator
from imagesmith.rehearse.images import SourceSpec, emulated_ami

pytestmark = pytest.mark.aws


def _ec2(endpoint: str, region: str = "us-east-1"):  # type: ignore[no-untyped-def]
    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serves_exactly_the_given_amis_in_every_region() -> None:
    by_id = emulated_ami(SourceSpec("a", source_ami="ami-5e414e24"))
    by_filter = emulated_ami(
        SourceSpec("b", filters={"name": "debian-12-amd64-*"}, owners=["136693071363"])
    )

    async def scenario() -> None:
        emulator = await Emulator.start([by_id, by_filter], regions=["us-east-1"])
        try:
            east, west = _ec2(emulator.endpoint_url), _ec2(emulator.endpoint_url, "us-west-2")
            for client in (east, west):
                images = client.describe_images()["Images"]
                assert sorted(i["ImageId"] for i in images) == sorted(
                    [by_id["ami_id"], by_filter["ami_id"]]
                )
            found = west.describe_images(
                Owners=["136693071363"], Filters=[{"Name": "name", "Values": ["debian-12-amd64-*"]}]
            )["Images"]
            assert [i["ImageId"] for i in found] == [by_filter["ami_id"]]
            image = east.describe_images(ImageIds=["ami-5e414e24"])["Images"][0]
            assert image["RootDeviceType"] == "ebs"
            assert image["CreationDate"] == by_id["creation_date"]
        finally:
            await emulator.stop()
        assert not emulator.running
        assert not _accepts(emulator.port)
        await emulator.stop()  # a second stop is harmless

    asyncio.run(scenario())


def test_emulator_goes_away_with_a_killed_parent(tmp_path: object) -> None:
    driver = textwrap.dedent(
        """
        import asyncio, sys, time
        from imagesmith.rehearse.emulator import Emulator
        async def main():
            em = await Emulator.start([])
            print(em.port, flush=True)
            await asyncio.sleep(600)
        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        assert _accepts(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while _accepts(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _accepts(port)
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_c_to_the_process_group_spares_the_emulator() -> None:
    # The build's cleanup still needs the emulator after a terminal's SIGINT.
    async def scenario() -> None:
        emulator = await Emulator.start([])
        try:
            os.killpg(os.getpgid(emulator._proc.pid), signal.SIGINT)
            await asyncio.sleep(0.3)
            assert emulator.running
            assert os.getpgid(emulator._proc.pid) != os.getpgid(0)
            _ec2(emulator.endpoint_url).describe_regions()
        finally:
            await emulator.stop()

    asyncio.run(scenario())


def test_missing_moto_says_how_to_install_it() -> None:
    # An interpreter without site-packages has no moto, as on a machine without the extra.
    src = os.path.dirname(os.path.dirname(imagesmith.__file__))
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {src!r})
        from imagesmith.rehearse.emulator import EmulatorError, check_installed
        try:
            check_installed()
        except EmulatorError as e:
            print(e)
        """
    )
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert done.stderr == ""
    assert "pip install 'imagesmith[rehearse]'" in done.stdout
    assert "missing: moto" in done.stdout

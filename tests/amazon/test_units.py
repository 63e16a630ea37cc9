"""Unit tests of the amazon builder's logic: retries, waiter timings, formatting,
user data, block devices, the journal, the artifact."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from imagesmith.builders.amazon import retry, waiters
from imagesmith.builders.amazon.access import PollingConfig
from imagesmith.builders.amazon.artifact import artifact_id, artifact_text
from imagesmith.builders.amazon.block_devices import BlockDevice
from imagesmith.builders.amazon.common import go_list, prettify
from imagesmith.builders.amazon.step_instance import decoded_if_base64, user_data_base64
from imagesmith.journal import Entry, Journal, read_journal, read_journals

# -- retries -------------------------------------------------------------------------------


def test_throttling_uses_the_sdk_budget_then_gives_up() -> None:
    budget = retry.RetryBudget(sdk_retries=3)
    throttled = retry.AwsFailure("RequestLimitExceeded", 503)
    delays = [budget.next_delay(throttled, frozenset()) for _ in range(4)]
    assert all(d is not None and d > 0 for d in delays[:3])
    assert delays[3] is None


def test_call_specific_codes_use_their_own_budget() -> None:
    budget = retry.RetryBudget(sdk_retries=10, call_tries=3)
    not_found = retry.AwsFailure("InvalidInstanceID.NotFound", 400)
    codes = frozenset({"InvalidInstanceID.NotFound"})
    assert budget.next_delay(not_found, codes) is not None
    assert budget.next_delay(not_found, codes) is not None
    assert budget.next_delay(not_found, codes) is None  # 3 tries in all
    assert budget.next_delay(retry.AwsFailure("InvalidParameterValue", 400), codes) is None


def test_server_errors_and_dropped_connections_are_transient() -> None:
    assert retry.AwsFailure("InternalError", 500).transient
    assert retry.AwsFailure("Whatever", 503).transient
    assert retry.AwsFailure("EndpointConnectionError", 0, connection=True).transient
    assert not retry.AwsFailure("UnauthorizedOperation", 403).transient


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    for attempt in range(12):
        delay = retry.backoff(attempt, 0.2, cap=30.0)
        step = min(30.0, 0.2 * 2**attempt)
        assert step / 2 <= delay <= step
    samples = {retry.backoff(3, 1.0) for _ in range(20)}
    assert len(samples) > 1  # jittered


# -- waiters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("polling", "env", "image", "expected"),
    [
        ({}, {}, False, (15.0, 40)),
        ({}, {}, True, (15.0, 120)),
        ({}, {"AWS_POLL_DELAY_SECONDS": "5"}, True, (5.0, 40)),
        ({}, {"AWS_MAX_ATTEMPTS": "300"}, True, (15.0, 300)),
        ({"delay_seconds": 3, "max_attempts": 7}, {"AWS_MAX_ATTEMPTS": "300"}, True, (3.0, 7)),
        ({}, {"AWS_TIMEOUT_SECONDS": "60"}, False, (2.0, 30)),
        ({}, {"AWS_TIMEOUT_SECONDS": "60", "AWS_POLL_DELAY_SECONDS": "10"}, False, (10.0, 6)),
    ],
)
def test_waiter_overrides_follow_packer(
    monkeypatch: pytest.MonkeyPatch,
    polling: dict[str, int],
    env: dict[str, str],
    image: bool,
    expected: tuple[float, int],
) -> None:
    for name in ("AWS_POLL_DELAY_SECONDS", "AWS_MAX_ATTEMPTS", "AWS_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    how = waiters.policy(PollingConfig(**polling), image=image)
    assert (how.delay, how.max_attempts) == expected


def test_wait_polls_at_once_then_each_delay_and_reports_like_the_sdk() -> None:
    answers = iter(["pending", "pending", "available"])
    polls: list[float] = []

    async def poll() -> str:
        polls.append(asyncio.get_running_loop().time())
        return next(answers)

    def verdict(state: str) -> Any:
        return "success" if state == "available" else "retry"

    result = asyncio.run(waiters.wait_until(poll, verdict, waiters.WaitPolicy(0.01, 5)))
    assert result == "available" and len(polls) == 3

    with pytest.raises(waiters.WaiterError, match=r"^ResourceNotReady: exceeded wait attempts$"):
        asyncio.run(waiters.wait_until(poll_forever, lambda _: "retry", waiters.WaitPolicy(0.0, 3)))
    with pytest.raises(waiters.WaiterError, match="failed waiting for successful resource state"):
        asyncio.run(
            waiters.wait_until(poll_forever, lambda _: "failure", waiters.WaitPolicy(0.0, 3))
        )


async def poll_forever() -> str:
    return "pending"


def test_an_interrupt_ends_a_wait_at_once() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(
            waiters.wait_until(poll_forever, lambda _: "retry", waiters.WaitPolicy(600.0, 40))
        )
        await asyncio.sleep(0.05)
        started = loop.time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return loop.time() - started

    assert asyncio.run(main()) < 1.0


# -- formatting ----------------------------------------------------------------------------


def test_prettify_prints_an_sdk_input_as_aws_sdk_go_does() -> None:
    params = {
        "Filters": [{"Name": "name", "Values": ["ubuntu/*"]}],
        "Owners": ["099720109477"],
    }
    assert prettify(params) == (
        "{\n"
        "  Filters: [{\n"
        '      Name: "name",\n'
        '      Values: ["ubuntu/*"]\n'
        "    }],\n"
        '  Owners: ["099720109477"]\n'
        "}"
    )
    assert prettify({"Values": ["a", "b", "c", "d"]}) == (
        '{\n  Values: [\n    "a",\n    "b",\n    "c",\n    "d"\n  ]\n}'
    )


def test_go_list() -> None:
    assert go_list(["0.0.0.0/0", "10.0.0.0/8"]) == "[0.0.0.0/0 10.0.0.0/8]"


# -- user data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("#!/bin/sh\necho hi\n", base64.b64encode(b"#!/bin/sh\necho hi\n").decode()),
        ("aGVsbG8=", "aGVsbG8="),  # already base64: sent as it is (Packer's rule)
        ("hello", base64.b64encode(b"hello").decode()),
    ],
)
def test_user_data_is_encoded_unless_it_already_is(text: str, sent: str) -> None:
    assert user_data_base64(text) == sent
    raw = decoded_if_base64(text) or text.encode()
    assert base64.b64encode(raw).decode() == sent


# -- block devices -------------------------------------------------------------------------


def test_block_device_mapping_structures() -> None:
    assert BlockDevice(device_name="/dev/sdb", no_device=True).to_api() == {
        "DeviceName": "/dev/sdb",
        "NoDevice": "",
    }
    assert BlockDevice(device_name="/dev/sdc", virtual_name="ephemeral0").to_api() == {
        "DeviceName": "/dev/sdc",
        "VirtualName": "ephemeral0",
    }
    gp3 = BlockDevice(device_name="/dev/sdd", volume_type="gp3", volume_size=50).to_api()
    assert gp3 == {
        "DeviceName": "/dev/sdd",
        "Ebs": {"DeleteOnTermination": False, "VolumeType": "gp3", "VolumeSize": 50},
    }
    io2 = BlockDevice(
        device_name="/dev/sde", volume_type="io2", volume_size=10, iops=1000,
        encrypted=True, kms_key_id="alias/k", delete_on_termination=True,
    ).to_api()  # fmt: skip
    assert io2["Ebs"] == {
        "DeleteOnTermination": True,
        "VolumeType": "io2",
        "VolumeSize": 10,
        "Iops": 1000,
        "Encrypted": True,
        "KmsKeyId": "alias/k",
    }


# -- journal -------------------------------------------------------------------------------


def _entry(kind: str, resource_id: str) -> Entry:
    return Entry(run_id="run-1", kind=kind, id=resource_id, region="us-east-1", build="b")


def test_journal_is_locked_while_alive_and_gone_when_empty(tmp_path: Path) -> None:
    journal = Journal("run-1", tmp_path)
    journal.open()
    journal.add(_entry("instance", "i-1"))
    journal.add(_entry("key-pair", "k"))
    journal.remove("key-pair", "us-east-1", "k")

    seen = read_journal(journal.path)
    assert seen is not None and seen.alive
    assert [e.id for e in seen.entries] == ["i-1"]

    journal.remove("instance", "us-east-1", "i-1")
    journal.release()
    assert not journal.path.exists()


def test_a_dead_run_leaves_its_journal_for_cleanup(tmp_path: Path) -> None:
    journal = Journal("run-2", tmp_path)
    journal.open()
    journal.add(_entry("security-group", "sg-1"))
    journal.add(_entry("image", "ami-1"))
    journal.release()  # the run ended with something it could not remove

    (seen,) = list(read_journals(tmp_path))
    assert not seen.alive
    assert sorted(e.id for e in seen.entries) == ["ami-1", "sg-1"]
    for entry in list(seen.entries):
        seen.remove(entry)
    assert not journal.path.exists()


def test_journal_survives_a_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "run-3.jsonl"
    record = {"op": "add", "run_id": "run-3", "kind": "instance", "id": "i-9", "region": "r"}
    path.write_text(json.dumps(record) + "\n" + '{"op": "add", "kind": "key-p')
    seen = read_journal(path)
    assert seen is not None and [e.id for e in seen.entries] == ["i-9"]


# -- artifact ------------------------------------------------------------------------------


def test_artifact_id_and_text_are_sorted_by_region() -> None:
    amis = {"us-west-2": "ami-2", "eu-west-1": "ami-3", "us-east-1": "ami-1"}
    assert artifact_id(amis) == "eu-west-1:ami-3,us-east-1:ami-1,us-west-2:ami-2"
    assert artifact_text(amis) == (
        "AMIs were created:\neu-west-1: ami-3\nus-east-1: ami-1\nus-west-2: ami-2\n"
    )


# -- the trimmed EC2 model ---------------------------------------------------------------------


def test_the_trimmed_model_has_every_ec2_operation_the_code_calls() -> None:
    import re

    from imagesmith.builders.amazon import models

    source = Path(models.__file__).parent
    called: set[str] = set()
    for path in source.glob("*.py"):
        text = path.read_text()
        for match in re.finditer(r'call\(\s*"([a-z_]+)"(?P<rest>[^)]*)', text):
            if 'service="' in match.group("rest"):
                continue
            called.add("".join(part.title() for part in match.group(1).split("_")))
    assert called, "no call found: the pattern no longer matches the code"
    assert called <= models.OPERATIONS, called - models.OPERATIONS


def test_trimming_keeps_the_shapes_an_operation_reaches() -> None:
    import botocore.session

    from imagesmith.builders.amazon import models

    loader = botocore.session.Session().get_component("data_loader")
    full = loader.load_service_model("ec2", "service-2")
    trimmed = models.trim(full)
    assert set(trimmed["operations"]) == models.OPERATIONS
    assert "Instance" in trimmed["shapes"] and "CreateVpcRequest" not in trimmed["shapes"]
    assert trimmed["metadata"] == full["metadata"]
    for shape in trimmed["shapes"].values():
        for member in shape.get("members", {}).values():
            assert member["shape"] in trimmed["shapes"]


@pytest.mark.parametrize("type_name", ["service-2", "endpoint-rule-set-1", "waiters-2"])
def test_the_cached_service_list_is_botocores_own(
    type_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.loaders import Loader

    from imagesmith.builders.amazon import models

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    plain = Loader(extra_search_paths=[], include_default_search_paths=False)
    plain.search_paths.append(Loader.BUILTIN_DATA_PATH)
    expected = plain.list_available_services(type_name)
    first = models.bundled_services(Loader.BUILTIN_DATA_PATH, type_name)
    assert list(tmp_path.glob("imagesmith/botocore-*-services/*")), "nothing was cached"
    assert first == expected
    assert models.bundled_services(Loader.BUILTIN_DATA_PATH, type_name) == expected


def test_the_installed_loader_keeps_aws_data_path_and_finds_models_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.session

    from imagesmith.builders.amazon import models

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    custom = tmp_path / "models"
    (custom / "madeup" / "2020-01-01").mkdir(parents=True)
    (custom / "madeup" / "2020-01-01" / "service-2.json").write_text('{"x": 1}')
    monkeypatch.setenv("AWS_DATA_PATH", str(custom))
    models.install(botocore.session.Session())  # the first one writes the cache
    session = botocore.session.Session()
    models.install(session)
    loader = session.get_component("data_loader")
    assert str(custom) in loader.search_paths
    assert loader.search_paths[0].startswith(str(tmp_path / "cache"))
    services = loader.list_available_services("service-2")
    assert {"madeup", "ec2", "sts", "iam"} <= set(services)
    assert loader.load_service_model("madeup", "service-2") == {"x": 1}
    client = session.create_client("ec2", region_name="us-east-1", aws_access_key_id="a",
                                   aws_secret_access_key="b")  # fmt: skip
    assert client.meta.service_model.operation_model("RunInstances").name == "RunInstances"
    assert "CreateVpc" not in client.meta.service_model.operation_names  # the trimmed model


def test_big_data_files_load_from_their_parsed_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.loaders import JSONFileLoader, Loader

    from imagesmith.builders.amazon import models

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    endpoints = str(Path(Loader.BUILTIN_DATA_PATH) / "endpoints")
    expected = JSONFileLoader().load_file(endpoints)
    loader = models._parsed_file_loader()
    assert loader.load_file(endpoints) == expected  # parsed, and cached
    (cached,) = (tmp_path / "imagesmith" / "parsed").iterdir()
    assert loader.load_file(endpoints) == expected  # from the cache
    assert list(loader.load_file(endpoints)["partitions"][0]) == list(
        expected["partitions"][0]
    )  # in the same order
    cached.write_bytes(b"\x00garbage")
    assert loader.load_file(endpoints) == expected  # a damaged cache is parsed again
    small = str(Path(Loader.BUILTIN_DATA_PATH) / "partitions")
    assert loader.load_file(small) == JSONFileLoader().load_file(small)
    assert len(list((tmp_path / "imagesmith" / "parsed").iterdir())) == 1  # not cached
    assert loader.load_file(str(tmp_path / "missing")) is None

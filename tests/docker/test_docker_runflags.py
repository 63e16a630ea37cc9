"""run_command parsing: docker run flags mapped onto create options."""

from __future__ import annotations

import pytest

from imagesmith.builders.docker.runflags import (
    RunCommandError,
    builder_flags,
    parse_run_command,
)


def test_packer_default_run_command() -> None:
    spec = parse_run_command(["-d", "-i", "-t", "--entrypoint=/bin/sh", "--", "img:1"])
    assert (spec.image, spec.command, spec.entrypoint) == ("img:1", [], ["/bin/sh"])
    assert spec.interactive and spec.tty
    assert spec.network is None


def test_reference_template_run_command() -> None:
    spec = parse_run_command(["-d", "-i", "-t", "--network", "none", "img", "/bin/sh"])
    assert spec.network == "none"
    assert spec.image == "img" and spec.command == ["/bin/sh"] and spec.entrypoint is None


def test_grouped_short_flags_and_values() -> None:
    spec = parse_run_command(
        ["-dit", "-e", "A=1", "--env=B=2", "-u", "nobody", "-w", "/srv", "-v", "/h:/c:ro",
         "-v", "/anon", "--cap-add", "SYS_ADMIN", "--cap-drop=NET_RAW", "--tmpfs",
         "/run:size=1m", "--device", "/dev/fuse", "--privileged", "-l", "k=v",
         "--net=host", "img", "sh", "-c", "sleep 1"]
    )  # fmt: skip
    assert spec.interactive and spec.tty and spec.privileged
    assert spec.env == ["A=1", "B=2"]
    assert (spec.user, spec.workdir, spec.network) == ("nobody", "/srv", "host")
    assert spec.binds == ["/h:/c:ro"] and spec.anonymous_volumes == ["/anon"]
    assert spec.cap_add == ["SYS_ADMIN"] and spec.cap_drop == ["NET_RAW"]
    assert spec.tmpfs == {"/run": "size=1m"} and spec.devices == ["/dev/fuse"]
    assert spec.labels == {"k": "v"}
    assert spec.command == ["sh", "-c", "sleep 1"]


def test_env_without_value_copies_the_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_HOST", "yes")
    monkeypatch.delenv("NOT_SET", raising=False)
    spec = parse_run_command(["-e", "FROM_HOST", "-e", "NOT_SET", "img"])
    assert spec.env == ["FROM_HOST=yes"]


def test_empty_entrypoint_resets_it() -> None:
    assert parse_run_command(["--entrypoint=", "img", "a"]).entrypoint == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-p", "80:80", "img"], "flag -p cannot be mapped"),
        (["--mount", "type=bind", "img"], "flag --mount cannot be mapped"),
        (["-dx", "img"], "flag -dx cannot be mapped"),
        (["--network"], "flag --network needs a value"),
        (["-d", "-i"], "no image given"),
        (["--rm=maybe", "img"], "takes true or false"),
        (["-v", "a:b:c:d", "img"], "invalid volume specification"),
    ],
)
def test_errors_name_the_flag(args: list[str], fragment: str) -> None:
    with pytest.raises(RunCommandError, match=fragment):
        parse_run_command(args)


def test_builder_flags_come_first_in_packers_order() -> None:
    flags = builder_flags(
        devices=["/dev/x"], cap_add=["A"], cap_drop=["B"], privileged=True, tmpfs=["/t"],
        volumes={"/h": "/c"},
    )  # fmt: skip
    assert flags == ["--device", "/dev/x", "--cap-add", "A", "--cap-drop", "B",
                     "--privileged", "--tmpfs", "/t", "-v", "/h:/c"]  # fmt: skip

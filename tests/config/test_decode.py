"""The config decoder reproduces mapstructure's weak decoding and Packer's error texts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from imagesmith.config import Duration, decode, opt
from imagesmith.config.decode import DecodeError, RenderFailure
from imagesmith.config.fields import was_set


@dataclass
class Comm:
    ssh_host: str = ""
    ssh_timeout: Duration = opt(Duration(300), alias="ssh_wait_timeout")


@dataclass
class Volume:
    device_name: str = ""
    volume_size: int = 0
    delete_on_termination: bool = False


@dataclass
class Config:
    target: str = ""
    content: str = ""
    count: int = 0
    ratio: float = 0.0
    enabled: bool = False
    inline: list[str] = field(default_factory=list)
    codes: list[int] = opt(default_factory=lambda: [0])
    tags: dict[str, str] = field(default_factory=dict)
    execute_command: str = opt("", late=True)
    volumes: list[Volume] = field(default_factory=list)
    extra: Any = None
    optional: str | None = None
    comm: Comm = opt(squash=True, default_factory=Comm)


def upper(text: str) -> str:
    return text.replace("{{x}}", "X")


def test_plain_values_and_set_tracking() -> None:
    cfg = decode(Config, {"target": "t", "count": 3, "enabled": True, "ssh_host": "h"})
    assert (cfg.target, cfg.count, cfg.enabled, cfg.comm.ssh_host) == ("t", 3, True, "h")
    assert was_set(cfg, "target") and not was_set(cfg, "content")
    assert was_set(cfg.comm, "ssh_host")


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("enabled", "true", True),
        ("enabled", "0", False),
        ("enabled", "", False),
        ("enabled", 1, True),
        ("count", "5", 5),
        ("count", "", 0),
        ("count", 5.0, 5),
        ("ratio", "1.5", 1.5),
        ("target", 5, "5"),
        ("target", 1.5, "1.5"),
        ("target", True, "1"),
        ("inline", "echo a,echo b", ["echo a", "echo b"]),
        ("inline", "", []),
        ("codes", "1,2", [1, 2]),
        ("codes", 3, [3]),
    ],
)
def test_weak_typing(key: str, raw: Any, expected: Any) -> None:
    assert getattr(decode(Config, {key: raw}), key) == expected


def test_duration_go_string_nanoseconds_and_alias() -> None:
    assert decode(Config, {"ssh_timeout": "1m30s"}).comm.ssh_timeout == 90
    assert decode(Config, {"ssh_wait_timeout": 2_000_000_000}).comm.ssh_timeout == 2
    with pytest.raises(DecodeError, match=r"error decoding 'ssh_timeout': time: invalid duration"):
        decode(Config, {"ssh_timeout": "bogus"})


def test_case_insensitive_keys_and_duplicate_spelling_is_unknown() -> None:
    assert decode(Config, {"TARGET": "x"}).target == "x"
    with pytest.raises(DecodeError) as info:
        decode(Config, {"TARGET": "y", "target": "x", "Zed": 1, "bogus": 2})
    assert str(info.value) == (
        "3 errors occurred:\n"
        "\t* unknown configuration key: '\"TARGET\"'\n"
        "\t* unknown configuration key: '\"Zed\"'\n"
        "\t* unknown configuration key: '\"bogus\"'\n\n"
    )


def test_packer_injected_keys_are_never_unknown() -> None:
    decode(Config, {"packer_build_name": "x", "packer_force": True})


def test_type_errors_are_reported_together_before_unknown_keys() -> None:
    with pytest.raises(DecodeError) as info:
        decode(Config, {"target": ["a"], "content": {"x": 1}, "bogus": 1})
    assert str(info.value) == (
        "2 error(s) decoding:\n\n"
        "* 'content' expected type 'string', got unconvertible type "
        "'map[interface {}]interface {}', value: 'map[x:1]'\n"
        "* 'target' expected type 'string', got unconvertible type '[]interface {}', "
        "value: '[a]'"
    )


def test_list_element_errors_name_the_index() -> None:
    with pytest.raises(DecodeError, match=r"cannot parse 'codes\[0\]' as int: strconv.ParseInt"):
        decode(Config, {"codes": "x"})


def test_nested_dataclasses_and_maps() -> None:
    cfg = decode(
        Config,
        {
            "volumes": [{"device_name": "/dev/xvdcy", "volume_size": "20"}],
            "tags": [{"a": "1"}, {"b": "2"}],
        },
    )
    assert cfg.volumes == [Volume("/dev/xvdcy", 20, False)]
    assert cfg.tags == {"a": "1", "b": "2"}
    with pytest.raises(DecodeError, match=r"unknown configuration key: '\"volumes\[0\].bogus\"'"):
        decode(Config, {"volumes": [{"bogus": 1}]})


def test_interpolation_everywhere_except_late_fields() -> None:
    cfg = decode(
        Config,
        {
            "target": "{{x}}",
            "inline": ["a {{x}}"],
            "tags": {"{{x}}": "{{x}}"},
            "extra": {"k": ["{{x}}"]},
            "execute_command": "{{x}}",
        },
        render=upper,
    )
    assert cfg.target == "X" and cfg.inline == ["a X"] and cfg.tags == {"X": "X"}
    assert cfg.extra == {"k": ["X"]}
    assert cfg.execute_command == "{{x}}"


def test_render_errors_are_reported_with_key_and_raw_text() -> None:
    def failing(text: str) -> str:
        raise ValueError('template: root:1:2: executing "root" at <split>: error calling split')

    with pytest.raises(RenderFailure) as info:
        decode(Config, {"content": "{{split}}"}, render=failing)
    assert str(info.value).startswith("render 'content': template: root:1:2: executing")
    assert str(info.value).endswith(" in:\n\n{{split}}")

    def parse_failing(text: str) -> str:
        raise ValueError('template: root:1: function "bogus" not defined')

    with pytest.raises(RenderFailure, match=r"^invalid 'content': template: root:1: function"):
        decode(Config, {"content": "{{bogus}}"}, render=parse_failing)


def test_optional_and_null_values() -> None:
    cfg = decode(Config, {"optional": None, "target": None})
    assert cfg.optional is None and cfg.target == ""
    assert decode(Config, {"optional": "v"}).optional == "v"


def test_required_fields() -> None:
    @dataclass
    class Req:
        name: str = opt(required=True)

    with pytest.raises(DecodeError, match="'name' must be specified"):
        decode(Req, {})


def test_deprecated_keys_get_packers_fix_message() -> None:
    @dataclass
    class Manifest:
        DEPRECATED_KEYS: ClassVar[frozenset[str]] = frozenset({"filename"})
        output: str = ""

    with pytest.raises(DecodeError) as info:
        decode(Manifest, {"filename": "m.json", "bogus": 1})
    text = str(info.value)
    assert "\t* Deprecated configuration key: 'filename'. Please call `packer fix`" in text
    assert "\t* unknown configuration key: '\"bogus\"'" in text


def test_render_errors_name_the_top_level_key() -> None:
    def failing(text: str) -> str:
        raise ValueError('template: root:1:2: executing "root" at <x>: error calling x')

    with pytest.raises(RenderFailure, match=r"^render 'inline': "):
        decode(Config, {"inline": ["ok", "{{x}}"]}, render=failing)


def test_json_numbers_are_float64_in_type_errors() -> None:
    with pytest.raises(DecodeError, match=r"'volumes\[0\]' expected a map, got 'float64'"):
        decode(Config, {"volumes": [5]})


def test_a_decode_error_carries_what_did_decode_and_which_keys_failed() -> None:
    raw = {"target": "t", "Count": "many", "volumes": [{"volume_size": "x"}], "ssh_host": "h"}
    with pytest.raises(DecodeError) as caught:
        decode(Config, raw)
    partial = caught.value.partial
    assert (partial.target, partial.count, partial.comm.ssh_host) == ("t", 0, "h")
    assert caught.value.failed_keys == {"count", "volumes"}

    with pytest.raises(DecodeError) as caught:
        decode(Config, {"target": "t", "nope": 1})
    assert caught.value.unknown_keys and caught.value.partial.target == "t"
    assert caught.value.failed_keys == set()

"""The ``{{.Vars}}`` string and env-file content shared by the shell-type provisioners."""

from __future__ import annotations

import pytest

from components_local.helpers import build_info
from imagesmith.provisioners.envvars import flatten_env, packer_env, parse_env_vars


def test_pairs_sorted_by_byte_order_with_quotes_escaped() -> None:
    env = {
        "FOO": "it's bar",
        "EMPTY": "",
        "PACKER_BUILD_NAME": "d",
        "PACKER_BUILDER_TYPE": "docker",
    }
    # Observed from Packer 1.6.6: PACKER_BUILDER_TYPE sorts before PACKER_BUILD_NAME.
    assert flatten_env(env, "%s='%s' ") == (
        "EMPTY='' FOO='it'\"'\"'s bar' PACKER_BUILDER_TYPE='docker' PACKER_BUILD_NAME='d' "
    )


def test_byte_order_puts_uppercase_before_lowercase() -> None:
    assert flatten_env({"b": "1", "B": "2", "a": "3"}, "%s=%s;") == "B=2;a=3;b=1;"


def test_env_file_format() -> None:
    assert flatten_env({"A": "1", "B": "x y"}, "export %s='%s'\n") == (
        "export A='1'\nexport B='x y'\n"
    )


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%s", "A%!(EXTRA string=1)"),
        ("%s=%s %s;", "A=1 %!s(MISSING);"),
        ("%s=%q ", 'A="1" '),
        ("%%%s=%s", "%A=1"),
    ],
    ids=["too-few-verbs", "too-many-verbs", "quoted", "literal-percent"],
)
def test_env_var_format_is_a_go_format(fmt: str, expected: str) -> None:
    assert flatten_env({"A": "1"}, fmt) == expected


def test_parse_keeps_everything_after_the_first_equals_and_later_keys_win() -> None:
    env, errors = parse_env_vars(["A=x=y", "B=", "A=z"])
    assert env == {"A": "z", "B": ""}
    assert errors == []


def test_parse_reports_every_malformed_item() -> None:
    _, errors = parse_env_vars(["=a", "b", "ok=1"])
    assert errors == [
        "Environment variable not in format 'key=value': =a",
        "Environment variable not in format 'key=value': b",
    ]


def test_packer_env_without_http_server() -> None:
    info = build_info("web", "docker")
    generated = {
        "PackerHTTPAddr": "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER",
        "PackerHTTPIP": "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER",
        "PackerHTTPPort": "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER",
    }
    assert packer_env(info, generated) == {
        "PACKER_BUILD_NAME": "web",
        "PACKER_BUILDER_TYPE": "docker",
    }


def test_packer_env_with_http_server() -> None:
    info = build_info("web", "qemu")
    generated = {
        "PackerHTTPAddr": "10.0.2.2:8080",
        "PackerHTTPIP": "10.0.2.2",
        "PackerHTTPPort": 8080,
    }
    assert packer_env(info, generated) == {
        "PACKER_BUILD_NAME": "web",
        "PACKER_BUILDER_TYPE": "qemu",
        "PACKER_HTTP_ADDR": "10.0.2.2:8080",
        "PACKER_HTTP_IP": "10.0.2.2",
        "PACKER_HTTP_PORT": "8080",
    }


def test_build_name_with_a_quote_stays_one_shell_word() -> None:
    # Packer leaves the build name unescaped (a broken command line); we escape it.
    info = build_info("it's", "null")
    assert flatten_env(packer_env(info, {}), "%s='%s' ") == (
        "PACKER_BUILDER_TYPE='null' PACKER_BUILD_NAME='it'\"'\"'s' "
    )

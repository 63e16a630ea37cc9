"""Packer's template functions and how the rendering context changes them."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import imagesmith
from imagesmith.template import functions
from imagesmith.template.functions import clean_ami_name, clean_gce_name
from imagesmith.template.gotemplate import FuncError, GoFunc
from imagesmith.template.render import RenderContext, RenderError, render

VARS = {"a": "hello", "b": "x,y,z"}
FIXED = datetime(2026, 12, 3, 16, 19, 40, 756000, tzinfo=UTC)


def r(text: str, **ctx: Any) -> str:
    ctx.setdefault("user_variables", VARS)
    return render(text, RenderContext(**ctx))


def err(text: str, **ctx: Any) -> str:
    with pytest.raises(RenderError) as e:
        r(text, **ctx)
    return str(e.value)


def calling(fn: str, message: str, at: str | None = None) -> str:
    """The text of a function's error at column 2 of line 1."""
    return f'template: root:1:2: executing "root" at <{at or fn}>: error calling {fn}: {message}'


@pytest.fixture
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(functions, "RUN_START", FIXED)
    return FIXED


# --- user, env, template_dir, build info ---------------------------------------------


def test_user() -> None:
    assert r("{{user `a`}}|{{user `nope`}}|") == "hello||"


def test_user_unknown_inside_variables_is_an_error() -> None:
    assert err("{{user `zz`}}", in_variables=True) == calling(
        "user",
        "Error: variable not set: zz: Please make sure that the variable you're referencing "
        "has been defined; Packer treats all variables used to interpolate other user "
        "variables as required.",
        at="user `zz`",
    )


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESMITH_T", "val")
    monkeypatch.delenv("IMAGESMITH_UNSET", raising=False)
    assert r('{{env "IMAGESMITH_T"}}|{{env "IMAGESMITH_UNSET"}}|', allow_env=True) == "val||"
    assert err('{{env "IMAGESMITH_T"}}') == calling(
        "env", "env vars are not allowed here", at='env "IMAGESMITH_T"'
    )


def test_template_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert r("{{template_dir}}", template_dir=str(tmp_path)) == str(tmp_path)
    assert r("{{template_dir}}", template_dir=".") == str(tmp_path)
    assert err("{{template_dir}}") == calling("template_dir", "template path not available")


def test_pwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert r("{{pwd}}") == os.getcwd()


@pytest.mark.parametrize("fn", ["build_name", "build_type"])
def test_build_info(fn: str) -> None:
    assert r("{{build_name}}/{{build_type}}", build_name="web", build_type="null") == "web/null"
    assert err("{{" + fn + "}}") == calling(fn, f"{fn} not available")


def test_packer_version() -> None:
    assert r("{{packer_version}}") == imagesmith.PACKER_COMPAT_VERSION == "1.6.6"
    assert err("{{packer_version}}", packer_version=False) == calling(
        "packer_version", "packer_version not available"
    )


# --- build ---------------------------------------------------------------------------


def test_build_in_builder_config() -> None:
    for mode in ("builder", "none"):
        assert err('{{build "ID"}}', build_mode=mode) == calling(
            "build",
            "Error validating build variable: the given variable ID will not be passed "
            "into your plugin.",
            at='build "ID"',
        )


def test_build_placeholder_mode() -> None:
    keys = ["ID", "Host", "PackerRunUUID"]
    assert r("{{build `ID`}} {{ build `Host` }}", build_mode="placeholder", build_keys=keys) == (
        "{{.ID}} {{.Host}}"
    )
    assert err("{{build `Nope`}}", build_mode="placeholder", build_keys=keys) == calling(
        "build", "loaded data, but couldnt find Nope in it.", at="build `Nope`"
    )


def test_placeholder_mode_dot_reads_the_build_function_hint() -> None:
    out = r("{{ .ID }}|{{ .Nope }}", build_mode="placeholder", build_keys=["ID"])
    assert out == (
        "Build_ID. To set this dynamically in the Packer template, you must use the `build` "
        "function|<no value>"
    )


def test_placeholder_then_data_round_trip() -> None:
    keys = ["ID", "Host"]
    prepared = r(
        "id={{build `ID`}} host={{build `Host`}}", build_mode="placeholder", build_keys=keys
    )
    generated = {"ID": "Null", "PackerRunUUID": "u"}
    at_run = r(prepared, build_mode="data", generated=generated, data=generated)
    assert at_run == "id=Null host=<no value>"


def test_build_data_mode() -> None:
    generated = {"ID": "i-123", "Port": 22}
    assert (
        r("{{build `ID`}}:{{build `Port`}}", build_mode="data", generated=generated) == "i-123:22"
    )
    assert err("{{build `Host`}}", build_mode="data", generated=generated) == calling(
        "build", "loaded data, but couldnt find Host in it.", at="build `Host`"
    )


# --- string functions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ('{{split "a,b,c" "," 0}}{{split "a,b,c" "," 2}}', "ac"),
        ("{{split (user `b`) `,` 1}}", "y"),
        ('{{split "abc" "" 1}}', "b"),
        ('{{split "a--b" "-" 1}}|', "|"),
        (
            '{{replace "a" "b" 1 "aaa"}} {{replace "a" "b" -1 "aaa"}} {{replace "a" "b" 0 "aaa"}}',
            "baa bbb aaa",
        ),
        ('{{replace "" "-" 2 "abc"}} {{replace "" "-" -1 "ab"}}', "-a-bc -a-b-"),
        ('{{replace_all "a" "bb" "banana"}} {{replace_all "" "." "ab"}}', "bbbnbbnbb .a.b."),
        ("{{upper `MiXeD é`}} {{lower `MiXeD É`}}", "MIXED É mixed é"),
        ("{{upper `ß`}}", "ß"),
    ],
)
def test_string_functions(text: str, out: str) -> None:
    assert r(text) == out


def test_split_out_of_range() -> None:
    assert err('{{split "a-b-c" "-" 5}}') == calling(
        "split",
        "the substring 5 was unavailable using the separator value, -, only 3 values were found",
        at='split "a-b-c" "-" 5',
    )


def test_sed_is_deprecated() -> None:
    assert err('{{sed "a" "b"}}') == calling(
        "sed",
        "template function `sed` is deprecated use `replace` or `replace_all` "
        "instead.Documentation: https://www.packer.io/docs/templates/engine",
        at='sed "a" "b"',
    )


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("my ami {{x}}: 1.0", "my ami --x--- 1.0"),
        ("a(b)[c] ./-'@_", "a(b)[c] ./-'@_"),
        ("tab\there,é", "tab-here--"),
    ],
)
def test_clean_ami_name(name: str, cleaned: str) -> None:
    assert clean_ami_name(name) == cleaned


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("already-valid-1", "already-valid-1"),
        ("My Image_1.0", "my-image-1-0"),
        ("UPPER", "upper"),
    ],
)
def test_clean_gce_name(name: str, cleaned: str) -> None:
    assert clean_gce_name(name) == cleaned


def test_clean_resource_name_only_where_a_builder_adds_it() -> None:
    assert err("{{ clean_resource_name `a b` }}") == (
        'template: root:1: function "clean_resource_name" not defined'
    )
    funcs = {"clean_resource_name": clean_ami_name}
    assert r("{{ `a:b` | clean_resource_name }}", functions=funcs) == "a-b"
    assert r("{{ clean_resource_name `a b` }}", functions=funcs) == "a b"


def test_extra_functions_check_arguments_like_go() -> None:
    funcs: dict[str, Any] = {
        "clean_resource_name": clean_ami_name,
        "twice": GoFunc(lambda s, n: s * n, ("string", "int")),
        "fails": GoFunc(lambda: (_ for _ in ()).throw(FuncError("nope"))),
    }
    assert r("{{ twice `ab` 2 }}", functions=funcs) == "abab"
    assert err("{{ clean_resource_name }}", functions=funcs) == (
        'template: root:1:3: executing "root" at <clean_resource_name>: '
        "wrong number of args for clean_resource_name: want 1 got 0"
    )
    assert err("{{ twice `ab` `2` }}", functions=funcs) == (
        'template: root:1:14: executing "root" at <`2`>: expected integer; found `2`'
    )
    assert err("{{ fails }}", functions=funcs) == (
        'template: root:1:3: executing "root" at <fails>: error calling fails: nope'
    )


# --- time ----------------------------------------------------------------------------


def test_timestamp(fixed_time: datetime) -> None:
    assert r("{{timestamp}}") == str(int(fixed_time.timestamp())) == "1796314780"


def test_run_start_is_fixed_for_the_process() -> None:
    first = r("{{timestamp}} {{isotime}}")
    time.sleep(0.01)
    assert r("{{timestamp}} {{isotime}}") == first


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ("{{isotime}}", "2026-12-03T16:19:40Z"),
        ('{{isotime "2006-01-02"}}', "2026-12-03"),
        ('{{isotime "Mon Jan _2 15:04:05 MST 2006"}}', "Thu Dec  3 16:19:40 UTC 2026"),
        ('{{isotime "06.01.02 03:04:05.000 PM -07:00"}}', "26.12.03 04:19:40.756 PM +00:00"),
        ('{{strftime "%Y-%m-%d %H:%M:%S"}}', "2026-12-03 16:19:40"),
        (
            '{{strftime "%a %A %b %B %y %I %p %Z %z %L"}}',
            "Thu Thursday Dec December 26 04 PM UTC +0000 .756",
        ),
        ('{{strftime "%e %j %f %%"}}', "%e %j %f %"),
        ('{{strftime "abc%"}}|{{strftime "%"}}|{{strftime ""}}', "abc%|%|"),
    ],
)
def test_time_functions(text: str, out: str, fixed_time: datetime) -> None:
    assert r(text) == out


def test_isotime_too_many_args() -> None:
    assert err('{{isotime "a" "b"}}') == calling(
        "isotime", "too many values, 1 needed: [a b]", at='isotime "a" "b"'
    )


def test_uuid_is_time_ordered_and_fresh() -> None:
    before = int(time.time())
    values = r("{{uuid}} {{uuid}}").split()
    after = int(time.time())
    shape = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert all(shape.fullmatch(v) for v in values)
    assert values[0] != values[1]
    assert before <= int(values[0][:8], 16) <= after


# --- secrets stores outside the variables section ------------------------------------


@pytest.mark.parametrize(
    ("text", "fn", "message"),
    [
        ('{{consul_key "x"}}', "consul_key", "consul_key is not allowed here"),
        ('{{vault "a" "b"}}', "vault", "Vault vars are only allowed in the variables section"),
        (
            '{{aws_secretsmanager "x" "y" "z"}}',
            "aws_secretsmanager",
            "AWS Secrets Manager is only allowed in the variables section",
        ),
    ],
)
def test_secrets_functions_outside_variables(text: str, fn: str, message: str) -> None:
    assert err(text) == calling(fn, message, at=text[2:-2])

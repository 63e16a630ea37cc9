"""User variables: precedence, var files, rendering rules and Packer's error texts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imagesmith.errors import TemplateError
from imagesmith.template.loader import parse_template
from imagesmith.template.model import Template
from imagesmith.template.variables import (
    VariablesError,
    given_values,
    read_var_file,
    render_variables,
    secrets_of,
)

NOT_SET_HINT = (
    "Please make sure that the variable you're referencing has been defined; Packer "
    "treats all variables used to interpolate other user variables as required."
)


def template(variables: dict[str, Any], sensitive: list[str] | None = None) -> Template:
    doc: dict[str, Any] = {"variables": variables, "builders": [{"type": "null"}]}
    if sensitive is not None:
        doc["sensitive-variables"] = sensitive
    return parse_template(json.dumps(doc).encode(), path="/tpl/dir/t.json", display_name="t.json")


def var_file(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content)
    return str(path)


# --- precedence -----------------------------------------------------------------------------


def test_defaults_are_overridden_by_var_files_then_by_vars(tmp_path: Path) -> None:
    tpl = template({"a": "default-a", "b": "default-b", "c": "default-c"})
    vf1 = var_file(tmp_path, "vf1.json", '{"a": "file1-a", "b": "file1-b"}')
    vf2 = var_file(tmp_path, "vf2.json", '{"b": "file2-b"}')
    given = given_values([vf1, vf2], [("a", "cli-a")])
    assert render_variables(tpl, given) == {"a": "cli-a", "b": "file2-b", "c": "default-c"}


def test_a_var_beats_a_var_file_whatever_the_flag_order(tmp_path: Path) -> None:
    # Packer collects -var and -var-file separately: order on the command line does
    # not matter (observed: -var a=cli-a -var-file vf1 -var-file=vf2 gave a=cli-a).
    vf = var_file(tmp_path, "vf.json", '{"a": "from-file"}')
    assert given_values([vf], [("a", "cli")]) == {"a": "cli"}


def test_the_last_var_wins() -> None:
    assert given_values([], [("a", "1"), ("a", "2")]) == {"a": "2"}


def test_undeclared_variables_can_be_given() -> None:
    assert render_variables(template({}), {"x": "1"}) == {"x": "1"}


def test_required_variables_take_the_given_value() -> None:
    assert render_variables(template({"a": None}), {"a": "v"}) == {"a": "v"}


# --- var files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a": 1}', "json: cannot unmarshal number into Go value of type string (vf.json line 1)"),
        (
            '{"a": true}',
            "json: cannot unmarshal bool into Go value of type string (vf.json line 1)",
        ),
        (
            '{"a": {"b": 1}}',
            "json: cannot unmarshal object into Go value of type string (vf.json line 1)",
        ),
        ("[1]", "json: cannot unmarshal array into Go value of type kvflag.FlagJSON"),
        ('"x"', "json: cannot unmarshal string into Go value of type kvflag.FlagJSON"),
        ('{"a": "x"', "unexpected EOF"),
        ("", "EOF"),
        ('{"a" 1}', "invalid character '1' after object key"),
    ],
)
def test_var_file_errors(
    tmp_path: Path, content: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    var_file(tmp_path, "vf.json", content)
    with pytest.raises(TemplateError) as caught:
        read_var_file("vf.json")
    assert str(caught.value) == f"Error reading variables in 'vf.json': {message}"


def test_var_file_lenient_cases(tmp_path: Path) -> None:
    # As Go's decoder: null values are "", null is an empty file, duplicates keep the
    # last value, and anything after the first JSON value is ignored.
    assert read_var_file(var_file(tmp_path, "a.json", '{"a": null}')) == {"a": ""}
    assert read_var_file(var_file(tmp_path, "b.json", "null")) == {}
    assert read_var_file(var_file(tmp_path, "c.json", '{"a": "x", "a": "y"}')) == {"a": "y"}
    assert read_var_file(var_file(tmp_path, "d.json", '{"a": "x"} trailing')) == {"a": "x"}


def test_missing_and_directory_var_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TemplateError) as caught:
        read_var_file("nope.json")
    assert str(caught.value) == "open nope.json: no such file or directory"
    (tmp_path / "d").mkdir()
    with pytest.raises(TemplateError) as caught:
        read_var_file("d")
    assert str(caught.value) == "Error reading variables in 'd': read d: is a directory"


def test_the_first_bad_var_file_stops_the_reading(tmp_path: Path) -> None:
    bad = var_file(tmp_path, "bad.json", "[1]")
    with pytest.raises(TemplateError, match=r"bad\.json"):
        given_values([bad, str(tmp_path / "missing.json")], [])


# --- rendering ------------------------------------------------------------------------------


def test_values_refer_to_each_other_whatever_their_order() -> None:
    tpl = template({"c": "{{user `b`}}-c", "b": "{{user `a`}}-b", "a": "A"})
    assert render_variables(tpl, {}) == {"a": "A", "b": "A-b", "c": "A-b-c"}


def test_given_values_are_rendered_too() -> None:
    tpl = template({"a": "A"})
    assert render_variables(tpl, {"b": "{{user `a`}}+{{upper `x`}}"}) == {"a": "A", "b": "A+X"}


def test_env_is_available_to_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESMITH_TEST_ENV", "from-env")
    monkeypatch.delenv("IMAGESMITH_TEST_UNSET", raising=False)
    tpl = template({"a": "{{env `IMAGESMITH_TEST_ENV`}}", "b": "[{{env `IMAGESMITH_TEST_UNSET`}}]"})
    assert render_variables(tpl, {}) == {"a": "from-env", "b": "[]"}


def test_template_dir_works_in_variables() -> None:
    assert render_variables(template({"d": "{{template_dir}}"}), {}) == {"d": "/tpl/dir"}


def test_dot_fields_are_left_for_later() -> None:
    tpl = template({"a": "{{ .Foo }} {{.Bar}}-{{user `b`}}", "b": "B"})
    assert render_variables(tpl, {}) == {"a": "{{ .Foo }} {{.Bar}}-B", "b": "B"}


def test_an_unknown_variable_reference_is_an_error() -> None:
    with pytest.raises(VariablesError) as caught:
        render_variables(template({"a": "{{user `zz`}}"}), {})
    assert str(caught.value) == (
        'Failed to interpolate "a": "{{user `zz`}}"; error: template: root:1:2: executing '
        '"root" at <user `zz`>: error calling user: Error: variable not set: zz: ' + NOT_SET_HINT
    )
    assert caught.value.line == 1


def test_an_unknown_reference_is_silent_while_another_value_keeps_changing() -> None:
    # Packer 1.6.6 only reports it when a whole pass rendered nothing: here "b" renders
    # on every pass, so "a" is left unset, as the binary does (checked: it built
    # "out--C.txt" from "out-{{user `a`}}-{{user `b`}}.txt").
    tpl = template({"a": "{{user `zz`}}", "b": "{{user `c`}}", "c": "C"})
    assert render_variables(tpl, {}) == {"b": "C", "c": "C"}


def test_a_parse_error_names_the_variable() -> None:
    with pytest.raises(VariablesError) as caught:
        render_variables(template({"a": "{{user `zz`}}", "b": "{{nope}}"}), {})
    assert str(caught.value) == (
        "error interpolating default value for 'b': template: root:1: function \"nope\" not defined"
    )


def test_other_execution_errors_are_reported_bare() -> None:
    with pytest.raises(VariablesError) as caught:
        render_variables(template({"c": "{{build_name}}"}), {})
    assert str(caught.value) == (
        'template: root:1:2: executing "root" at <build_name>: error calling build_name: '
        "build_name not available"
    )


def test_packer_version_is_not_available_to_variables() -> None:
    with pytest.raises(VariablesError, match="packer_version not available"):
        render_variables(template({"v": "{{packer_version}}"}), {})


def test_secrets_are_the_final_values_of_declared_sensitive_variables() -> None:
    tpl = template(
        {"pw": "{{user `base`}}!", "base": "s3cr3t", "empty": ""}, ["pw", "empty", "ghost"]
    )
    values = render_variables(tpl, {"ghost": "given"})
    assert secrets_of(tpl, values) == ["s3cr3t!"]

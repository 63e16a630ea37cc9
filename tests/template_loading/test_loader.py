"""Reading a template: every root key, section shapes, Packer's error texts, positions.

Expected texts are packer 1.6.6's (observed with the binary); imagesmith adds a
`` (<file> line <n>)`` suffix after each problem, which these tests spell out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from imagesmith.errors import TemplateError
from imagesmith.template.loader import load_template, parse_template
from imagesmith.template.model import Template

NULL = {"type": "null", "communicator": "none"}


def parse(doc: Any, name: str = "t.json") -> Template:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_template(data, path=f"/tmp/{name}", display_name=name)


def error_of(doc: Any) -> str:
    with pytest.raises(TemplateError) as caught:
        parse(doc)
    return str(caught.value)


def multierror(*items: str) -> str:
    head = "1 error occurred:" if len(items) == 1 else f"{len(items)} errors occurred:"
    return "Failed to parse template: " + head + "".join(f"\n\t* {i}" for i in items) + "\n\n"


def test_a_complete_template_is_read() -> None:
    tpl = parse(
        {
            "_comment": "hello",
            "description": "desc",
            "min_packer_version": "1.5.0",
            "variables": {"b": "B", "a": None},
            "sensitive-variables": ["b", "undeclared"],
            "builders": [NULL, {"type": "file", "name": "f", "target": "x"}],
            "provisioners": [
                {
                    "type": "shell-local",
                    "inline": ["x"],
                    "only": ["f"],
                    "pause_before": "1m30s",
                    "timeout": 5_000_000_000,
                    "max_retries": 3,
                    "override": {"f": {"inline": ["y"]}},
                }
            ],
            "post-processors": [
                "manifest",
                {"type": "checksum", "name": "c"},
                ["compress", "artifice"],
            ],
            "error-cleanup-provisioner": {"type": "shell-local", "inline": ["z"]},
            "push": {"name": "ignored"},
        }
    )
    assert tpl.comments == {"_comment": "hello"}
    assert (tpl.description, tpl.min_version) == ("desc", "1.5.0")
    assert tpl.variables["a"].required and not tpl.variables["b"].required
    assert tpl.variables["b"].default == "B"
    assert tpl.sensitive_variables == ["b"]
    assert list(tpl.builders) == ["null", "f"]
    assert tpl.builders["f"].config == {"target": "x"}
    assert tpl.builders["null"].config == {"communicator": "none"}
    p = tpl.provisioners[0]
    assert (p.type, p.only, p.pause_before, p.timeout, p.max_retries) == (
        "shell-local",
        ["f"],
        90.0,
        5.0,
        "3",
    )
    # The core's own keys never reach the plugin.
    assert p.config == {"inline": ["x"]}
    assert p.override == {"f": {"inline": ["y"]}}
    chains = [[(pp.type, pp.name) for pp in chain] for chain in tpl.post_processors]
    assert chains == [
        [("manifest", "manifest")],
        [("checksum", "c")],
        [("compress", "compress"), ("artifice", "artifice")],
    ]
    assert tpl.cleanup_provisioner is not None and tpl.cleanup_provisioner.config == {
        "inline": ["z"]
    }
    assert tpl.template_dir == "/tmp"


def test_root_keys_match_case_insensitively_as_mapstructure() -> None:
    tpl = parse({"Builders": [NULL], "VARIABLES": {"a": "1"}})
    assert list(tpl.builders) == ["null"] and tpl.variables["a"].default == "1"
    # With both spellings the exact one is used and the other is an unknown key.
    assert error_of({"Builders": [NULL], "builders": [NULL]}) == multierror(
        "Unknown root level key in template: 'Builders' (t.json line 1)"
    )


def test_unknown_root_keys_are_all_listed_sorted() -> None:
    assert error_of({"builders": [NULL], "foo": 1, "bar": 2}) == multierror(
        "Unknown root level key in template: 'bar' (t.json line 1)",
        "Unknown root level key in template: 'foo' (t.json line 1)",
    )


def test_a_comment_must_be_a_string() -> None:
    assert error_of({"builders": [NULL], "_c": 1}) == (
        'Failed to parse template: Failed to cast root level comment value in comment "_c" '
        "to string. (t.json line 1)"
    )


def test_root_type_errors_use_mapstructure_wording_sorted() -> None:
    text = error_of({"builders": 1, "variables": 1, "provisioners": 1, "description": []})
    assert text == (
        "Failed to parse template: 4 error(s) decoding:\n\n"
        "* 'Description' expected type 'string', got unconvertible type '[]interface {}', "
        "value: '[]' (t.json line 1)\n"
        "* 'Provisioners': source data must be an array or slice, got float64 (t.json line 1)\n"
        "* 'Variables' expected a map, got 'float64' (t.json line 1)\n"
        "* 'builders': source data must be an array or slice, got float64 (t.json line 1)"
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"builders": {"type": "null"}},
            "'builders': source data must be an array or slice, got map",
        ),
        ({"builders": [NULL], "variables": []}, "'Variables' expected a map, got 'slice'"),
        (
            {"builders": [NULL], "sensitive-variables": "x"},
            "'sensitive-variables': source data must be an array or slice, got string",
        ),
        (
            {"builders": [NULL], "min_packer_version": 1},
            "'min_packer_version' expected type 'string', got unconvertible type 'float64', "
            "value: '1'",
        ),
        ({"builders": [NULL], "push": 1}, "'Push' expected a map, got 'float64'"),
        (
            {"builders": [NULL], "post-processors": {}},
            "'post-processors': source data must be an array or slice, got map",
        ),
    ],
)
def test_root_type_errors(doc: dict[str, Any], message: str) -> None:
    assert (
        error_of(doc)
        == f"Failed to parse template: 1 error(s) decoding:\n\n* {message} (t.json line 1)"
    )


def test_sensitive_variables_items_must_be_strings() -> None:
    text = error_of({"builders": [NULL], "sensitive-variables": [1, True]})
    assert (
        "* 'sensitive-variables[0]' expected type 'string', got unconvertible type 'float64'"
        in text
    )
    assert (
        "* 'sensitive-variables[1]' expected type 'string', got unconvertible type 'bool'" in text
    )


def test_a_root_that_is_not_an_object() -> None:
    assert error_of([]) == "Failed to parse template: '' expected a map, got 'slice'"
    assert error_of("x") == "Failed to parse template: '' expected a map, got 'string'"
    # null is an empty template: Initialize then reports the missing builders.
    assert parse(None).builders == {}


def test_variables_must_be_strings_or_null() -> None:
    text = error_of(
        {
            "builders": [NULL],
            "variables": {
                "a": 1,
                "d": {"k": [2]},
                "c": [1, "x", True, None],
                "e": None,
                "f": 1000000,
            },
        }
    )
    assert text == multierror(
        "variable a: '' expected type 'string', got unconvertible type 'float64', value: '1' (t.json line 1)",  # noqa: E501
        "variable c: '' expected type 'string', got unconvertible type '[]interface {}', value: '[1 x true <nil>]' (t.json line 1)",  # noqa: E501
        "variable d: '' expected type 'string', got unconvertible type 'map[string]interface {}', value: 'map[k:[2]]' (t.json line 1)",  # noqa: E501
        "variable f: '' expected type 'string', got unconvertible type 'float64', value: '1e+06' (t.json line 1)",  # noqa: E501
    )


def test_builder_errors() -> None:
    text = error_of(
        {
            "builders": [
                {"name": "x"},
                {"type": "null", "name": "a"},
                {"type": "null", "name": "a"},
                {"type": ["x"]},
                5,
            ]
        }
    )
    assert text == multierror(
        "builder 1: missing 'type' (t.json line 1)",
        "builder 3: builder with name 'a' already exists (t.json line 1)",
        "builder 4: 1 error(s) decoding:\n\n* 'Type' expected type 'string', got unconvertible "
        "type '[]interface {}', value: '[x]' (t.json line 1)",
        "builder 5: '' expected a map, got 'float64' (t.json line 1)",
    )


def test_builder_name_and_type_are_weakly_decoded() -> None:
    tpl = parse({"builders": [{"type": "null", "name": 1.5}, {"type": True}]})
    assert [(b.name, b.type) for b in tpl.builders.values()] == [("1.5", "null"), ("1", "1")]


def test_only_lowercase_name_and_type_are_removed_from_builder_configs() -> None:
    tpl = parse({"builders": [{"Type": "null", "Name": "n", "x": 1}]})
    b = tpl.builders["n"]
    assert (b.type, b.config) == ("null", {"Type": "null", "Name": "n", "x": 1})


def test_provisioner_errors() -> None:
    text = error_of(
        {
            "builders": [NULL],
            "provisioners": [
                {"only": ["x"]},
                {"type": "shell-local", "pause_before": "bogus"},
                {"type": "shell-local", "timeout": ""},
                {"type": "shell-local", "max_retries": [1]},
                1,
            ],
        }
    )
    assert text == multierror(
        "provisioner 1: Provisioner missing 'type' (t.json line 1)",
        "provisioner 2: Error decoding provisioner: 1 error(s) decoding:\n\n"
        "* error decoding 'pause_before': time: invalid duration \"bogus\" (t.json line 1)",
        "provisioner 3: Error decoding provisioner: 1 error(s) decoding:\n\n"
        "* error decoding 'timeout': time: invalid duration \"\" (t.json line 1)",
        "provisioner 4: Error decoding provisioner: 1 error(s) decoding:\n\n"
        "* 'max_retries' expected type 'string', got unconvertible type '[]interface {}', "
        "value: '[1]' (t.json line 1)",
        "provisioner 5: Error decoding provisioner: '' expected a map, got 'float64' "
        "(t.json line 1)",
    )


def test_provisioner_keys_are_weakly_decoded() -> None:
    tpl = parse(
        {
            "builders": [NULL],
            "provisioners": [{"type": 1, "only": "null", "override": [], "max_retries": 2}],
        }
    )
    p = tpl.provisioners[0]
    assert (p.type, p.only, p.override, p.max_retries) == ("1", ["null"], {}, "2")


def test_error_cleanup_provisioner() -> None:
    assert error_of({"builders": [NULL], "error-cleanup-provisioner": {}}) == multierror(
        "On Error Cleanup Provisioner error: Provisioner missing 'type' (t.json line 1)"
    )
    assert error_of({"builders": [NULL], "error-cleanup-provisioner": []}) == multierror(
        "On Error Cleanup Provisioner error: Error decoding provisioner: '' expected a map, "
        "got 'slice' (t.json line 1)"
    )
    assert (
        parse({"builders": [NULL], "error-cleanup-provisioner": None}).cleanup_provisioner is None
    )


def test_post_processor_shapes_and_errors() -> None:
    text = error_of(
        {
            "builders": [NULL],
            "post-processors": [
                1,
                [[]],
                [1],
                ["x", {}],
                {"type": "manifest", "keep_input_artifact": "true"},
                {"type": 1},
                {"type": "manifest", "only": "null", "name": 5},
            ],
        }
    )
    assert text == multierror(
        "post-processor 1: bad format (t.json line 1)",
        "post-processor 2.1: sequence not allowed to be nested in a sequence (t.json line 1)",
        "post-processor 3.1: unknown format (t.json line 1)",
        "post-processor 4.2: type is required (t.json line 1)",
        "post-processor 5.1: 1 error(s) decoding:\n\n* 'keep_input_artifact' expected type "
        "'bool', got unconvertible type 'string', value: 'true' (t.json line 1)",
        "post-processor 6.1: 1 error(s) decoding:\n\n* 'Type' expected type 'string', got "
        "unconvertible type 'float64', value: '1' (t.json line 1)",
        "post-processor 7.1: 2 error(s) decoding:\n\n* 'Name' expected type 'string', got "
        "unconvertible type 'float64', value: '5'\n* 'Only': source data must be an array or "
        "slice, got string (t.json line 1)",
    )


def test_post_processor_core_keys_are_removed() -> None:
    tpl = parse(
        {
            "builders": [NULL],
            "post-processors": [
                {
                    "type": "manifest",
                    "name": "m",
                    "only": ["null"],
                    "keep_input_artifact": True,
                    "output": "o",
                }
            ],
        }
    )
    pp = tpl.post_processors[0][0]
    assert (pp.name, pp.only, pp.keep_input_artifact, pp.config) == (
        "m",
        ["null"],
        True,
        {"output": "o"},
    )


def test_every_stage_is_reported_in_one_run() -> None:
    # Packer would stop after the first stage; all four are listed together here.
    text = error_of({"builders": 1, "_c": 1, "foo": 1, "variables": {"a": 2}})
    assert text == multierror(
        "'builders': source data must be an array or slice, got float64 (t.json line 1)",
        'Failed to cast root level comment value in comment "_c" to string. (t.json line 1)',
        "Unknown root level key in template: 'foo' (t.json line 1)",
        "variable a: '' expected type 'string', got unconvertible type 'float64', value: '2' (t.json line 1)",  # noqa: E501
    )


def test_positions_name_the_line_of_each_problem() -> None:
    data = b"""{
  "builders": [
    {"type": "null"},
    {"name": "x"}
  ],
  "foo": 1,
  "post-processors": [
    ["manifest", 7]
  ]
}"""
    with pytest.raises(TemplateError) as caught:
        parse(data, name="p.json")
    assert caught.value.problems == [
        "Unknown root level key in template: 'foo' (p.json line 6)",
        "builder 2: missing 'type' (p.json line 4)",
        "post-processor 1.2: unknown format (p.json line 8)",
    ]


def test_duplicate_keys_name_their_line() -> None:
    assert error_of(b'{"builders": [],\n "builders": []}') == (
        "Failed to parse template: template has duplicate field: builders (t.json line 2)"
    )


def test_missing_file_reads_as_go_stat_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TemplateError) as caught:
        load_template("nope.json")
    assert str(caught.value) == '"nope.json": stat nope.json: no such file or directory'


def test_hcl2_paths_are_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "a.pkr.hcl").write_text("")
    for path in (tmp_path / "a.pkr.hcl", tmp_path):
        with pytest.raises(TemplateError, match="HCL2 templates are not supported yet"):
            load_template(str(path))


def test_template_path_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.json").write_text(json.dumps({"builders": [NULL]}))
    monkeypatch.chdir(tmp_path)
    tpl = load_template("t.json")
    assert tpl.path == str(tmp_path / "t.json")
    assert tpl.display_name == "t.json"

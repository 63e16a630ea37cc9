"""``validate``: the same output and exit code as packer 1.6.6 on the same templates
(after removing imagesmith's position suffixes), and what imagesmith adds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.packer import Differential, imagesmith, needs_packer, normalise, same_usage_output

NULL = {"type": "null", "communicator": "none"}
SHELL_LOCAL = {"type": "shell-local", "inline": ["true"]}


def write(path: Path, doc: Any) -> None:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))


CASES: dict[str, tuple[Any, list[str]]] = {
    "valid": (
        {"builders": [NULL], "provisioners": [SHELL_LOCAL], "post-processors": ["manifest"]},
        [],
    ),
    "syntax error": ('{\n  "builders": [\n    {"type": "null",}\n  ]\n}', []),
    "truncated": ('{"builders": [{"type": "null"', []),
    "empty file": ("", []),
    "duplicate key": (
        '{"builders": [{"type": "null", "b": 1, "b": 2}], "z": {"x": 1, "x": 2}}',
        [],
    ),
    "unknown root keys": ({"builders": [NULL], "foo": 1, "bar": 2}, []),
    "root not an object": ("[]", []),
    "root null": ("null", []),
    "root type errors": ({"builders": 1, "variables": 1, "provisioners": 1, "description": []}, []),
    "bad comment": ({"builders": [NULL], "_c": 1}, []),
    "section errors": (
        {
            "builders": [
                {"name": "x"},
                {"type": "null", "name": "a"},
                {"type": "null", "name": "a"},
            ],
            # One bad variable: Packer lists several in random (map) order.
            "variables": {"a": 1},
            "provisioners": [{"only": ["x"]}, {"type": "shell-local", "pause_before": "bogus"}],
            "post-processors": [1, [[]], [1], ["x", {}]],
            "error-cleanup-provisioner": {},
        },
        [],
    ),
    "no builders": ({"builders": []}, []),
    "only except override": (
        {
            "builders": [NULL],
            "provisioners": [
                {**SHELL_LOCAL, "only": ["zz"]},
                {**SHELL_LOCAL, "except": ["yy"]},
                {**SHELL_LOCAL, "override": {"ww": {}}},
            ],
            "post-processors": [{"type": "manifest", "only": ["qq"]}],
        },
        [],
    ),
    "min version": ({"builders": [NULL], "min_packer_version": "1.7"}, []),
    "bad min version": ({"builders": [NULL], "min_packer_version": "bogus"}, []),
    "required variables": (
        {"builders": [NULL], "variables": {"a": None, "b": None}},
        ["-var", "a=1"],
    ),
    "unknown user in variables": ({"builders": [NULL], "variables": {"a": "{{user `zz`}}"}}, []),
    "bad function in variables": ({"builders": [NULL], "variables": {"b": "{{nope}}"}}, []),
    "build_name in variables": ({"builders": [NULL], "variables": {"c": "{{build_name}}"}}, []),
    "env in builder name": ({"builders": [{**NULL, "name": "{{env `HOME`}}"}]}, []),
    "prepare error and warning": (
        {"builders": [{"type": "file", "target": "x"}, {"type": "file", "name": "b"}]},
        [],
    ),
    "unknown key in builder": (
        {"builders": [{"type": "file", "target": "t", "content": "c", "bogus": 1}]},
        [],
    ),
    "unknown builder": ({"builders": [{"type": "nul"}, {"type": "null", "name": "n2"}]}, []),
    "unknown post-processor": ({"builders": [NULL], "post-processors": [{"type": "bogus-pp"}]}, []),
    "unknown post-processor cut by except": (
        {"builders": [NULL], "post-processors": [["manifest", {"type": "bogus-pp"}]]},
        ["-except", "manifest"],
    ),
    "unknown provisioner skipped by only": (
        {
            "builders": [NULL, {**NULL, "name": "other"}],
            "provisioners": [{"type": "bogus", "only": ["other"]}],
        },
        ["-only", "null"],
    ),
    "unknown cleanup provisioner": (
        {"builders": [NULL], "error-cleanup-provisioner": {"type": "bogus"}},
        [],
    ),
    "max_retries from a variable": (
        {
            "variables": {"r": "3"},
            "builders": [NULL],
            "provisioners": [{**SHELL_LOCAL, "max_retries": "{{user `r`}}"}],
        },
        [],
    ),
    "bad max_retries": (
        {"builders": [NULL], "provisioners": [{**SHELL_LOCAL, "max_retries": "x"}]},
        [],
    ),
    "rendered names with only": (
        {
            "variables": {"a": "b"},
            "builders": [{"type": "file", "name": "{{user `a`}}-x"}, {"type": "file", "name": "b"}],
        },
        ["-only", "b-x"],
    ),
    "except": ({"builders": [{"type": "file"}, {"type": "file", "name": "b"}]}, ["-except=file"]),
    "only nothing": ({"builders": [{"type": "file"}]}, ["-only", "zz"]),
    "provisioner error hidden by builder error": (
        {"builders": [{"type": "file"}], "provisioners": [{"type": "shell-local"}]},
        [],
    ),
    "provisioner error": ({"builders": [NULL], "provisioners": [{"type": "shell-local"}]}, []),
    "syntax only": ({"builders": [{"type": "file"}], "variables": {"a": None}}, ["-syntax-only"]),
    "syntax only with parse error": ("{", ["-syntax-only"]),
    "machine readable": (
        {"builders": [{"type": "file", "target": "x"}, {"type": "file", "name": "b"}]},
        ["-machine-readable"],
    ),
    "machine readable initialize": ({"builders": []}, ["-machine-readable"]),
    "bad flag": ({"builders": [NULL]}, ["-bogus"]),
    "var without equals": ({"builders": [NULL]}, ["-var", "foo"]),
    "bad bool": ({"builders": [NULL]}, ["-syntax-only=maybe"]),
    "flag needs argument": ({"builders": [NULL]}, ["-only"]),
    "missing var file": ({"builders": [NULL]}, ["-var-file=nope.json"]),
}


@needs_packer
@pytest.mark.packer
@pytest.mark.parametrize("case", list(CASES))
def test_validate_matches_packer(case: str, tmp_path: Path, differential: Differential) -> None:
    doc, args = CASES[case]
    write(tmp_path / "t.json", doc)
    ref, ours = differential("validate", *args, "t.json")
    assert ours.rc == ref.rc
    assert same_usage_output(normalise(ref.out), normalise(ours.out))


@needs_packer
@pytest.mark.packer
@pytest.mark.parametrize(
    ("var_file", "args"),
    [
        ('{"a": 1}', []),
        ("[1]", []),
        ('{"a": "x"', []),
        ("", []),
        ('{"a": "x"} trailing', []),
        ('{"a": "from-file", "b": "file-b"}', ["-var", "a=cli"]),
    ],
)
def test_var_files_match_packer(
    var_file: str, args: list[str], tmp_path: Path, differential: Differential
) -> None:
    write(tmp_path / "vf.json", var_file)
    # The values show up in the file builder's error only through build names.
    write(
        tmp_path / "t.json",
        {
            "variables": {"a": "A", "b": "B"},
            "builders": [{"type": "file", "name": "{{user `a`}}-{{user `b`}}"}],
        },
    )
    ref, ours = differential("validate", *args, "-var-file=vf.json", "t.json")
    assert (ours.rc, normalise(ours.out)) == (ref.rc, normalise(ref.out))


@needs_packer
@pytest.mark.packer
def test_missing_template_and_usage_match_packer(differential: Differential) -> None:
    for args in (["nope.json"], [], ["a.json", "b.json"]):
        ref, ours = differential("validate", *args)
        assert (ours.rc, normalise(ours.out)) == (ref.rc, ref.out)


@needs_packer
@pytest.mark.packer
def test_template_from_stdin_matches_packer(differential: Differential) -> None:
    for doc in ({"builders": [{"type": "file"}]}, {"builders": [NULL]}):
        ref, ours = differential("validate", "-", stdin=json.dumps(doc))
        assert (ours.rc, normalise(ours.out)) == (ref.rc, normalise(ref.out))


def test_problems_name_file_and_line(tmp_path: Path) -> None:
    write(
        tmp_path / "t.json",
        '{\n  "builders": [\n    {"type": "file"}\n  ],\n  "provisioners": [\n'
        '    {"type": "shell-local", "only": ["zz"]}\n  ]\n}',
    )
    result = imagesmith("validate", "t.json", cwd=tmp_path)
    assert result.rc == 1
    assert "provisioner 1: 'only' specified builder 'zz' not found (t.json line 6)" in result.out
    write(tmp_path / "t.json", '{\n  "builders": [\n    {"type": "file"}\n  ]\n}')
    result = imagesmith("validate", "t.json", cwd=tmp_path)
    assert 'Error: Failed to prepare build: "file" (t.json line 3)' in result.out


def test_success_prints_nothing(tmp_path: Path) -> None:
    write(tmp_path / "t.json", {"builders": [NULL]})
    assert imagesmith("validate", "t.json", cwd=tmp_path) == imagesmith(
        "validate", "t.json", cwd=tmp_path
    )
    result = imagesmith("validate", "t.json", cwd=tmp_path)
    assert (result.rc, result.out, result.err) == (0, "", "")


def test_sensitive_values_are_redacted_in_every_mode(tmp_path: Path) -> None:
    write(
        tmp_path / "t.json",
        {
            "variables": {"pw": "s3cr3t"},
            "sensitive-variables": ["pw"],
            "builders": [{"type": "file", "target": "t", "content": "c", "bogus": "{{user `pw`}}"}],
            "provisioners": [{"type": "shell-local", "inline": ["x"], "{{user `pw`}}": 1}],
        },
    )
    for args in ([], ["-machine-readable"]):
        result = imagesmith("validate", *args, "t.json", cwd=tmp_path)
        assert result.rc == 1
        assert "s3cr3t" not in result.out


def test_every_problem_of_a_broken_template_is_listed_at_once(tmp_path: Path) -> None:
    write(tmp_path / "t.json", {"builders": 1, "_c": 1, "foo": 1, "variables": {"a": 2}})
    result = imagesmith("validate", "t.json", cwd=tmp_path)
    assert result.out.startswith("Failed to parse template: 4 errors occurred:\n")
    for fragment in ("'builders'", '"_c"', "'foo'", "variable a"):
        assert fragment in result.out

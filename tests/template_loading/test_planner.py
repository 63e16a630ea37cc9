"""Planning: Initialize checks, build selection, component lookup, decoding, Prepare.

The builds use the real ``null``, ``file``, ``shell-local`` and ``manifest`` components.
Three small components defined here (registered under ``plan-test-*`` names) record
what the planner hands them, to check rendering modes, warnings and secrets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from imagesmith.config.fields import opt
from imagesmith.engine.artifact import Artifact
from imagesmith.engine.plan import Plan
from imagesmith.errors import ConfigError
from imagesmith.plugins import Builder, PostProcessor, Provisioner, registry
from imagesmith.template.loader import parse_template
from imagesmith.template.planner import (
    BuildRenderer,
    GoVersion,
    PlanOptions,
    go_atoi,
    plan_template,
    select_builds,
)

NULL = {"type": "null", "communicator": "none"}


@dataclass
class RecorderConfig:
    value: str = ""
    password: str = opt("", secret=True)
    warn: str = ""
    fail: str = ""


class RecorderBuilder(Builder):
    type_name = "plan-test-builder"
    Config: ClassVar[type[RecorderConfig]] = RecorderConfig
    template_functions: ClassVar[dict[str, Any]] = {"shout": lambda s: s.upper() + "!"}

    def generated_data_keys(self) -> tuple[str, ...]:
        return ("SourceThing",)

    def prepare(self) -> list[str]:
        if self.config.fail:
            raise ConfigError([self.config.fail])
        return [self.config.warn] if self.config.warn else []

    async def run(self, build: Any) -> Artifact | None:
        raise NotImplementedError


class RecorderProvisioner(Provisioner):
    type_name = "plan-test-provisioner"
    Config: ClassVar[type[RecorderConfig]] = RecorderConfig

    def prepare(self) -> list[str]:
        if self.config.fail:
            raise ConfigError([self.config.fail, "second problem"])
        return []

    async def provision(self, ctx: Any) -> None:
        raise NotImplementedError


class RecorderPostProcessor(PostProcessor):
    type_name = "plan-test-pp"
    Config: ClassVar[type[RecorderConfig]] = RecorderConfig

    async def post_process(self, ui: Any, artifact: Artifact) -> Artifact | None:
        raise NotImplementedError


registry.register("builder", "plan-test-builder", RecorderBuilder)
registry.register("provisioner", "plan-test-provisioner", RecorderProvisioner)
registry.register("post-processor", "plan-test-pp", RecorderPostProcessor)


def plan(doc: dict[str, Any], given: dict[str, str] | None = None, **options: Any) -> Plan:
    tpl = parse_template(json.dumps(doc).encode(), path="/tpl/t.json", display_name="t.json")
    return plan_template(tpl, given or {}, PlanOptions(run_uuid="run-1", **options))


def details(p: Plan) -> list[tuple[str, str, str]]:
    return [(d.severity, d.summary, d.detail) for d in p.diagnostics]


# --- Initialize ------------------------------------------------------------------------------


def test_at_least_one_builder() -> None:
    assert details(plan({})) == [
        ("error", "", "1 error occurred:\n\t* at least one builder must be defined\n\n")
    ]


def test_only_except_and_override_must_name_builders() -> None:
    p = plan(
        {
            "builders": [NULL],
            "provisioners": [
                {"type": "shell-local", "inline": ["x"], "only": ["null"], "except": ["null"]},
                {"type": "shell-local", "inline": ["x"], "only": ["zz"]},
                {"type": "shell-local", "inline": ["x"], "except": ["yy"]},
                {"type": "shell-local", "inline": ["x"], "override": {"ww": {}}},
            ],
            "post-processors": [
                {"type": "manifest", "only": ["null"], "except": ["null"]},
                [{"type": "manifest"}, {"type": "manifest", "only": ["zz"]}],
            ],
        }
    )
    assert details(p) == [
        (
            "error",
            "",
            "6 errors occurred:\n"
            "\t* provisioner 1: only one of 'only' or 'except' may be specified (t.json line 1)\n"
            "\t* provisioner 2: 'only' specified builder 'zz' not found (t.json line 1)\n"
            "\t* provisioner 3: 'except' specified builder 'yy' not found (t.json line 1)\n"
            "\t* provisioner 4: override 'ww' doesn't exist (t.json line 1)\n"
            "\t* post-processor 1.1: only one of 'only' or 'except' may be specified "
            "(t.json line 1)\n"
            "\t* post-processor 2.2: 'only' specified builder 'zz' not found (t.json line 1)\n\n",
        )
    ]


@pytest.mark.parametrize(
    ("minimum", "detail"),
    [
        ("1.7", "This template requires Packer version 1.7.0 or higher; using 1.6.6"),
        ("v2", "This template requires Packer version 2.0.0 or higher; using 1.6.6"),
        (
            "1.6.7-rc1+meta",
            "This template requires Packer version 1.6.7-rc1+meta or higher; using 1.6.6",
        ),
        ("1.7.0.0.0", "This template requires Packer version 1.7.0.0.0 or higher; using 1.6.6"),
        ("01.7.0", "This template requires Packer version 1.7.0 or higher; using 1.6.6"),
        ("1.7 ", "min_version is invalid: Malformed version: 1.7 "),
        ("bogus", "min_version is invalid: Malformed version: bogus"),
    ],
)
def test_min_packer_version_refused(minimum: str, detail: str) -> None:
    p = plan({"builders": [NULL], "min_packer_version": minimum})
    assert details(p) == [("error", "", detail + " (t.json line 1)")]


@pytest.mark.parametrize("minimum", ["1.6.6", "1.6.6-beta", "1.6.6+x", "1.6.5.9", "1.6.6-1", ""])
def test_min_packer_version_accepted(minimum: str) -> None:
    assert plan({"builders": [NULL], "min_packer_version": minimum}).diagnostics == []


def test_go_version_ordering() -> None:
    v = GoVersion.parse
    assert v("1.6.6-beta") < v("1.6.6") < v("1.6.6.1") < v("1.7")
    assert v("1.0.0-alpha") < v("1.0.0-alpha.1") < v("1.0.0-beta.2") < v("1.0.0-beta.11")
    assert str(v("v1.2")) == "1.2.0"


def test_required_variables_must_be_given() -> None:
    doc = {"builders": [NULL], "variables": {"a": None, "b": None}}
    assert details(plan(doc, {"a": "1"})) == [
        ("error", "", "1 error occurred:\n\t* required variable not set: b (t.json line 1)\n\n")
    ]
    assert plan(doc, {"a": "1", "b": ""}).diagnostics == []


def test_independent_initialize_problems_are_reported_together() -> None:
    p = plan({"builders": [NULL], "min_packer_version": "9", "variables": {"a": None}})
    assert details(p) == [
        (
            "error",
            "",
            "2 errors occurred:\n"
            "\t* This template requires Packer version 9.0.0 or higher; using 1.6.6 "
            "(t.json line 1)\n"
            "\t* required variable not set: a (t.json line 1)\n\n",
        )
    ]


def test_build_names_are_rendered_after_the_variables() -> None:
    doc = {
        "variables": {"a": "b"},
        "builders": [{**NULL, "name": "{{user `a`}}-x"}, {**NULL, "name": "plain"}],
    }
    assert [b.name for b in plan(doc).builds] == ["b-x", "plain"]
    # -only and -except match the rendered names, exactly.
    assert [b.name for b in plan(doc, only=["b-x"]).builds] == ["b-x"]
    assert [b.name for b in plan(doc, only=["{{user `a`}}-x"]).builds] == []
    assert [b.name for b in plan(doc, except_=["b-x"]).builds] == ["plain"]


def test_build_name_errors() -> None:
    p = plan({"builders": [{**NULL, "name": "{{env `HOME`}}"}]})
    assert details(p) == [
        (
            "error",
            "",
            "Error interpolating builder '{{env `HOME`}}': template: root:1:2: executing "
            '"root" at <env `HOME`>: error calling env: env vars are not allowed here '
            "(t.json line 1)",
        )
    ]


def test_two_builders_rendering_to_one_name_are_refused() -> None:
    p = plan(
        {
            "variables": {"a": "b"},
            "builders": [{**NULL, "name": "{{user `a`}}"}, {**NULL, "name": "b"}],
        }
    )
    assert "build name 'b' (from 'b') is already the name of builder 1" in p.diagnostics[0].detail


def test_selection_is_exact_and_sorted() -> None:
    names = ["b", "a", "a*", "c"]
    assert select_builds(names, [], []) == ["a", "a*", "b", "c"]
    assert select_builds(names, ["a*"], []) == ["a*"]
    assert select_builds(names, [], ["a", "zz"]) == ["a*", "b", "c"]
    assert select_builds(names, ["nothing"], []) == []


# --- builds ----------------------------------------------------------------------------------


def test_a_build_gets_its_provisioners_and_chains() -> None:
    p = plan(
        {
            "variables": {"retries": "2"},
            "builders": [NULL, {"type": "file", "name": "f", "target": "out", "content": "x"}],
            "provisioners": [
                {"type": "shell-local", "inline": ["a"], "only": ["f"], "pause_before": "2s"},
                {
                    "type": "shell-local",
                    "inline": ["b"],
                    "timeout": "3s",
                    "max_retries": "{{user `retries`}}",
                },
            ],
            "error-cleanup-provisioner": {"type": "shell-local", "inline": ["c"]},
            "post-processors": [
                ["manifest", {"type": "manifest", "name": "m2", "keep_input_artifact": True}]
            ],
        }
    )
    assert p.diagnostics == [] and [b.name for b in p.builds] == ["f", "null"]
    f, null = p.builds
    assert [(x.pause_before, x.timeout, x.max_retries) for x in f.provisioners] == [
        (2.0, None, 0),
        (None, 3.0, 2),
    ]
    assert len(null.provisioners) == 1
    assert f.cleanup_provisioner is not None
    chain = f.post_processors[0]
    assert [(x.type_name, x.name, x.keep_input_artifact) for x in chain] == [
        ("manifest", "manifest", None),
        ("manifest", "m2", True),
    ]
    info = f.builder.info
    assert (info.name, info.builder_type, info.run_uuid, info.template_path) == (
        "f",
        "file",
        "run-1",
        "/tpl/t.json",
    )
    assert info.user_variables == {"retries": "2"}


def test_except_also_removes_post_processors_by_name_cutting_the_chain() -> None:
    doc = {
        "builders": [NULL],
        "post-processors": [
            [{"type": "manifest", "name": "pp1"}, {"type": "manifest", "name": "pp1b"}],
            [{"type": "manifest", "name": "keep"}, {"type": "manifest", "name": "cut"}, "manifest"],
        ],
    }
    chains = plan(doc, except_=["pp1", "cut"]).builds[0].post_processors
    assert [[x.name for x in chain] for chain in chains] == [["keep"]]


def test_post_processors_skipped_by_only_drop_out_of_their_chain() -> None:
    doc = {
        "builders": [NULL, {**NULL, "name": "other"}],
        "post-processors": [
            [{"type": "manifest", "only": ["other"]}],
            ["manifest", {"type": "manifest", "name": "x", "except": ["null"]}],
        ],
    }
    by_name = {b.name: b for b in plan(doc).builds}
    assert [[x.name for x in c] for c in by_name["null"].post_processors] == [["manifest"]]
    assert [[x.name for x in c] for c in by_name["other"].post_processors] == [
        ["manifest"],
        ["manifest", "x"],
    ]


def test_unknown_component_types_fail_the_build_with_a_suggestion() -> None:
    p = plan(
        {
            "builders": [{"type": "nul"}, {**NULL, "name": "ok"}],
            "provisioners": [{"type": "shell-locl", "only": ["ok"]}],
        }
    )
    assert details(p) == [
        (
            "error",
            'Failed to initialize build "nul"',
            "error initializing builder 'nul': Unknown builder nul. Did you mean 'null'? (t.json line 1)",  # noqa: E501
        ),
        (
            "error",
            'Failed to initialize build "ok"',
            "error initializing provisioner 'shell-locl': Unknown provisioner shell-locl. "
            "Did you mean 'shell-local'? (t.json line 1)",
        ),
    ]
    assert p.builds == []


def test_max_retries_must_render_to_an_integer() -> None:
    p = plan(
        {
            "builders": [NULL],
            "provisioners": [
                {"type": "shell-local", "inline": ["x"], "max_retries": "x{{user `a`}}"}
            ],
        }
    )
    assert details(p) == [
        (
            "error",
            'Failed to initialize build "null"',
            '`max_retries` must be a valid integer: strconv.Atoi: parsing "x": invalid syntax (t.json line 1)',  # noqa: E501
        )
    ]


def test_go_atoi() -> None:
    assert go_atoi("+12") == 12 and go_atoi("-0") == 0
    for bad in ("", " 1", "1.0", "0x10", "1_000"):
        with pytest.raises(ValueError, match="invalid syntax"):
            go_atoi(bad)
    with pytest.raises(ValueError, match="value out of range"):
        go_atoi("9223372036854775808")


def test_the_first_failing_component_gives_the_build_error() -> None:
    doc = {
        "builders": [{"type": "file", "name": "f"}, {"type": "plan-test-builder", "name": "p"}],
        "provisioners": [{"type": "plan-test-provisioner", "fail": "prov broken"}],
    }
    p = plan(doc)
    assert details(p) == [
        # The builder's error hides the provisioner's (Packer's order).
        (
            "error",
            'Failed to prepare build: "f" (t.json line 1)',
            "1 error(s) occurred:\n\n* target required",
        ),
        (
            "error",
            'Failed to prepare build: "p" (t.json line 1)',
            "2 error(s) occurred:\n\n* prov broken\n* second problem",
        ),
    ]
    assert p.builds == [] and p.has_errors


def test_decoding_errors_are_prepare_errors() -> None:
    p = plan({"builders": [{"type": "file", "target": "t", "bogus": 1}]})
    assert details(p) == [
        (
            "error",
            'Failed to prepare build: "file" (t.json line 1)',
            "1 error occurred:\n\t* unknown configuration key: '\"bogus\"'\n\n",
        )
    ]


def test_warnings_come_after_a_successful_prepare() -> None:
    p = plan(
        {
            "builders": [
                {"type": "file", "target": "t"},
                {"type": "plan-test-builder", "warn": "careful"},
            ]
        }
    )
    assert details(p) == [
        (
            "warning",
            'Warning when preparing build: "file"',
            "Both source file and contents are blank; target will have no content",
        ),
        ("warning", 'Warning when preparing build: "plan-test-builder"', "careful"),
    ]
    assert len(p.builds) == 2 and not p.has_errors


def test_provisioner_overrides_merge_over_the_config_for_that_build() -> None:
    doc = {
        "builders": [
            {"type": "plan-test-builder", "name": "a"},
            {"type": "plan-test-builder", "name": "b"},
        ],
        "provisioners": [
            {"type": "plan-test-provisioner", "value": "base", "override": {"b": {"value": "over"}}}
        ],
    }
    by_name = {b.name: b for b in plan(doc).builds}
    assert by_name["a"].provisioners[0].instance.config.value == "base"
    assert by_name["b"].provisioners[0].instance.config.value == "over"


def test_configs_are_rendered_with_the_build_context() -> None:
    doc = {
        "variables": {"v": "V"},
        "builders": [
            {
                "type": "plan-test-builder",
                "name": "n-{{user `v`}}",
                "value": "{{build_name}}/{{build_type}}/{{user `v`}}/{{packer_version}}/"
                "{{shout `x`}}",
            }
        ],
        "provisioners": [
            {
                "type": "plan-test-provisioner",
                "value": "{{build `ID`}} {{build `SourceThing`}} {{ .Host }}",
            }
        ],
        "post-processors": [
            {"type": "plan-test-pp", "value": "{{build_name}} {{build `PackerRunUUID`}}"}
        ],
    }
    (build,) = plan(doc).builds
    assert build.builder.config.value == "n-V/plan-test-builder/V/1.6.6/X!"
    # Provisioners and post-processors see placeholders for the build data.
    assert build.provisioners[0].instance.config.value == (
        "{{.ID}} {{.SourceThing}} Build_Host. To set this dynamically in the Packer template, "
        "you must use the `build` function"
    )
    assert build.post_processors[0][0].instance.config.value == "n-V {{.PackerRunUUID}}"


def test_builder_only_functions_and_build_data_are_refused_elsewhere() -> None:
    p = plan({"builders": [{"type": "plan-test-builder", "value": "{{build `ID`}}"}]})
    assert (
        "Error validating build variable: the given variable ID will not be passed into your "
        "plugin." in p.diagnostics[0].detail
    )
    p = plan(
        {
            "builders": [{"type": "plan-test-builder"}],
            "provisioners": [{"type": "plan-test-provisioner", "value": "{{shout `x`}}"}],
        }
    )
    assert 'function "shout" not defined' in p.diagnostics[0].detail
    p = plan(
        {
            "builders": [{"type": "plan-test-builder"}],
            "provisioners": [{"type": "plan-test-provisioner", "value": "{{build `Nope`}}"}],
        }
    )
    assert (
        "error calling build: loaded data, but couldnt find Nope in it." in p.diagnostics[0].detail
    )


def test_secrets_come_from_sensitive_variables_and_secret_fields() -> None:
    doc = {
        "variables": {"pw": "s3cr3t", "other": "visible"},
        "sensitive-variables": ["pw"],
        "builders": [{"type": "plan-test-builder", "password": "builder-pass"}],
        "provisioners": [{"type": "plan-test-provisioner", "password": "{{user `other`}}-prov"}],
    }
    assert plan(doc).secrets == ["s3cr3t", "builder-pass", "visible-prov"]


def test_the_renderer_given_to_components_renders_build_data_late() -> None:
    renderer = BuildRenderer(
        build_name="b", build_type="t", user_variables={"u": "U"}, template_dir="/d"
    )
    assert renderer.render("{{build_name}} {{user `u`}} {{template_dir}}") == "b U /d"
    assert (
        renderer.render("{{build `ID`}} {{ .Path }}", data={"Path": "/p"}, generated={"ID": "i-1"})
        == "i-1 /p"
    )

"""Post-processor chains: artifact flow, keep_input_artifact rules, result order, errors."""

from __future__ import annotations

import asyncio

import pytest

from engine.doubles import Recorder, RecordingArtifact, RecordingPostProcessor, console, planned_pp
from imagesmith.engine.plan import PlannedPostProcessor
from imagesmith.engine.postprocess import ChainResult, go_files, keeps_input, run_chains
from imagesmith.errors import BuildError


def run(chains: list[list[PlannedPostProcessor]], rec: Recorder) -> tuple[ChainResult, str]:
    con, out = console()
    builder_artifact = RecordingArtifact(rec, "B", files=["out.txt"])
    result = asyncio.run(
        run_chains(
            chains,
            builder_artifact,
            ui=con.build_ui("f", 0),
            ui_for=lambda t: con.build_ui(f"f ({t})", 0),
        )
    )
    return result, out.getvalue()


def ids(result: ChainResult) -> list[str]:
    return [a.id for a in result.artifacts]


@pytest.mark.parametrize(
    ("default", "force", "user", "keeps"),
    [
        (True, False, None, True),
        (False, False, None, False),
        (False, False, True, True),
        (True, False, False, False),
        (True, True, False, True),  # manifest, checksum, shell-local ignore a user false
        (False, True, False, False),  # force only matters with a true default
        (True, True, True, True),
    ],
)
def test_keep_rules(default: bool, force: bool, user: bool | None, keeps: bool) -> None:
    pp = RecordingPostProcessor(Recorder(), "X", keep_default=default, force_keep=force)
    assert keeps_input(planned_pp(pp, keep=user)) is keeps


def test_no_chains_keeps_the_builder_artifact() -> None:
    rec = Recorder()
    result, out = run([], rec)
    assert ids(result) == ["B"]
    assert rec.events == [] and out == ""


def test_builder_artifact_destroyed_when_no_first_step_keeps_it() -> None:
    rec = Recorder()
    chain = [planned_pp(RecordingPostProcessor(rec, "C", keep_default=False))]
    result, _ = run([chain], rec)
    assert ids(result) == ["C"]
    assert rec.events == ["pp:C<-B", "destroy:B"]


def test_builder_artifact_kept_when_any_first_step_keeps_it() -> None:
    rec = Recorder()
    chains = [
        [planned_pp(RecordingPostProcessor(rec, "C1", keep_default=False))],
        [planned_pp(RecordingPostProcessor(rec, "C2", keep_default=False), keep=True)],
    ]
    result, _ = run(chains, rec)
    assert ids(result) == ["B", "C1", "C2"]
    assert not [e for e in rec.events if e.startswith("destroy")]


def test_passthrough_post_processor_lists_the_builder_artifact_twice() -> None:
    """Observed in Packer: file builder + manifest lists the file artifact twice."""
    rec = Recorder()
    chain = [planned_pp(RecordingPostProcessor(rec, None, passthrough=True), type_name="manifest")]
    result, out = run([chain], rec)
    assert ids(result) == ["B", "B"]
    assert out == "==> f: Running post-processor: manifest\n==> f (manifest): processing B\n"


def test_intermediate_kept_or_destroyed_and_result_order() -> None:
    rec = Recorder()
    chain = [
        planned_pp(RecordingPostProcessor(rec, "I1", keep_default=False)),
        planned_pp(RecordingPostProcessor(rec, "I2", keep_default=True)),  # keeps I1
        planned_pp(RecordingPostProcessor(rec, "I3", keep_default=False)),  # drops I2
    ]
    other = [planned_pp(RecordingPostProcessor(rec, "O1", keep_default=False))]
    result, _ = run([chain, other], rec)

    assert ids(result) == ["I1", "I3", "O1"]
    assert rec.events == [
        "pp:I1<-B",
        "pp:I2<-I1",
        "pp:I3<-I2",
        "destroy:I2",
        "pp:O1<-B",
        "destroy:B",
    ]


def test_failure_abandons_its_chain_others_run_and_errors_are_collected() -> None:
    rec = Recorder()
    chains = [
        [
            planned_pp(RecordingPostProcessor(rec, "A1")),
            planned_pp(RecordingPostProcessor(rec, "A2", fail="disk full")),
            planned_pp(RecordingPostProcessor(rec, "A3")),
        ],
        [planned_pp(RecordingPostProcessor(rec, "C1", fail="no such tag"))],
        [planned_pp(RecordingPostProcessor(rec, "D1"))],
    ]
    result, _ = run(chains, rec)

    assert "pp:A3<-A2" not in rec.events
    assert "pp:D1<-B" in rec.events
    assert result.errors == [
        "Post-processor failed: disk full",
        "Post-processor failed: no such tag",
    ]
    with pytest.raises(BuildError) as caught:
        result.raise_for_errors()
    assert str(caught.value) == (
        "2 error(s) occurred:\n\n"
        "* Post-processor failed: disk full\n"
        "* Post-processor failed: no such tag"
    )


def test_nil_artifact_silently_ends_the_chain() -> None:
    rec = Recorder()
    chain = [
        planned_pp(RecordingPostProcessor(rec, None, keep_default=False)),
        planned_pp(RecordingPostProcessor(rec, "never")),
    ]
    result, _ = run([chain], rec)
    assert ids(result) == []
    assert result.errors == []
    assert rec.events == ["pp:None<-B", "destroy:B"]


def test_running_messages_and_ui_target() -> None:
    rec = Recorder()
    chain = [
        planned_pp(RecordingPostProcessor(rec, None, passthrough=True), type_name="manifest"),
        planned_pp(
            RecordingPostProcessor(rec, None, passthrough=True), name="pp2", type_name="shell-local"
        ),
    ]
    _, out = run([chain], rec)
    assert out == (
        "==> f: Running post-processor: manifest\n"
        "==> f (manifest): processing B\n"
        "==> f: Running post-processor: pp2 (type shell-local)\n"
        "==> f (shell-local): processing B\n"
    )


def test_destroy_failure_is_an_error() -> None:
    rec = Recorder()
    con, _ = console()
    artifact = RecordingArtifact(rec, "B", files=["a b.txt", 'q"'])
    artifact.fail_destroy = True
    chain = [planned_pp(RecordingPostProcessor(rec, "C", keep_default=False))]
    result = asyncio.run(
        run_chains([chain], artifact, ui=con.build_ui("f", 0), ui_for=lambda t: con.build_ui(t, 0))
    )
    assert result.errors == [
        "Error destroying builder artifact: cannot delete B; "
        'bad artifact: []string{"a b.txt", "q\\""}'
    ]


def test_go_files() -> None:
    assert go_files([]) == "[]string{}"
    assert go_files(["x"]) == '[]string{"x"}'

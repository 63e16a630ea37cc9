"""The checksum and artifice post-processors, and the shell-local post-processor."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from components_local.helpers import build_info, file_artifact, make, null_artifact, ui
from imagesmith.engine.artifact import Artifact
from imagesmith.errors import BuildError, ConfigError
from imagesmith.plugins import PostProcessor
from imagesmith.postprocessors.artifice import ArtificePostProcessor, glob
from imagesmith.postprocessors.checksum import ChecksumPostProcessor
from imagesmith.postprocessors.shell_local import ShellLocalPostProcessor


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run_pp(
    cls: type[PostProcessor], raw: dict[str, Any], artifact: Artifact, name: str = "f1"
) -> tuple[Artifact | None, str]:
    pp = make(cls, raw, build_info(name, "file"))
    out_ui, out = ui(name)
    return asyncio.run(pp.post_process(out_ui, artifact)), out.getvalue()


def digest(kind: str, path: str) -> str:
    return hashlib.new(kind, Path(path).read_bytes()).hexdigest()


# --- checksum --------------------------------------------------------------------------


def test_default_md5_file_and_artifact() -> None:
    Path("out").mkdir()
    Path("out/f1.txt").write_text("hello")
    result, _ = run_pp(ChecksumPostProcessor, {}, file_artifact("out/f1.txt"))
    assert result is not None
    sums = "packer_f1_file_md5.checksum"
    assert Path(sums).read_text() == f"{digest('md5', 'out/f1.txt')}\tf1.txt\n"
    assert result.builder_id == "packer.post-processor.checksum"
    assert result.id == ""
    assert result.files == ["out/f1.txt", sums]
    assert result.string() == f"Created artifact from files: out/f1.txt, {sums}"


def test_types_output_template_and_appending() -> None:
    Path("a.bin").write_bytes(os.urandom(3000))
    Path("b.bin").write_bytes(os.urandom(5000))
    raw = {
        "checksum_types": "sha1,sha512",
        "output": "sums/{{.BuildName}}/{{.ChecksumType}}.{{.BuilderType}}",
    }
    result, _ = run_pp(ChecksumPostProcessor, raw, file_artifact("a.bin", "b.bin"))
    assert result is not None
    assert result.files == ["a.bin", "b.bin", "sums/f1/sha1.file", "sums/f1/sha512.file"]
    for kind in ("sha1", "sha512"):
        assert Path(f"sums/f1/{kind}.file").read_text() == (
            f"{digest(kind, 'a.bin')}\ta.bin\n{digest(kind, 'b.bin')}\tb.bin\n"
        )

    # A second run appends, and only files it created join the artifact.
    result, _ = run_pp(ChecksumPostProcessor, raw, file_artifact("a.bin"))
    assert result is not None and result.files == ["a.bin"]
    assert Path("sums/f1/sha1.file").read_text().count("a.bin") == 2


def test_destroy_removes_inputs_and_checksum_files() -> None:
    Path("a.bin").write_text("x")
    result, _ = run_pp(
        ChecksumPostProcessor, {"checksum_types": ["sha256"]}, file_artifact("a.bin")
    )
    assert result is not None
    asyncio.run(result.destroy())
    assert os.listdir(".") == []


def test_every_unknown_type_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        make(ChecksumPostProcessor, {"checksum_types": ["md5", "crc32", "sha3"]})
    assert caught.value.errors == [
        "Unrecognized checksum type: crc32",
        "Unrecognized checksum type: sha3",
    ]


def test_an_empty_type_list_writes_nothing() -> None:
    Path("a.bin").write_text("x")
    result, _ = run_pp(ChecksumPostProcessor, {"checksum_types": []}, file_artifact("a.bin"))
    assert result is not None and result.files == ["a.bin"]
    assert os.listdir(".") == ["a.bin"]


def test_no_files_means_no_checksum_files() -> None:
    result, _ = run_pp(ChecksumPostProcessor, {}, null_artifact())
    assert result is not None
    assert result.files == [] and result.string() == "Created artifact from files: "


def test_missing_input_file() -> None:
    with pytest.raises(BuildError) as caught:
        run_pp(ChecksumPostProcessor, {}, file_artifact("gone.bin"))
    assert str(caught.value) == (
        "unable to open file gone.bin: open gone.bin: no such file or directory"
    )


def test_output_syntax_is_checked_at_prepare() -> None:
    with pytest.raises(ConfigError) as caught:
        make(ChecksumPostProcessor, {"output": "{{.A"})
    assert str(caught.value) == "invalid 'output': template: root:1: unclosed action in:\n\n{{.A"


def test_output_may_use_the_artifacts_build_data() -> None:
    Path("a.bin").write_text("x")
    artifact = file_artifact("a.bin")
    artifact.generated_data = {"ID": "i-123"}
    result, _ = run_pp(ChecksumPostProcessor, {"output": "{{build `ID`}}.md5"}, artifact)
    assert result is not None and result.files == ["a.bin", "i-123.md5"]


# --- artifice --------------------------------------------------------------------------


def tree() -> None:
    Path("sub").mkdir()
    for name in ("a.txt", "b.txt", ".hidden.txt", "sub/c.txt", "sub/d.log"):
        Path(name).write_text(name)


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("*.txt", [".hidden.txt", "a.txt", "b.txt"]),
        ("./*.txt", [".hidden.txt", "a.txt", "b.txt"]),
        ("sub/*", ["sub/c.txt", "sub/d.log"]),
        ("*/c.txt", ["sub/c.txt"]),
        ("[ab].txt", ["a.txt", "b.txt"]),
        ("[^a].txt", ["b.txt"]),
        ("s?b/*.log", ["sub/d.log"]),
        (r"\a.txt", ["a.txt"]),
        ("a.txt", ["a.txt"]),
        ("missing.txt", []),
        ("nomatch*", []),
        ("[z-a]*", []),
    ],
)
def test_glob_matches_gos(pattern: str, matches: list[str]) -> None:
    tree()
    assert glob(pattern) == matches


@pytest.mark.parametrize("pattern", ["[", "[]a]", "a\\", "[a-]"])
def test_malformed_patterns(pattern: str) -> None:
    with pytest.raises(ValueError):
        glob(pattern)


def test_artifice_replaces_the_artifact() -> None:
    tree()
    Path("o.txt").write_text("built")
    result, out = run_pp(
        ArtificePostProcessor, {"files": ["*.txt", "sub/*.log", "none*"]}, file_artifact("o.txt")
    )
    assert result is not None
    files = [".hidden.txt", "a.txt", "b.txt", "o.txt", "sub/d.log"]
    assert out.splitlines() == [
        "==> f1: Discarding files from artifact: o.txt",
        f"==> f1: Using these artifact files: {', '.join(files)}",
    ]
    assert result.builder_id == "packer.post-processor.artifice"
    assert result.files == files and result.id == ""
    assert result.string() == f"Created artifact from files: {', '.join(files)}"
    asyncio.run(result.destroy())
    assert sorted(os.listdir(".")) == ["sub"] and os.listdir("sub") == ["c.txt"]


def test_artifice_says_nothing_about_an_input_without_files() -> None:
    Path("x").write_text("x")
    _, out = run_pp(ArtificePostProcessor, {"files": ["x"]}, null_artifact())
    assert out == "==> f1: Using these artifact files: x\n"


def test_artifice_needs_files() -> None:
    with pytest.raises(ConfigError) as caught:
        make(ArtificePostProcessor, {})
    assert str(caught.value) == "No files specified in artifice configuration"


def test_artifice_bad_pattern_is_an_error_not_a_crash() -> None:
    with pytest.raises(BuildError, match=r"^syntax error in pattern: \[$"):
        run_pp(ArtificePostProcessor, {"files": ["["]}, null_artifact())


# --- shell-local post-processor --------------------------------------------------------


def test_shell_local_pp_passes_the_artifact_through_with_its_data() -> None:
    artifact = null_artifact()
    result, out = run_pp(
        ShellLocalPostProcessor,
        {"inline": ['echo "$PACKER_BUILD_NAME {{build `ID`}}"']},
        artifact,
        name="n1",
    )
    assert result is artifact
    assert out.splitlines()[1] == "    n1: n1 Null"


def test_a_one_element_execute_command_runs_through_sh() -> None:
    _, out = run_pp(
        ShellLocalPostProcessor,
        {"inline": ["x"], "execute_command": "echo one {{.Vars}}"},
        null_artifact(),
        name="n1",
    )
    assert out.splitlines()[1] == "    n1: one PACKER_BUILDER_TYPE=file PACKER_BUILD_NAME=n1"


def test_shell_local_pp_failure() -> None:
    with pytest.raises(BuildError, match=r"^Script exited with non-zero exit status: 4\."):
        run_pp(ShellLocalPostProcessor, {"inline": ["exit 4"]}, null_artifact())


def test_shell_local_pp_lets_an_interrupt_through() -> None:
    pp = make(ShellLocalPostProcessor, {"inline": ["sleep 60"]}, build_info("n1", "null"))
    out_ui, _ = ui()

    async def scenario() -> None:
        task = asyncio.ensure_future(pp.post_process(out_ui, null_artifact()))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())

"""The file builder, run through ``imagesmith build`` as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from components_local.helpers import build_info
from fixtures.packer import Result, imagesmith
from imagesmith.builders.file import FileBuilder, FileConfig, MockCommunicator
from imagesmith.errors import ConfigError


def build(tmp_path: Path, template: dict[str, Any], *args: str) -> Result:
    (tmp_path / "t.json").write_text(json.dumps(template))
    return imagesmith("build", "-color=false", *args, "t.json", cwd=tmp_path)


def file_builder(**config: Any) -> dict[str, Any]:
    return {"type": "file", **config}


def test_content_is_written_silently_with_mode_0600(tmp_path: Path) -> None:
    result = build(tmp_path, {"builders": [file_builder(target="a/b/out.txt", content="hi")]})
    assert result.rc == 0, result.out
    target = tmp_path / "a/b/out.txt"
    assert target.read_text() == "hi"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o755 & ~_umask()
    assert result.out.splitlines()[0].startswith("Build 'file' finished after ")
    assert result.out.endswith("--> file: Stored file: a/b/out.txt\n")


def test_source_is_copied_with_messages(tmp_path: Path) -> None:
    (tmp_path / "src.bin").write_bytes(os.urandom(70000))
    result = build(tmp_path, {"builders": [file_builder(target="out.bin", source="src.bin")]})
    assert result.rc == 0, result.out
    assert result.out.splitlines()[:2] == [
        "==> file: Copying src.bin to out.bin",
        "==> file: Copied 70000 bytes",
    ]
    assert (tmp_path / "out.bin").read_bytes() == (tmp_path / "src.bin").read_bytes()
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o666 & ~_umask()


def test_an_existing_target_is_truncated_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("a much longer previous content")
    target.chmod(0o640)
    assert build(tmp_path, {"builders": [file_builder(target="out.txt", content="new")]}).rc == 0
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_missing_source_fails_the_build(tmp_path: Path) -> None:
    result = build(tmp_path, {"builders": [file_builder(target="out.txt", source="missing.txt")]})
    assert result.rc == 1
    assert "Build 'file' errored after " in result.out
    assert result.out.splitlines()[0].endswith(": open missing.txt: no such file or directory")
    assert "--> file: open missing.txt: no such file or directory" in result.out
    assert not (tmp_path / "out.txt").exists()


def test_empty_target_warns(tmp_path: Path) -> None:
    result = build(tmp_path, {"builders": [file_builder(target="empty.txt")]})
    assert result.rc == 0
    assert result.out.startswith(
        'Warning: Warning when preparing build: "file"\n\n'
        "Both source file and contents are blank; target will have no content\n"
    )
    assert (tmp_path / "empty.txt").read_bytes() == b""


@pytest.mark.parametrize(
    ("config", "errors"),
    [
        ({}, ["target required"]),
        (
            {"target": "x", "content": "a", "source": "b"},
            ["Cannot specify source file AND content"],
        ),
        (
            {"content": "a", "source": "b"},
            ["target required", "Cannot specify source file AND content"],
        ),
    ],
    ids=["no-target", "both", "all-wrong"],
)
def test_prepare_errors(config: dict[str, Any], errors: list[str]) -> None:
    builder = FileBuilder(FileConfig(**config), build_info("file", "file"))
    with pytest.raises(ConfigError) as caught:
        builder.prepare()
    assert caught.value.errors == errors


def test_communicator_key_is_unknown(tmp_path: Path) -> None:
    template = {"builders": [file_builder(target="x", content="y", communicator="none")]}
    result = build(tmp_path, template)
    assert result.rc == 1
    assert "unknown configuration key: '\"communicator\"'" in result.out


def test_provisioners_run_against_the_mock_communicator_without_build_data(
    tmp_path: Path,
) -> None:
    template = {
        "builders": [file_builder(target="out.txt", content="x")],
        "provisioners": [
            {
                "type": "shell-local",
                "inline": ['echo "id=[{{build `ID`}}] uuid=[{{build `PackerRunUUID`}}]"'],
            },
            {"type": "shell", "inline": ["this never runs anywhere"]},
        ],
    }
    result = build(tmp_path, template)
    assert result.rc == 0, result.out
    assert "    file: id=[<no value>] uuid=[<no value>]\n" in result.out
    assert "==> file: Provisioning with shell script: " in result.out


def test_a_failing_provisioner_fails_the_build_without_step_messages(tmp_path: Path) -> None:
    # Packer's file builder runs its provisioners directly: no "Provisioning step had
    # errors" line and no error-cleanup-provisioner, whatever -on-error says.
    template = {
        "builders": [file_builder(target="out.txt", content="x")],
        "provisioners": [{"type": "shell-local", "inline": ["exit 1"]}],
        "error-cleanup-provisioner": {"type": "shell-local", "inline": ["echo cleanup-ran"]},
    }
    for mode in ("cleanup", "abort"):
        result = build(tmp_path, template, f"-on-error={mode}")
        assert result.rc == 1
        assert "cleanup-ran" not in result.out
        assert "Provisioning step had errors" not in result.out
        assert (
            "Script exited with non-zero exit status: 1.Allowed exit codes are: [0]" in result.out
        )


def test_destroying_the_artifact_deletes_the_file(tmp_path: Path) -> None:
    template = {
        "builders": [file_builder(target="out.txt", content="x")],
        "post-processors": [{"type": "compress", "output": "out.tar.gz"}],
    }
    result = build(tmp_path, template)
    assert result.rc == 0, result.out
    assert not (tmp_path / "out.txt").exists()
    assert (tmp_path / "out.tar.gz").exists()


def test_mock_communicator_accepts_everything() -> None:
    async def use() -> int:
        comm = MockCommunicator()
        await comm.upload("/x", Path("/nonexistent"))
        await comm.upload_dir("/x", "/nonexistent")
        await comm.download_dir("/x", "/nonexistent")
        return await comm.run("anything at all")

    assert asyncio.run(use()) == 0


def _umask() -> int:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("Umask:"))
    return int(line.split()[1], 8)

"""The manifest post-processor: file shape, encoding, appending, -force, locking."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from components_local.helpers import build_info, file_artifact, make, null_artifact, ui
from fixtures.packer import imagesmith
from imagesmith.engine.artifact import Artifact
from imagesmith.engine.context import BuildInfo
from imagesmith.errors import BuildError
from imagesmith.postprocessors.manifest import ManifestPostProcessor, dumps_indent


def run_pp(
    raw: dict[str, Any], artifact: Artifact, info: BuildInfo | None = None
) -> Artifact | None:
    pp = make(ManifestPostProcessor, raw, info or build_info("n1", "null"))
    out_ui, _ = ui()
    return asyncio.run(pp.post_process(out_ui, artifact))


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_shape_key_order_and_encoding() -> None:
    info = build_info("n1", "null")
    artifact = null_artifact()
    assert run_pp({}, artifact, info) is artifact
    text = Path("packer-manifest.json").read_text()
    assert not text.endswith("\n")
    doc = json.loads(text)
    entry = doc["builds"][0]
    assert list(doc) == ["builds", "last_run_uuid"]
    assert list(entry) == [
        "name",
        "builder_type",
        "build_time",
        "files",
        "artifact_id",
        "packer_run_uuid",
        "custom_data",
    ]
    assert entry["name"] == "n1" and entry["builder_type"] == "null"
    assert entry["files"] is None and entry["custom_data"] is None
    assert entry["artifact_id"] == "Null"
    assert entry["packer_run_uuid"] == doc["last_run_uuid"] == info.run_uuid
    assert isinstance(entry["build_time"], int) and entry["build_time"] > 1_600_000_000
    assert text == dumps_indent(doc)  # re-encoding gives the same bytes: Go's layout
    assert text.startswith('{\n  "builds": [\n    {\n      "name": "n1",\n')


def test_files_sizes_and_strip_options(tmp_path: Path) -> None:
    Path("out").mkdir()
    Path("out/a.bin").write_bytes(b"x" * 1234)
    artifact = file_artifact("out/a.bin", "out/gone.bin")
    run_pp({"strip_path": True, "strip_time": True}, artifact)
    entry = json.loads(Path("packer-manifest.json").read_text())["builds"][0]
    assert "build_time" not in entry
    assert entry["files"] == [{"name": "a.bin", "size": 1234}, {"name": "gone.bin", "size": 0}]


def test_custom_data_is_rendered_with_the_artifacts_data() -> None:
    raw = {
        "custom_data": {
            "id": "{{build `ID`}}",
            "name": "{{build_name}}",
            "html": "<a & b>",
            "ctrl": "tab\there\x08",
        }
    }
    run_pp(raw, null_artifact())
    text = Path("packer-manifest.json").read_text()
    custom = json.loads(text)["builds"][0]["custom_data"]
    assert custom == {"ctrl": "tab\there\x08", "html": "<a & b>", "id": "Null", "name": "n1"}
    assert list(custom) == sorted(custom)  # Go writes map keys sorted
    assert '"html": "\\u003ca \\u0026 b\\u003e"' in text
    assert '"ctrl": "tab\\there\\u0008"' in text


def test_empty_custom_data_is_an_empty_object() -> None:
    run_pp({"custom_data": {}}, null_artifact())
    assert json.loads(Path("packer-manifest.json").read_text())["builds"][0]["custom_data"] == {}


def test_entries_accumulate_across_runs_and_force_resets() -> None:
    run_pp({"output": "m.json"}, null_artifact(), build_info("a", "null", run_uuid="run-1"))
    run_pp({"output": "m.json"}, null_artifact(), build_info("b", "null", run_uuid="run-2"))
    doc = json.loads(Path("m.json").read_text())
    assert [b["name"] for b in doc["builds"]] == ["a", "b"]
    assert doc["last_run_uuid"] == "run-2"

    # -force within the same run appends; from a new run it starts afresh.
    run_pp(
        {"output": "m.json"}, null_artifact(), build_info("c", "null", run_uuid="run-2", force=True)
    )
    assert len(json.loads(Path("m.json").read_text())["builds"]) == 3
    run_pp(
        {"output": "m.json"}, null_artifact(), build_info("d", "null", run_uuid="run-3", force=True)
    )
    doc = json.loads(Path("m.json").read_text())
    assert [b["name"] for b in doc["builds"]] == ["d"]


def test_existing_entries_are_read_as_packer_reads_them() -> None:
    Path("m.json").write_text(
        json.dumps(
            {
                "Builds": [
                    {
                        "NAME": "old",
                        "extra": "dropped",
                        "build_time": 0,
                        "files": [],
                        "custom_data": {"z": "1", "a": "2"},
                    }
                ],
                "last_run_uuid": "x",
                "other": 1,
            }
        )
    )
    run_pp({"output": "m.json", "strip_time": True}, null_artifact())
    doc = json.loads(Path("m.json").read_text())
    assert list(doc) == ["builds", "last_run_uuid"]
    old = doc["builds"][0]
    assert old == {
        "name": "old",
        "builder_type": "",
        "files": [],
        "artifact_id": "",
        "packer_run_uuid": "",
        "custom_data": {"a": "2", "z": "1"},
    }


def test_a_zero_length_file_counts_as_new() -> None:
    Path("m.json").write_bytes(b"")
    run_pp({"output": "m.json"}, null_artifact())
    assert len(json.loads(Path("m.json").read_text())["builds"]) == 1


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("garbage", "invalid character 'g' looking for beginning of value"),
        ("\n", "unexpected end of JSON input"),
        (
            '{"builds": 5}',
            "json: cannot unmarshal number into Go struct field ManifestFile.builds "
            "of type []manifest.Artifact",
        ),
        (
            '{"builds": [{"build_time": "x"}]}',
            "json: cannot unmarshal string into Go struct field Artifact.builds.build_time "
            "of type int64",
        ),
        ("[]", "json: cannot unmarshal array into Go value of type manifest.ManifestFile"),
    ],
    ids=["syntax", "blank", "builds-type", "field-type", "not-an-object"],
)
def test_unreadable_manifest(content: str, error: str) -> None:
    Path("m.json").write_text(content)
    with pytest.raises(BuildError) as caught:
        run_pp({"output": "m.json"}, null_artifact())
    assert str(caught.value) == f"Unable to parse content from m.json: {error}"
    assert Path("m.json").read_text() == content


def test_missing_directory_is_not_created() -> None:
    with pytest.raises(BuildError) as caught:
        run_pp({"output": "m/man.json"}, null_artifact())
    assert str(caught.value) == (
        "Unable to write m/man.json: open m/man.json: no such file or directory"
    )
    assert not Path("m").exists()


def test_new_file_mode_and_existing_mode_kept() -> None:
    run_pp({"output": "new.json"}, null_artifact())
    umask = _umask()
    assert stat.S_IMODE(os.stat("new.json").st_mode) == 0o664 & ~umask
    os.chmod("new.json", 0o600)
    run_pp({"output": "new.json"}, null_artifact())
    assert stat.S_IMODE(os.stat("new.json").st_mode) == 0o600
    assert sorted(os.listdir(".")) == ["new.json"], "no lock or temporary file left"


def test_parallel_builds_in_one_process_all_append() -> None:
    async def many() -> None:
        pps = [
            make(
                ManifestPostProcessor,
                {"output": "m.json"},
                build_info(f"b{i}", "null", run_uuid="r"),
            )
            for i in range(25)
        ]
        out_ui, _ = ui()
        await asyncio.gather(*(pp.post_process(out_ui, null_artifact()) for pp in pps))

    asyncio.run(many())
    names = sorted(b["name"] for b in json.loads(Path("m.json").read_text())["builds"])
    assert names == sorted(f"b{i}" for i in range(25))


def test_parallel_processes_all_append(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.path.insert(0, sys.argv[2])
        from components_local.helpers import build_info, make, null_artifact, ui
        from imagesmith.postprocessors.manifest import ManifestPostProcessor

        async def main():
            for i in range(15):
                info = build_info(f"{sys.argv[1]}-{i}", "null", run_uuid="r")
                pp = make(ManifestPostProcessor, {"output": "m.json"}, info)
                await pp.post_process(ui()[0], null_artifact())

        asyncio.run(main())
        """
    )
    tests_dir = str(Path(__file__).resolve().parent.parent)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, f"p{n}", tests_dir], cwd=tmp_path)
        for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    builds = json.loads(Path("m.json").read_text())["builds"]
    assert sorted(b["name"] for b in builds) == sorted(
        f"p{n}-{i}" for n in range(4) for i in range(15)
    )
    assert not Path("m.json.lock").exists()


def test_custom_data_is_rendered_again_at_post_process_time() -> None:
    # As in Packer: rendered at Prepare, then again with the artifact's data, so a
    # variable holding template text is evaluated at post-process time.
    info = build_info("n1", "null", user={"late": '{{ index "" 3 }}', "id": "{{.ID}}"})
    with pytest.raises(BuildError, match=r"^Error interpolating custom data: template: root:1:3"):
        run_pp({"custom_data": {"a": "{{user `late`}}"}}, null_artifact(), info)
    run_pp({"custom_data": {"a": "{{user `id`}}"}}, null_artifact(), info)
    custom = json.loads(Path("packer-manifest.json").read_text())["builds"][0]["custom_data"]
    assert custom == {"a": "Null"}


def test_three_builds_through_the_cli(tmp_path: Path) -> None:
    template = {
        "builders": [{"type": "null", "name": n, "communicator": "none"} for n in ("a", "b", "c")],
        "post-processors": [{"type": "manifest", "output": "m.json"}],
    }
    Path("t.json").write_text(json.dumps(template))
    assert imagesmith("build", "t.json", cwd=tmp_path).rc == 0
    assert imagesmith("build", "t.json", cwd=tmp_path).rc == 0
    doc = json.loads(Path("m.json").read_text())
    assert len(doc["builds"]) == 6
    assert len({b["packer_run_uuid"] for b in doc["builds"]}) == 2
    assert imagesmith("build", "-force", "t.json", cwd=tmp_path).rc == 0
    doc = json.loads(Path("m.json").read_text())
    assert sorted(b["name"] for b in doc["builds"]) == ["a", "b", "c"]
    assert {b["packer_run_uuid"] for b in doc["builds"]} == {doc["last_run_uuid"]}


def _umask() -> int:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("Umask:"))
    return int(line.split()[1], 8)

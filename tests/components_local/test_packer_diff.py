"""The local components against the reference ``packer`` 1.6.6, template for template.

Each case runs the same template with both programs, each in a directory of its own
holding the same input files, and compares exit codes, output lines and the files
produced: manifests (run ids and times aside), checksum files, archive contents.
"""

from __future__ import annotations

import gzip
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from engine.clirun import base_env, sort_summary
from engine.clirun import normalise as normalise_times
from fixtures.packer import PACKER, Result, imagesmith, normalise, packer

pytestmark = [
    pytest.mark.packer,
    pytest.mark.skipif(PACKER is None, reason="packer 1.6.6 is not installed"),
]

INPUTS = {
    "src.txt": b"source file\n",
    "big.bin": os.urandom(200_000) + b"abc" * 100_000,
    "script.sh": b'#!/bin/sh\necho "script: $1 $FOO"\nexit ${CODE:-0}\n',
    "noexec.sh": b"echo never\n",
}


def prepare(root: Path, template: dict[str, Any]) -> None:
    root.mkdir()
    for name, data in INPUTS.items():
        (root / name).write_bytes(data)
    (root / "script.sh").chmod(0o755)
    (root / "t.json").write_text(json.dumps(template))


def both(tmp_path: Path, template: dict[str, Any], *args: str) -> tuple[Result, Result]:
    prepare(tmp_path / "p", template)
    prepare(tmp_path / "i", template)
    argv = ("build", "-color=false", "-parallel-builds=1", *args, "t.json")
    return packer(*argv, cwd=tmp_path / "p"), imagesmith(*argv, cwd=tmp_path / "i")


def lines(result: Result, tmp_path: Path) -> list[str]:
    # Packer's summary of several builds comes in Go's random map order.
    text = sort_summary(normalise_times(normalise(result.out)))
    text = text.replace(str(tmp_path / "p"), "<dir>").replace(str(tmp_path / "i"), "<dir>")
    return text.splitlines()


def assert_same_output(tmp_path: Path, p: Result, i: Result, *, ordered: bool = True) -> None:
    assert i.rc == p.rc, f"packer:\n{p.out}\nimagesmith:\n{i.out}"
    pl, il = lines(p, tmp_path), lines(i, tmp_path)
    if ordered:
        assert il == pl
    else:
        # stdout and stderr of one script may interleave differently.
        assert sorted(il) == sorted(pl)


def manifest(path: Path) -> Any:
    doc = json.loads(path.read_text())
    for b in doc["builds"]:
        b["packer_run_uuid"] = "<uuid>"
        if "build_time" in b:
            b["build_time"] = "<time>"
    doc["last_run_uuid"] = "<uuid>"
    return doc


def tree(root: Path) -> dict[str, int]:
    """Every file under ``root`` with its mode."""
    return {
        str(p.relative_to(root)): p.stat().st_mode & 0o777
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_file_builder_provisioners_and_post_processors(tmp_path: Path) -> None:
    template = {
        "builders": [
            {"type": "file", "name": "content", "target": "out/deep/c.txt", "content": "hello"},
            {"type": "file", "name": "copy", "target": "out/copy.txt", "source": "src.txt"},
        ],
        "provisioners": [
            {
                "type": "shell-local",
                "inline": [
                    'echo "$FOO|$EMPTY|$PACKER_BUILD_NAME|$PACKER_BUILDER_TYPE|{{build `ID`}}"'
                ],
                "environment_vars": ["FOO=it's", "EMPTY="],
            },
            {"type": "shell-local", "script": "script.sh", "environment_vars": ["FOO=bar"]},
            {"type": "breakpoint", "disable": True, "note": "n"},
            {"type": "shell-local", "inline": ["echo skipped"], "only_on": ["windows"]},
        ],
        "post-processors": [
            [
                {"type": "checksum", "checksum_types": ["md5", "sha256"]},
                {"type": "manifest", "output": "m.json", "strip_time": True},
            ],
            {"type": "shell-local", "inline": ["echo pp $PACKER_BUILD_NAME"], "name": "pp2"},
            {"type": "manifest", "custom_data": {"name": "{{build_name}}", "x": "<&>"}},
        ],
    }
    p, i = both(tmp_path, template)
    assert_same_output(tmp_path, p, i)
    assert p.rc == 0
    assert tree(tmp_path / "i") == tree(tmp_path / "p")
    for name in ("m.json", "packer-manifest.json"):
        assert manifest(tmp_path / "i" / name) == manifest(tmp_path / "p" / name)
    for sums in ("packer_content_file_md5.checksum", "packer_copy_file_sha256.checksum"):
        assert (tmp_path / "i" / sums).read_text() == (tmp_path / "p" / sums).read_text()


def test_manifest_across_runs_and_force(tmp_path: Path) -> None:
    template = {
        "builders": [{"type": "null", "name": n, "communicator": "none"} for n in ("a", "b")],
        "post-processors": [{"type": "manifest", "output": "m.json", "strip_path": True}],
    }
    prepare(tmp_path / "p", template)
    prepare(tmp_path / "i", template)
    for args in ((), (), ("-force",), ()):
        argv = ("build", *args, "t.json")
        assert packer(*argv, cwd=tmp_path / "p").rc == 0
        assert imagesmith(*argv, cwd=tmp_path / "i").rc == 0
        p_doc, i_doc = manifest(tmp_path / "p/m.json"), manifest(tmp_path / "i/m.json")
        # Builds run in parallel: compare entries regardless of their order.
        assert sorted(map(json.dumps, i_doc["builds"])) == sorted(map(json.dumps, p_doc["builds"]))


ARCHIVES = ["c.tar", "c.zip", "c.gz", "c.tar.gz", "c.xz", "c.tar.xz", "c.lz4", "c.tar.lz4",
            "c.bgzf", "c.tar.bgzf", "c.foo", "c"]  # fmt: skip


def unpack(path: Path) -> dict[str, bytes]:
    """Member name -> content, whatever the archive format."""
    raw = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return {n: z.read(n) for n in z.namelist()}
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:6] == b"\xfd7zXZ\x00":
        raw = lzma.decompress(raw)
    elif raw[:4] == b"\x04\x22\x4d\x18":
        import lz4.frame

        raw = lz4.frame.decompress(raw)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            members = {}
            for m in tar.getmembers():
                f = tar.extractfile(m)
                assert f is not None
                members[m.name] = f.read()
                members[m.name + ":meta"] = f"{m.mode:o} {m.mtime} {m.uname}".encode()
            return members
    except tarfile.ReadError:
        return {"": raw}


@pytest.mark.parametrize("output", ARCHIVES)
def test_compress_formats(tmp_path: Path, output: str) -> None:
    template = {
        "builders": [{"type": "file", "target": "out/f1.bin", "source": "big.bin"}],
        "post-processors": [{"type": "compress", "output": f"res/{output}"}],
    }
    p, i = both(tmp_path, template)
    assert_same_output(tmp_path, p, i)
    assert unpack(tmp_path / "i/res" / output) == unpack(tmp_path / "p/res" / output)
    # keep_input_artifact defaults to false: the builder's file is gone in both.
    assert tree(tmp_path / "i/out") == tree(tmp_path / "p/out") == {}


@pytest.mark.parametrize(
    "pp",
    [
        {"type": "compress", "output": "x.gz"},  # two files, one codec
        {"type": "compress", "output": "x.gz", "compression_level": -5},
        {"type": "checksum", "output": "{{build `ID`}}.sum"},  # no build data
        {"type": "manifest", "output": "nodir/m.json"},
        {"type": "shell-local", "inline": ["exit 3"]},
        {"type": "artifice", "files": ["src.txt", "none*"]},
    ],
    ids=[
        "one-codec-two-files",
        "bad-level",
        "checksum-no-data",
        "manifest-no-dir",
        "pp-exit",
        "artifice",
    ],
)
def test_post_processor_outcomes(tmp_path: Path, pp: dict[str, Any]) -> None:
    template = {
        "builders": [{"type": "file", "target": "a.txt", "content": "a"}],
        "post-processors": [[{"type": "artifice", "files": ["a.txt", "src.txt"]}, pp]],
    }
    p, i = both(tmp_path, template)
    assert_same_output(tmp_path, p, i)


@pytest.mark.parametrize(
    "prov",
    [
        {"type": "shell-local", "inline": ["echo hi", "exit 5"]},
        {
            "type": "shell-local",
            "script": "script.sh",
            "environment_vars": ["CODE=3"],
            "valid_exit_codes": [0, 3],
        },
        {"type": "shell-local", "script": "script.sh", "environment_vars": ["CODE=3"]},
        {"type": "shell-local", "script": "noexec.sh"},
        {
            "type": "shell-local",
            "inline": ["x"],
            "execute_command": ["/nonexistent/sh", "{{.Script}}"],
        },
        {"type": "shell-local", "inline": ["echo $0"], "tempfile_extension": ".bash"},
        {"type": "shell-local", "command": "echo {{user `v`}} {{build `ID`}}"},
        {"type": "shell-local", "inline": ["echo x >&2"]},
    ],
    ids=[
        "exit-5",
        "allowed-3",
        "exit-3",
        "not-executable",
        "cannot-start",
        "extension",
        "command",
        "stderr",
    ],
)
def test_shell_local_outcomes(tmp_path: Path, prov: dict[str, Any]) -> None:
    template = {
        "variables": {"v": "value"},
        "builders": [{"type": "null", "communicator": "none"}],
        "provisioners": [prov],
    }
    p, i = both(tmp_path, template)
    assert_same_output(tmp_path, p, i)


@pytest.mark.parametrize(
    "template",
    [
        {"builders": [{"type": "file", "target": "x", "source": "missing.txt"}]},
        {"builders": [{"type": "file", "content": "a", "source": "b"}]},
        {"builders": [{"type": "file", "target": "x"}]},
        {"builders": [{"type": "null", "communicator": "none"}],
         "post-processors": [{"type": "checksum", "checksum_types": ["md5", "crc"]}]},
        {"builders": [{"type": "null", "communicator": "none"}],
         "post-processors": [{"type": "artifice"}]},
        {"builders": [{"type": "null", "communicator": "none"}],
         "provisioners": [{"type": "shell-local", "inline": "a", "only_on": ["plan9"]}]},
        {"builders": [{"type": "null", "communicator": "none"}],
         "provisioners": [{"type": "shell-local"}]},
        {"builders": [{"type": "null", "communicator": "none"}],
         "provisioners": [{"type": "shell-local", "scripts": ["a.sh"], "script": "b.sh",
                           "environment_vars": ["=x"]}]},
        {"builders": [{"type": "null", "communicator": "none"}],
         "post-processors": [{"type": "compress", "output": "{{.A"}]},
        {"builders": [{"type": "null", "communicator": "none"}],
         "provisioners": [{"type": "breakpoint", "bogus": 1}],
         "post-processors": [{"type": "manifest", "bogus": 1}]},
    ],
    ids=["missing-source", "content-and-source", "empty-warning", "bad-checksum-type",
         "artifice-no-files", "bad-only-on", "nothing-to-run", "many-errors", "bad-output",
         "unknown-keys"],
)  # fmt: skip
def test_validation_and_build_failures(tmp_path: Path, template: dict[str, Any]) -> None:
    p, i = both(tmp_path, template)
    assert_same_output(tmp_path, p, i)
    pv = packer("validate", "t.json", cwd=tmp_path / "p")
    iv = imagesmith("validate", "t.json", cwd=tmp_path / "i")
    assert (iv.rc, normalise(iv.out)) == (pv.rc, normalise(pv.out))


def test_breakpoint_without_a_terminal(tmp_path: Path) -> None:
    template = {
        "builders": [{"type": "null", "communicator": "none"}],
        "provisioners": [{"type": "breakpoint", "note": "stop"}],
    }
    prepare(tmp_path / "p", template)
    prepare(tmp_path / "i", template)
    assert PACKER is not None
    results = []
    for cmd, cwd in (
        ([PACKER], tmp_path / "p"),
        ([sys.executable, "-m", "imagesmith"], tmp_path / "i"),
    ):
        proc = subprocess.run(
            [*cmd, "build", "-color=false", "t.json"],
            cwd=cwd,
            env=base_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            start_new_session=True,  # no controlling terminal
            timeout=60,
        )
        results.append(Result(proc.returncode, proc.stdout, proc.stderr))
    assert_same_output(tmp_path, results[0], results[1])


@pytest.fixture(autouse=True)
def _no_stray_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    # The in-process imagesmith run must not pick up a shell-local temp dir from the
    # environment that packer (a subprocess) does not see.
    monkeypatch.delenv("TMPDIR", raising=False)
    assert shutil.which("sh")


def test_machine_readable_artifact_records(tmp_path: Path) -> None:
    template = {
        "builders": [{"type": "file", "name": "f", "target": "out/f.txt", "content": "x"}],
        "post-processors": [
            {"type": "checksum", "checksum_types": ["sha1"]},
            [
                {"type": "artifice", "files": ["out/*.txt", "src.txt"]},
                {"type": "compress", "output": "f.zip", "keep_input_artifact": True},
            ],
            {"type": "manifest", "output": "m.json"},
            {"type": "shell-local", "inline": ["echo done"]},
        ],
    }
    prepare(tmp_path / "p", template)
    prepare(tmp_path / "i", template)
    argv = ("build", "-machine-readable", "t.json")
    p = packer(*argv, cwd=tmp_path / "p")
    i = imagesmith(*argv, cwd=tmp_path / "i")
    assert i.rc == p.rc == 0, f"packer:\n{p.out}\nimagesmith:\n{i.out}"

    def records(result: Result) -> list[str]:
        out = normalise_times(normalise(result.out))
        return [line for line in out.splitlines() if ",artifact" in line]

    assert records(i) == records(p)
    assert records(p), "the comparison saw artifact records"


@pytest.mark.parametrize(
    "keys",
    [
        {"output": "x.tar", "algorithm": "xz"},
        {"output": "x.gz", "archive": "zip"},
        {"output": "x.tar", "algorithm": "bogus"},
        {"output": "x", "format": "zip"},
        {"output": "x.tar.gz", "compression_level": 12},
    ],
    ids=["algorithm-key", "archive-key", "unknown-algorithm", "format", "level-above-9"],
)
def test_compress_keys(tmp_path: Path, keys: dict[str, Any]) -> None:
    template = {
        "builders": [{"type": "file", "target": "out/f1.bin", "source": "big.bin"}],
        "post-processors": [{"type": "compress", **keys}],
    }
    p, i = both(tmp_path, template)
    assert_same_output(tmp_path, p, i)
    output = keys["output"]
    assert unpack_nested(tmp_path / "i" / output) == unpack_nested(tmp_path / "p" / output)


def unpack_nested(path: Path) -> dict[str, bytes]:
    """Like ``unpack``, also opening a zip inside a compressed stream."""
    members = unpack(path)
    inner = members.get("")
    if inner is not None and inner[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(inner)) as z:
            return {n: z.read(n) for n in z.namelist()}
    return members

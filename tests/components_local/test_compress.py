"""The compress post-processor: format detection, every format, limits, failures."""

from __future__ import annotations

import asyncio
import gzip
import io
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from components_local.helpers import build_info, file_artifact, make, ui
from imagesmith.engine.artifact import Artifact
from imagesmith.errors import BuildError
from imagesmith.postprocessors.compress import MAX_THREADS, CompressPostProcessor, cores, detect

lz4_frame = pytest.importorskip("lz4.frame")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def compress(raw: dict[str, Any], artifact: Artifact) -> tuple[Artifact | None, str]:
    pp = make(CompressPostProcessor, raw, build_info("f1", "file"))
    out_ui, out = ui("f1")
    return asyncio.run(pp.post_process(out_ui, artifact)), out.getvalue()


def payload(name: str = "data.bin", size: int = 300_000) -> bytes:
    # Half random, half repetitive: both the compressible and the stored paths run.
    data = os.urandom(size // 2) + b"packer " * (size // 14)
    Path(name).write_bytes(data)
    return data


@pytest.mark.parametrize(
    ("output", "fmt", "expected"),
    [
        ("x.tar", "", ("tar", "")),
        ("x.zip", "", ("zip", "")),
        ("x.gz", "", ("", "pgzip")),
        ("x.tar.gz", "", ("tar", "pgzip")),
        ("x.xz", "", ("", "xz")),
        ("x.tar.xz", "", ("tar", "xz")),
        ("x.lz4", "", ("", "lz4")),
        ("x.tar.lz4", "", ("tar", "lz4")),
        ("x.bgzf", "", ("", "bgzf")),
        ("x.tar.bgzf", "", ("tar", "bgzf")),
        ("x.foo", "", ("tar", "pgzip")),
        ("x", "", ("tar", "pgzip")),
        ("x.TAR.GZ", "", ("tar", "pgzip")),  # upper case is unknown to Packer
        ("x.ZIP", "", ("tar", "pgzip")),
        ("x.tar.zip", "", ("zip", "")),
        ("v1.2/x", "", ("tar", "pgzip")),
        ("x", "zip", ("zip", "")),
        ("x", "tar.xz", ("tar", "xz")),
        ("packer_{{.BuildName}}_{{.BuilderType}}", "", ("tar", "pgzip")),
    ],
)
def test_detection(output: str, fmt: str, expected: tuple[str, str]) -> None:
    assert detect(output, fmt) == expected


@pytest.mark.parametrize(
    ("output", "keys", "expected"),
    [
        ("x.tar", {"algorithm": "xz"}, ("tar", "xz")),
        ("x.gz", {"archive": "zip"}, ("zip", "pgzip")),
        ("x.tar.gz", {"archive": "zip"}, ("tar", "pgzip")),
        ("x.foo", {"archive": "zip", "algorithm": "xz"}, ("tar", "pgzip")),
    ],
)
def test_packers_archive_and_algorithm_keys(
    output: str, keys: dict[str, str], expected: tuple[str, str]
) -> None:
    # Packer's decoder accepts its derived fields as keys; detection overrides them
    # only in some cases. Kept for the same results.
    assert detect(output, "", keys.get("archive", ""), keys.get("algorithm", "")) == expected


def test_zip_inside_gzip_from_the_archive_key() -> None:
    data = payload()
    compress({"output": "o.gz", "archive": "zip"}, file_artifact("data.bin"))
    with zipfile.ZipFile(io.BytesIO(gzip.decompress(Path("o.gz").read_bytes()))) as z:
        assert z.read("data.bin") == data


def read_tar(path: str, opener: Any = None) -> dict[str, bytes]:
    raw = Path(path).read_bytes()
    data = opener(raw) if opener else raw
    assert data[257:265] == b"ustar  \0", "GNU format, as Packer writes it"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        out = {}
        for m in tar.getmembers():
            assert m.mtime == 0
            f = tar.extractfile(m)
            assert f is not None
            out[m.name] = f.read()
        return out


@pytest.mark.parametrize(
    ("suffix", "opener", "algorithm"),
    [
        ("tar", None, "no compression"),
        ("tar.gz", gzip.decompress, "pgzip"),
        ("tar.xz", lzma.decompress, "xz"),
        ("tar.lz4", lz4_frame.decompress, "lz4"),
        ("tar.bgzf", gzip.decompress, "bgzf"),
    ],
)
def test_tarballs(suffix: str, opener: Any, algorithm: str) -> None:
    a = payload("a.bin")
    b = payload("sub/b.bin") if Path("sub").mkdir() is None else b""
    result, out = compress({"output": f"res/out.{suffix}"}, file_artifact("a.bin", "sub/b.bin"))
    target = f"res/out.{suffix}"
    assert read_tar(target, opener) == {"a.bin": a, "b.bin": b}
    lines = out.splitlines()
    if algorithm == "xz":
        expected = f"Using xz compression with 1 core for {target} (library does not support MT)"
        assert lines[0] == f"==> f1: {expected}"
    elif algorithm != "no compression":
        assert (
            lines[0] == f"==> f1: Using {algorithm} compression with {cores()} cores for {target}"
        )
    assert lines[-2:] == [
        f"==> f1: Tarring {target} with {algorithm}",
        f"==> f1: Archive {target} completed",
    ]
    assert result is not None
    assert result.builder_id == "packer.post-processor.compress" and result.id == ""
    assert result.files == [target]
    assert result.string() == f"compressed artifacts in: {target}"


@pytest.mark.parametrize(
    ("suffix", "opener"),
    [
        ("gz", gzip.decompress),
        ("xz", lzma.decompress),
        ("lz4", lz4_frame.decompress),
        ("bgzf", gzip.decompress),
    ],
)
def test_single_files(suffix: str, opener: Any) -> None:
    data = payload()
    _, out = compress({"output": f"out.{suffix}"}, file_artifact("data.bin"))
    assert opener(Path(f"out.{suffix}").read_bytes()) == data
    name = "pgzip" if suffix == "gz" else suffix
    assert f"==> f1: Archiving data.bin with {name}" in out


def test_zip_keeps_the_paths_as_given() -> None:
    Path("out").mkdir()
    data = payload("out/f1.txt")
    _, out = compress({"output": "o.zip"}, file_artifact("out/f1.txt"))
    with zipfile.ZipFile("o.zip") as z:
        assert z.namelist() == ["out/f1.txt"]
        assert z.read("out/f1.txt") == data
        assert z.infolist()[0].compress_type == zipfile.ZIP_DEFLATED
    assert out.splitlines() == ["==> f1: Zipping o.zip", "==> f1: Archive o.zip completed"]


def test_the_gzip_stream_is_one_standard_member() -> None:
    data = payload(size=5_000_000)  # several blocks, so several threads took part
    compress({"output": "o.gz", "compression_level": 9}, file_artifact("data.bin"))
    raw = Path("o.gz").read_bytes()
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert d.decompress(raw) == data
    assert d.eof and d.unused_data == b"", "a single gzip member, nothing after it"
    if shutil.which("gzip"):
        subprocess.run(["gzip", "-t", "o.gz"], check=True)


def test_bgzf_blocks_follow_the_sam_specification() -> None:
    data = payload(size=400_000)
    compress({"output": "o.bgzf"}, file_artifact("data.bin"))
    raw = Path("o.bgzf").read_bytes()
    pos, pieces = 0, []
    while pos < len(raw):
        head = raw[pos : pos + 18]
        assert head[:4] == b"\x1f\x8b\x08\x04"
        xlen, si1, si2, slen, bsize = struct.unpack("<HBBHH", head[10:18])
        assert (xlen, si1, si2, slen) == (6, 66, 67, 2)
        block = raw[pos : pos + bsize + 1]
        assert len(block) <= 65536
        crc, isize = struct.unpack("<II", block[-8:])
        piece = zlib.decompress(block[18:-8], -15)
        assert zlib.crc32(piece) == crc and len(piece) == isize
        pieces.append(piece)
        pos += bsize + 1
    assert pieces[-1] == b"", "ends with the empty EOF block"
    assert b"".join(pieces) == data


def test_one_codec_takes_one_file() -> None:
    payload("a.bin")
    payload("b.bin")
    with pytest.raises(BuildError) as caught:
        compress({"output": "o.gz"}, file_artifact("a.bin", "b.bin"))
    assert str(caught.value) == (
        "Can only have 1 input file when not using tar/zip. Found 2 files: [a.bin b.bin]"
    )
    assert not Path("o.gz").exists()


def test_compression_levels() -> None:
    data = payload()
    compress({"output": "o.gz", "compression_level": 12}, file_artifact("data.bin"))
    assert gzip.decompress(Path("o.gz").read_bytes()) == data
    compress({"output": "h.gz", "compression_level": -2}, file_artifact("data.bin"))
    assert gzip.decompress(Path("h.gz").read_bytes()) == data
    compress({"output": "o.lz4", "compression_level": 9}, file_artifact("data.bin"))
    assert lz4_frame.decompress(Path("o.lz4").read_bytes()) == data
    # xz ignores the level, as Packer's library does.
    compress({"output": "o.xz", "compression_level": -7}, file_artifact("data.bin"))
    with pytest.raises(BuildError) as caught:
        compress({"output": "bad.gz", "compression_level": -3}, file_artifact("data.bin"))
    assert str(caught.value) == (
        "error creating pgzip writer: Invalid compression level. Expected an integer from -1 to 9."
    )
    assert not Path("bad.gz").exists()


def test_output_rendered_with_build_name_and_type() -> None:
    payload()
    result, _ = compress({"format": "tar"}, file_artifact("data.bin"))
    assert result is not None and result.files == ["packer_f1_file"]
    assert tarfile.is_tarfile("packer_f1_file")


def test_missing_input() -> None:
    with pytest.raises(BuildError) as caught:
        compress({"output": "o.tar"}, file_artifact("gone.bin"))
    assert str(caught.value) == (
        "Error creating tar: Unable to read file gone.bin: open gone.bin: no such file or directory"
    )
    assert not Path("o.tar").exists()


def test_files_are_streamed_not_loaded() -> None:
    # Each block in flight holds about 3 MiB (input, window, output); a few more
    # buffers besides. The file is several times larger than that bound.
    bound = (min(cores(), MAX_THREADS) + 3) * (3 << 20) + (4 << 20)
    size = max(48 << 20, 3 * bound) >> 20 << 20
    with open("big.bin", "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 19) + bytes(1 << 19))
    tracemalloc.start()
    try:
        compress({"output": "o.tar.gz", "compression_level": 1}, file_artifact("big.bin"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < bound, f"peak {peak} bytes for a {size}-byte file"


def test_cancelling_removes_the_partial_archive() -> None:
    with open("big.bin", "wb") as f:
        for _ in range(96):
            f.write(os.urandom(1 << 20))
    pp = make(CompressPostProcessor, {"output": "o.xz"}, build_info("f1", "file"))
    out_ui, _ = ui("f1")

    async def scenario() -> None:
        task = asyncio.ensure_future(pp.post_process(out_ui, file_artifact("big.bin")))
        while not Path("o.xz").exists() or Path("o.xz").stat().st_size == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert not Path("o.xz").exists()


def test_missing_lz4_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    payload()
    monkeypatch.setitem(sys.modules, "lz4", None)
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    with pytest.raises(BuildError, match=r"needs the Python package 'lz4'.*pip install lz4"):
        compress({"output": "o.lz4"}, file_artifact("data.bin"))
    assert not Path("o.lz4").exists()


def test_destroy_removes_the_archive() -> None:
    payload()
    result, _ = compress({"output": "o.tar"}, file_artifact("data.bin"))
    assert result is not None
    asyncio.run(result.destroy())
    assert not Path("o.tar").exists()

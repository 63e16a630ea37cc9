"""The tar stream writer: what it packs must unpack to the same tree."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from imagesmith.builders.docker.tarstream import Owner, _ustar_header, file_entry, tree_entries


def make_tree(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_bytes(b"hello")
    (root / "top.sh").write_bytes(b"#!/bin/sh\n")
    (root / "top.sh").chmod(0o750)
    long_dir = root / ("d" * 90) / ("e" * 90)
    long_dir.mkdir(parents=True)
    (long_dir / ("n" * 120)).write_bytes(b"long")
    (root / "unicodé.txt").write_bytes(b"u")
    os.symlink("top.sh", root / "link")


def test_tree_round_trips_with_owner_and_modes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    data = b"".join(tree_entries(str(src), "opt/src", Owner(0, 0)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile(members["opt/src/a/b/f.txt"]).read() == b"hello"  # type: ignore[union-attr]
    assert members["opt/src"].isdir()
    assert members["opt/src/top.sh"].mode == 0o750
    assert members["opt/src/link"].issym() and members["opt/src/link"].linkname == "top.sh"
    assert f"opt/src/{'d' * 90}/{'e' * 90}/{'n' * 120}" in members
    assert "opt/src/unicodé.txt" in members
    assert {m.uid for m in members.values()} == {0}


def test_directories_come_first_and_again_last_deepest_first(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    data = b"".join(tree_entries(str(tmp_path / "src"), "dst", Owner()))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    once = list(dict.fromkeys(m.name for m in members if m.isdir()))
    assert names[0] == "dst" and names.index("dst/a") < names.index("dst/a/b/f.txt")
    # Repeated after every file, children before their parents, the root last.
    tail = names[-len(once) :]
    assert sorted(tail) == sorted(once) and tail[-1] == "dst"
    assert tail.index("dst/a/b") < tail.index("dst/a")
    assert all(m.isdir() for m in members[-len(once) :])
    assert len(names) == len(set(names)) + len(once)  # nothing else twice


def test_contents_only_leaves_out_the_root_entry(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    data = b"".join(tree_entries(str(tmp_path / "src"), "dst", Owner(), root_header=False))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert "dst" not in names and "dst/top.sh" in names


def test_local_owner_is_kept_when_asked(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    data = b"".join(tree_entries(str(tmp_path / "src"), None, Owner(None, None)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember("top.sh")
    st = (tmp_path / "src" / "top.sh").stat()
    assert (member.uid, member.gid) == (st.st_uid, st.st_gid)


def test_single_file_entry_streams_its_bytes() -> None:
    seen: list[int] = []
    payload = os.urandom(200_000)
    data = b"".join(
        file_entry("x.bin", io.BytesIO(payload), len(payload), 0o600, Owner(), seen.append)
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember("x.bin")
        assert member.mode == 0o600
        assert tar.extractfile(member).read() == payload  # type: ignore[union-attr]
    assert sum(seen) == len(payload)


@pytest.mark.parametrize(
    ("name", "kind", "link", "size"),
    [("a/b.txt", tarfile.REGTYPE, "", 5), ("d/", tarfile.DIRTYPE, "", 0),
     ("l", tarfile.SYMTYPE, "../x", 0), (f"{'p' * 120}/{'n' * 99}", tarfile.REGTYPE, "", 1)],
)  # fmt: skip
def test_packed_headers_are_the_ones_tarfile_writes(
    name: str, kind: bytes, link: str, size: int
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, size
    info.mode, info.uid, info.gid, info.mtime = 0o754, 7, 8, 1_700_000_000
    info.uname = info.gname = ""
    ours = _ustar_header(name, info.mode, 7, 8, size, info.mtime, kind, link)
    assert ours == info.tobuf(format=tarfile.USTAR_FORMAT)

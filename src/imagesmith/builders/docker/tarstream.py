"""Tar streams built on the fly, for copying files into a container through the API.

``tarfile.add`` looks up user and group names for every file, which makes a 20,000-file
tree take over a second to pack; these generators stat each entry once, pack plain
ustar headers directly (``TarInfo.tobuf`` only for names that need PAX records), read
each file with one ``os.read``, and yield chunks of about 256 KiB that an HTTP request
sends as they come (nothing is compressed: the daemon is local, and gzip would cost
more CPU than the bytes it saves on a socket).
"""

from __future__ import annotations

import os
import stat
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 16
BLOCK = tarfile.BLOCKSIZE
_ZEROS = b"\0" * BLOCK


@dataclass(frozen=True)
class Owner:
    """Owner written into every header; ``None`` keeps each local file's own ids."""

    uid: int | None = 0
    gid: int | None = 0


def _header(info: tarfile.TarInfo) -> bytes:
    fast = _ustar_header(
        info.name, info.mode, info.uid, info.gid, info.size, info.mtime, info.type, info.linkname
    )
    if fast is not None:
        return fast
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


_MAX_OCTAL_11 = 8**11 - 1
_MAX_OCTAL_7 = 8**7 - 1
_MAGIC_AND_NAMES = b"ustar\x0000" + b"\0" * 80


def _ustar_header(
    name: str, mode: int, uid: int, gid: int, size: int, mtime: float, kind: bytes, link: str
) -> bytes | None:
    """A plain ustar header packed directly (about five times faster than ``tobuf``), or
    None when the entry needs PAX records (long or non-ASCII names, big numbers)."""
    if not (name.isascii() and link.isascii()) or len(link) > 100:
        return None
    if size > _MAX_OCTAL_11 or uid > _MAX_OCTAL_7 or gid > _MAX_OCTAL_7 or mtime < 0:
        return None
    prefix = ""
    if len(name) > 100:
        cut = name.rfind("/", 0, 156)
        if cut <= 0 or len(name) - cut - 1 > 100:
            return None
        prefix, name = name[:cut], name[cut + 1 :]
    head = b"".join(
        (
            name.encode().ljust(100, b"\0"),
            b"%07o\0%07o\0%07o\0%011o\0%011o\0        "
            % (mode & 0o7777, uid, gid, size, min(int(mtime), _MAX_OCTAL_11)),
            kind,
            link.encode().ljust(100, b"\0"),
            _MAGIC_AND_NAMES,
            prefix.encode().ljust(155, b"\0"),
            b"\0" * 12,
        )
    )
    checksum = b"%06o\0 " % sum(head)
    return head[:148] + checksum + head[156:]


def _padding(size: int) -> bytes:
    rest = size % BLOCK
    return b"\0" * (BLOCK - rest) if rest else b""


def _info(name: str, st: os.stat_result, owner: Owner) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.uid = st.st_uid if owner.uid is None else owner.uid
    info.gid = st.st_gid if owner.gid is None else owner.gid
    return info


def file_entry(
    name: str,
    src: BinaryIO,
    size: int,
    mode: int,
    owner: Owner,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """One regular file read from ``src`` (``size`` bytes), then the end-of-archive."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, int(time.time())
    info.uid, info.gid = owner.uid or 0, owner.gid or 0
    yield _header(info)
    left = size
    while left > 0:
        chunk = src.read(min(CHUNK, left))
        if not chunk:
            raise OSError(f"source ended {left} bytes short of its announced size {size}")
        left -= len(chunk)
        if progress is not None:
            progress(len(chunk))
        yield chunk
    yield _padding(size)
    yield b"\0" * (2 * BLOCK)


def tree_entries(
    root: str,
    arcname: str | None,
    owner: Owner,
    progress: Callable[[int], None] | None = None,
    *,
    root_header: bool = True,
) -> Iterator[bytes]:
    """Everything under local directory ``root``, stored under ``arcname/`` (bare names
    when ``arcname`` is None). ``root_header=False`` leaves out the entry for ``root``
    itself, so an existing destination keeps its own mode and owner.

    Each directory's entry comes before its contents and again at the end, deepest
    first: busybox's ``tar`` sets a directory's time when it creates it, and filling it
    then changes that time; the repeated entry sets it last, as the daemon and GNU tar
    do on their own."""
    buf: list[bytes] = []
    dirs: list[bytes] = []
    size = 0

    def flush() -> Iterator[bytes]:
        nonlocal size
        if buf:
            yield b"".join(buf)
            buf.clear()
            size = 0

    fixed_uid, fixed_gid = owner.uid, owner.gid

    def header(child: str, st: os.stat_result, size: int, kind: bytes, link: str = "") -> bytes:
        uid = st.st_uid if fixed_uid is None else fixed_uid
        gid = st.st_gid if fixed_gid is None else fixed_gid
        mode = stat.S_IMODE(st.st_mode)
        fast = _ustar_header(child, mode, uid, gid, size, st.st_mtime, kind, link)
        if fast is not None:
            return fast
        info = _info(child, st, owner)
        info.size, info.type, info.linkname = size, kind, link
        return _header(info)

    def walk(path: str, name: str | None) -> Iterator[bytes]:
        nonlocal size
        with os.scandir(path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            child = entry.name if name is None else f"{name}/{entry.name}"
            st = entry.stat(follow_symlinks=False)
            kind = st.st_mode & 0o170000
            if kind == stat.S_IFREG:
                length = st.st_size
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    data = os.read(fd, length) if length else b""
                    while len(data) < length:  # a short read: large files, some filesystems
                        more = os.read(fd, length - len(data))
                        if not more:
                            raise OSError(f"{entry.path} changed size while it was being read")
                        data += more
                finally:
                    os.close(fd)
                buf.append(header(child, st, length, tarfile.REGTYPE))
                buf.append(data)
                if length % BLOCK:
                    buf.append(_ZEROS[: BLOCK - length % BLOCK])
                size += length
                if progress is not None:
                    progress(length)
            elif kind == stat.S_IFDIR:
                dirs.append(header(child, st, 0, tarfile.DIRTYPE))
                buf.append(dirs[-1])
                yield from walk(entry.path, child)
            elif kind == stat.S_IFLNK:
                buf.append(header(child, st, 0, tarfile.SYMTYPE, os.readlink(entry.path)))
            else:
                continue  # sockets, fifos, devices: not copied, as rsync without -D
            size += BLOCK
            if size >= CHUNK * 4:
                yield from flush()

    if arcname is not None and root_header:
        info = _info(arcname, os.stat(root), owner)
        info.type = tarfile.DIRTYPE
        dirs.append(_header(info))
        buf.append(dirs[-1])
    yield from walk(root, arcname)
    buf.extend(reversed(dirs))
    buf.append(b"\0" * (2 * BLOCK))
    yield from flush()

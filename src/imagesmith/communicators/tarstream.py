"""A fast, streaming ustar writer for directory uploads.

``tarfile`` spends most of its time building headers in pure Python (about 1.2 s for
20,000 small files here, four times GNU tar). This writer packs the few header fields
a remote ``tar -x`` needs and yields the archive in blocks, reading large files in
chunks so nothing is held whole in memory.

What goes into the headers is chosen to give the result Packer's scp upload gives:
owner 0/0 without names (the extracting user owns the files), mtime "now" (scp
without ``-p`` keeps no times), file modes masked by the remote umask, directory
modes exact, symbolic links followed.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator

BLOCK = 512
CHUNK = 256 * 1024

# GNU long-name record for paths that do not fit ustar's name/prefix fields.
_LONGLINK = b"././@LongLink"


def _header(
    name: bytes, mode: int, size: int, mtime: int, typeflag: bytes, link: bytes = b""
) -> bytes:
    prefix = b""
    if len(name) > 100:
        cut = name.rfind(b"/", 0, 156)
        if cut > 0 and len(name) - cut - 1 <= 100:
            prefix, name = name[:cut], name[cut + 1 :]
        else:
            long = name + b"\0"
            record = _header(_LONGLINK, 0, len(long), mtime, b"L")
            return (
                record
                + long
                + _pad(len(long))
                + _header(name[:100], mode, size, mtime, typeflag, link)
            )
    if len(link) > 100:
        long = link + b"\0"
        record = _header(_LONGLINK, 0, len(long), mtime, b"K")
        return (
            record + long + _pad(len(long)) + _header(name, mode, size, mtime, typeflag, link[:100])
        )
    h = bytearray(BLOCK)
    h[0 : len(name)] = name
    h[100:108] = b"%07o\0" % mode
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % mtime
    h[148:156] = b"        "
    h[156:157] = typeflag
    h[157 : 157 + len(link)] = link
    h[257:265] = b"ustar\x0000"
    h[345 : 345 + len(prefix)] = prefix
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def _pad(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def tar_stream(root: str, arcname: str, *, umask: int = 0o022) -> Iterator[bytes]:
    """Yield a ustar archive of the tree at ``root`` in blocks of about ``CHUNK`` bytes,
    its entries under ``arcname`` (``""`` puts the contents at the top level)."""
    parts: list[bytes] = []
    size = 0
    for piece in _pieces(root, arcname, umask):
        parts.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield parts[0] if len(parts) == 1 else b"".join(parts)
            parts.clear()
            size = 0
    if parts:
        yield b"".join(parts)


def _pieces(root: str, arcname: str, umask: int) -> Iterator[bytes]:
    now = int(time.time())
    top = os.fsencode(arcname.strip("/"))
    root_st = os.stat(root)
    if top:
        yield _header(top + b"/", stat.S_IMODE(root_st.st_mode), 0, now, b"5")
    # Symbolic links are followed, as Packer's scp upload does; the directories on the
    # current path are remembered so that a link back up cannot loop forever.
    stack = [(root, top, frozenset({(root_st.st_dev, root_st.st_ino)}))]
    while stack:
        directory, arc, ancestors = stack.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            try:
                st = entry.stat()
            except FileNotFoundError:
                raise OSError(f"{entry.path}: broken symbolic link") from None
            name = (arc + b"/" if arc else b"") + os.fsencode(entry.name)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    raise OSError(f"{entry.path}: symbolic link loop")
                yield _header(name + b"/", mode, 0, now, b"5")
                subdirs.append((entry.path, name, ancestors | {key}))
            elif stat.S_ISREG(st.st_mode):
                if entry.is_symlink():
                    mode = 0o644  # what Packer's scp upload gives a linked file
                yield from _file(entry.path, name, mode & ~umask, now)
            # Sockets, fifos and devices are skipped, as scp skips them.
        # Depth-first in name order, like scp -r.
        stack.extend(reversed(subdirs))
    yield b"\0" * (BLOCK * 2)


def _file(path: str, name: bytes, mode: int, mtime: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        yield _header(name, mode, size, mtime, b"0")
        left = size
        while left > 0:
            data = f.read(min(CHUNK, left))
            if not data:
                # The file shrank while we read it: the header promised `size` bytes.
                data = b"\0" * min(CHUNK, left)
            left -= len(data)
            yield data
        yield _pad(size)

"""``compress`` post-processor: archive and/or compress the artifact's files.

The format comes from the last extensions of ``output`` (or of ``output`` plus
``.<format>``), as Packer 1.6.6 reads them: ``.tar``, ``.zip``; ``.gz``, ``.xz``,
``.lz4``, ``.bgzf`` compress a single file, and after ``.tar`` a tarball; anything
else is a gzipped tarball. Only lowercase extensions count, as in Packer.

Everything is streamed: no file is ever held in memory. gzip and BGZF compress blocks
on every core (up to ``MAX_THREADS``; stdlib ``zlib`` releases the GIL), producing one
ordinary gzip member (gzip) or independent BGZF blocks per the SAM specification,
which any gzip reader accepts; stretches that look already compressed are stored
rather than deflated, as Packer's Go compressors skip them. zip, lz4 and xz run on one
core, as in Packer (lz4 is faster than the disk anyway).

Differences from Packer, on purpose: a partial archive is removed when compression
fails or is interrupted, the gzip header carries no timestamp (Packer's held a
garbage one), and lz4 needs the ``lz4`` Python package, reported by name if missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import lzma
import os
import re
import struct
import tarfile
import threading
import zipfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar

from imagesmith.config.fields import opt
from imagesmith.engine.artifact import Artifact
from imagesmith.errors import BuildError
from imagesmith.golang import format_list
from imagesmith.plugins import PostProcessor
from imagesmith.provisioners.localshell import check_syntax, go_os_error

if TYPE_CHECKING:
    from imagesmith.ui.base import Ui

BUILDER_ID = "packer.post-processor.compress"
DEFAULT_OUTPUT = "packer_{{.BuildName}}_{{.BuilderType}}"
EXTENSIONS = {"tar": "tar", "zip": "zip", "gz": "pgzip", "lz4": "lz4", "bgzf": "bgzf", "xz": "xz"}
BAD_LEVEL = "Invalid compression level. Expected an integer from -1 to 9."
CHUNK = 1 << 20
#: Compression threads at most: past this the disk, not zlib, sets the pace, and each
#: thread keeps a block or two in memory.
MAX_THREADS = 16


@dataclass
class CompressConfig:
    # Rendered at post-process time with .BuildName and .BuilderType.
    output: str = opt("", late=True)
    format: str = ""
    compression_level: int = 0
    # Packer's config struct holds the detected format in these two fields, and its
    # decoder accepts them as keys; where detection leaves one alone, the user's
    # value stands (e.g. "algorithm": "xz" with "output": "x.tar" gives x.tar in xz).
    archive: str = ""
    algorithm: str = ""


def detect(output: str, fmt: str, archive: str = "", algorithm: str = "") -> tuple[str, str]:
    """``(archive, algorithm)`` from the name's last two extensions, as Packer reads
    them (from the unrendered ``output``): archive is ``tar``, ``zip`` or ``""``,
    algorithm ``pgzip``, ``bgzf``, ``lz4``, ``xz`` or ``""``. ``archive`` and
    ``algorithm`` are the user's keys, kept where Packer's detection keeps them."""
    name = f"{output}.{fmt}" if fmt else output
    found = re.findall(r"\.([a-z0-9]+)", name)
    if not found:
        return "tar", "pgzip"
    last = found[-1]
    if len(found) > 1 and found[-2] == "tar":
        archive = "tar"
    if last in ("zip", "tar"):
        return last, algorithm
    if last in EXTENSIONS:
        return archive, EXTENSIONS[last]
    return "tar", "pgzip"


class CompressPostProcessor(PostProcessor):
    type_name = "compress"
    Config: ClassVar[type[CompressConfig]] = CompressConfig
    config: CompressConfig
    keep_default = False
    force_keep = False

    def prepare(self) -> list[str]:
        check_syntax("output", [self.config.output])
        if not self.config.output:
            self.config.output = DEFAULT_OUTPUT
        # Packer: above 9 means 9; 0 and -1 mean the codec's default.
        self.level = min(self.config.compression_level, 9)
        if self.level in (0, -1):
            self.level = -1
        c = self.config
        self.archive, self.algorithm = detect(c.output, c.format, c.archive, c.algorithm)
        return []

    async def post_process(self, ui: Ui, artifact: Artifact) -> Artifact | None:
        from imagesmith.template.render import RenderError

        generated = dict(artifact.state("generated_data") or {})
        generated["BuildName"] = self.info.name
        generated["BuilderType"] = self.info.builder_type
        try:
            target = self.info.renderer.render(
                self.config.output, data=generated, generated=generated
            )
        except RenderError as e:
            raise BuildError(f"Error interpolating output value: {e}") from None

        parent = os.path.dirname(target)
        try:
            if parent:
                os.makedirs(parent, 0o755, exist_ok=True)
        except OSError as e:
            raise BuildError(
                f"Unable to create dir for archive {target}: {go_os_error('mkdir', parent, e)}"
            ) from None
        try:
            out = open(target, "wb")  # noqa: SIM115 - handed to the worker thread
        except OSError as e:
            raise BuildError(
                f"Unable to create archive {target}: {go_os_error('open', target, e)}"
            ) from None

        job = _Job(out, list(artifact.files), self.archive, self.algorithm, self.level)
        try:
            self._announce(ui, target, job)
            await _run_in_thread(job)
        except BaseException:
            out.close()
            with contextlib.suppress(OSError):
                os.remove(target)
            raise
        out.close()
        ui.say(f"Archive {target} completed")
        return compress_artifact(target)

    def _announce(self, ui: Ui, target: str, job: _Job) -> None:
        """Packer's messages, and the one check it makes between them."""
        algorithm = self.algorithm
        if algorithm == "xz":
            ui.say(f"Using xz compression with 1 core for {target} (library does not support MT)")
        elif algorithm in ("pgzip", "bgzf", "lz4"):
            ui.say(f"Using {algorithm} compression with {cores()} cores for {target}")
        if algorithm in ("pgzip", "bgzf") and not -2 <= self.level <= 9:
            raise BuildError(f"error creating {algorithm} writer: {BAD_LEVEL}")

        compression = algorithm or "no compression"
        if self.archive == "tar":
            ui.say(f"Tarring {target} with {compression}")
        elif self.archive == "zip":
            ui.say(f"Zipping {target}")
        else:
            files = job.files
            if len(files) != 1:
                raise BuildError(
                    "Can only have 1 input file when not using tar/zip. "
                    f"Found {len(files)} files: {format_list(files)}"
                )
            ui.say(f"Archiving {files[0]} with {compression}")


def compress_artifact(target: str) -> Artifact:
    async def destroy() -> None:
        os.remove(target)

    return Artifact(
        builder_id=BUILDER_ID,
        id="",
        text=f"compressed artifacts in: {target}",
        files=[target],
        on_destroy=destroy,
    )


def cores() -> int:
    """The CPUs this process may run on (what Go's GOMAXPROCS defaults to)."""
    return len(os.sched_getaffinity(0))


# --- the work, in a worker thread ----------------------------------------------------------


class _Cancelled(Exception):
    pass


@dataclass
class _Job:
    out: IO[bytes]
    files: list[str]
    archive: str
    algorithm: str
    level: int

    def __post_init__(self) -> None:
        self.cancel = threading.Event()


async def _run_in_thread(job: _Job) -> None:
    """Run ``job`` in a thread; on cancellation, stop it and wait until it stopped."""
    work = asyncio.ensure_future(asyncio.to_thread(_compress, job))
    try:
        await asyncio.shield(work)
    except asyncio.CancelledError:
        job.cancel.set()
        with contextlib.suppress(BaseException):
            await work
        raise


def _compress(job: _Job) -> None:
    writer = _writer(job)
    try:
        if job.archive == "tar":
            _write_tar(job.files, writer)
        elif job.archive == "zip":
            _write_zip(job.files, writer)
        else:
            _write_single(job.files[0], writer)
    finally:
        writer.close()


def _writer(job: _Job) -> _Sink:
    if job.algorithm == "pgzip":
        return _ParallelGzip(job.out, job.level, job.cancel)
    if job.algorithm == "bgzf":
        return _ParallelBgzf(job.out, job.level, job.cancel)
    if job.algorithm == "xz":
        return _Sink(lzma.LZMAFile(job.out, "wb", check=lzma.CHECK_CRC64, preset=6), job.cancel)
    if job.algorithm == "lz4":
        return _Sink(_lz4_file(job.out, job.level), job.cancel)
    # No algorithm, or one Packer does not know (from the "algorithm" key): no codec.
    return _Sink(_Unclosed(job.out), job.cancel)


def _lz4_file(out: IO[bytes], level: int) -> IO[bytes]:
    try:
        import lz4.frame
    except ImportError:
        raise BuildError(
            "lz4 compression needs the Python package 'lz4': install it with "
            "`pip install lz4` (or `pip install 'imagesmith[compress]'`)."
        ) from None
    # Packer's lz4 (pierrec/lz4 v2): 4 MB independent blocks, content checksum; a
    # positive level selects the high-compression mode.
    hc = lz4.frame.COMPRESSIONLEVEL_MINHC + level - 1 if level > 0 else 0
    frame: IO[bytes] = lz4.frame.LZ4FrameFile(
        out,
        "wb",
        block_size=lz4.frame.BLOCKSIZE_MAX4MB,
        block_linked=False,
        content_checksum=True,
        compression_level=hc,
    )
    return frame


def _write_tar(files: list[str], sink: _Sink) -> None:
    # TarFile writes straight to the sink ("w|" would re-buffer every byte in Python).
    with tarfile.TarFile(
        fileobj=sink,  # type: ignore[arg-type]
        mode="w",
        format=tarfile.GNU_FORMAT,
        copybufsize=CHUNK,
    ) as tar:
        # Entries are regular files under their base names, like Go's os.Open + Stat.
        tar.dereference = True
        for path in files:
            try:
                info = tar.gettarinfo(path, arcname=os.path.basename(path))
            except OSError as e:
                reason = go_os_error("open", path, e)
                raise BuildError(
                    f"Error creating tar: Unable to read file {path}: {reason}"
                ) from None
            # Packer zeroes the times so archives of the same files are identical.
            info.mtime = 0
            if not info.isreg():
                tar.addfile(info)
                continue
            with open(path, "rb") as f:
                tar.addfile(info, f)


def _write_zip(files: list[str], sink: _Sink) -> None:
    # The sink cannot seek, so each entry ends with a data descriptor, as Go writes it.
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            name = path.replace(os.sep, "/")
            try:
                src = open(path, "rb")  # noqa: SIM115 - closed by the with below
            except OSError as e:
                reason = go_os_error("open", name, e)
                raise BuildError(
                    f"Error creating zip: Unable to read file {name}: {reason}"
                ) from None
            with src:
                # Go's zip.Create: the path as given, no times, no Unix attributes.
                entry = zipfile.ZipInfo(name, date_time=(1980, 0, 0, 0, 0, 0))
                entry.create_system = 0
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.file_size = os.fstat(src.fileno()).st_size
                with archive.open(
                    entry, "w", force_zip64=entry.file_size >= zipfile.ZIP64_LIMIT
                ) as dst:
                    while chunk := src.read(CHUNK):
                        dst.write(chunk)


def _write_single(path: str, sink: _Sink) -> None:
    try:
        src = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as e:
        raise BuildError(
            f"Failed to open source file {path} for reading: {go_os_error('open', path, e)}"
        ) from None
    with src:
        while chunk := src.read(CHUNK):
            sink.write(chunk)


# --- writers ---------------------------------------------------------------------------


class _Unclosed:
    """The output file, for writers that must not close it (the caller does)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    def write(self, data: bytes) -> int:
        return self.out.write(data)

    def close(self) -> None:
        self.out.flush()


class _Sink:
    """What archivers write to: a compressor, checking for cancellation on each write."""

    def __init__(self, inner: Any, cancel: threading.Event) -> None:
        self.inner = inner
        self.cancel = cancel
        self.written = 0

    def write(self, data: bytes) -> int:
        if self.cancel.is_set():
            raise _Cancelled
        self.inner.write(data)
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        """Nothing to do: ``close`` finishes the stream."""

    def close(self) -> None:
        self.inner.close()


class _ParallelBlocks(_Sink):
    """Cut the stream into blocks, compress them on a thread pool, write them in order.

    At most ``threads + 2`` blocks are in flight (enough to keep every thread busy),
    so memory stays bounded.
    """

    block_size = 1 << 20

    def __init__(self, out: IO[bytes], level: int, cancel: threading.Event) -> None:
        super().__init__(out, cancel)
        self.out = out
        self.level = level
        self.threads = min(cores(), MAX_THREADS)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="compress")
        self.pending: deque[Future[bytes]] = deque()
        self.buffer = bytearray()
        self.closed = False

    def compressor(self, zdict: bytes | None = None) -> Any:
        strategy = zlib.Z_HUFFMAN_ONLY if self.level == -2 else zlib.Z_DEFAULT_STRATEGY
        level = 1 if self.level == -2 else self.level
        if zdict:
            return zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy, zdict)
        return zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy)

    def write(self, data: bytes) -> int:
        if self.cancel.is_set():
            raise _Cancelled
        self.written += len(data)
        if not self.buffer and len(data) == self.block_size:
            self.submit(bytes(data))  # the common case: a whole block read, no copying
            return len(data)
        self.buffer += data
        while len(self.buffer) >= self.block_size:
            block = bytes(self.buffer[: self.block_size])
            del self.buffer[: self.block_size]
            self.submit(block)
        return len(data)

    def submit(self, block: bytes) -> None:
        self.pending.append(self.pool.submit(self.encode, *self.prepare_block(block)))
        while len(self.pending) > self.threads + 2:
            self.out.write(self.pending.popleft().result())

    def prepare_block(self, block: bytes) -> tuple[Any, ...]:
        raise NotImplementedError

    def encode(self, *args: Any) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        return b""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if not self.cancel.is_set():
                if self.buffer:
                    self.submit(bytes(self.buffer))
                    self.buffer.clear()
                while self.pending:
                    self.out.write(self.pending.popleft().result())
                self.out.write(self.finish())
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


class _ParallelGzip(_ParallelBlocks):
    """One gzip member, deflated block by block in parallel as pigz does: each block is
    primed with the 32 KiB before it and ends on a sync flush; the CRC runs in order."""

    def __init__(self, out: IO[bytes], level: int, cancel: threading.Event) -> None:
        super().__init__(out, level, cancel)
        self.crc = 0
        self.size = 0
        self.window = b""
        # Header: no name, no timestamp, unknown OS (as Go's gzip writes it).
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")

    def prepare_block(self, block: bytes) -> tuple[Any, ...]:
        self.crc = zlib.crc32(block, self.crc)
        self.size += len(block)
        window, self.window = self.window, block[-32768:]
        return block, window

    def encode(self, block: bytes, window: bytes) -> bytes:
        """Deflate ``block``, storing the stretches that look incompressible.

        Each 64 KiB segment is judged on its own, so random data next to text is
        stored while the text is still compressed; a compressor is primed with the
        32 KiB before the first segment it takes.
        """
        out: list[bytes] = []
        deflating: Any = None
        view = memoryview(block)
        for start in range(0, len(block), SEGMENT):
            segment = view[start : start + SEGMENT]
            if incompressible(segment):
                if deflating is not None:
                    out.append(deflating.flush(zlib.Z_SYNC_FLUSH))
                    deflating = None
                out.append(stored_blocks(segment))
                continue
            if deflating is None:
                history = bytes(window) + bytes(view[max(0, start - 32768) : start])
                deflating = self.compressor(history[-32768:])
            out.append(deflating.compress(segment))
        if deflating is not None:
            out.append(deflating.flush(zlib.Z_SYNC_FLUSH))
        return b"".join(out)

    def finish(self) -> bytes:
        # An empty final block ends the deflate stream, then CRC-32 and size mod 2**32.
        return b"\x03\x00" + struct.pack("<II", self.crc, self.size & 0xFFFFFFFF)


def _stored() -> Any:
    return zlib.compressobj(0, zlib.DEFLATED, -15)


def stored_blocks(data: bytes | memoryview) -> bytes:
    """``data`` as non-final stored deflate blocks (RFC 1951 3.2.4), at a byte boundary
    as a sync flush leaves the stream: a zero header byte, LEN, NLEN, the bytes."""
    out = bytearray()
    for start in range(0, len(data), 0xFFFF):
        piece = data[start : start + 0xFFFF]
        out += struct.pack("<BHH", 0, len(piece), len(piece) ^ 0xFFFF)
        out += piece
    return bytes(out)


SAMPLE = 2048
SEGMENT = 64 << 10


def incompressible(data: bytes | memoryview) -> bool:
    """Whether ``data`` (up to a segment) looks already compressed: most of three
    samples (start, middle, end) gain less than 2% at level 1. Such data is stored,
    which is as small and many times faster (Packer's Go compressors skip it too)."""
    n = len(data)
    votes = 0
    for start in (0, n // 2, max(0, n - SAMPLE)):
        piece = data[start : start + SAMPLE]
        if len(zlib.compress(piece, 1)) >= len(piece) * 0.98:
            votes += 1
    return votes >= 2


BGZF_BLOCK = 0xFF00  # uncompressed bytes per BGZF block (what htslib and biogo use)
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


class _ParallelBgzf(_ParallelBlocks):
    """BGZF (SAM specification 4.1): gzip members of at most 64 KiB, each with a ``BC``
    extra field giving its size, then the empty end-of-file block."""

    block_size = BGZF_BLOCK * 16  # one task compresses 16 BGZF blocks

    def prepare_block(self, block: bytes) -> tuple[Any, ...]:
        return (block,)

    def encode(self, data: bytes) -> bytes:
        out = bytearray()
        for start in range(0, len(data), BGZF_BLOCK):
            piece = data[start : start + BGZF_BLOCK]
            c = _stored() if incompressible(piece) else self.compressor()
            deflated = c.compress(piece) + c.flush()
            if len(deflated) > 65536 - 26:
                # Deflate made it bigger: a stored block always fits.
                c = _stored()
                deflated = c.compress(piece) + c.flush()
            header = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00"
            # BSIZE: the whole block's size minus 1 (header, its 2 bytes, data, trailer).
            out += header + struct.pack("<H", len(header) + 2 + len(deflated) + 8 - 1)
            out += deflated + struct.pack("<II", zlib.crc32(piece), len(piece))
        return bytes(out)

    def finish(self) -> bytes:
        return BGZF_EOF

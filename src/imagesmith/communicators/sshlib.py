"""Loading asyncssh, the SSH library, without its slow probe for liboqs.

When it is imported, asyncssh looks for liboqs (a post-quantum key exchange library)
with ``ctypes.util.find_library``. Where the library is not installed, which is almost
everywhere, Python's lookup falls back from the dynamic linker's cache to running
``gcc`` and then ``ld`` for each of two names: about 40 ms and six processes, on a
build's critical path. ``load`` answers asyncssh's probes from the linker's cache alone,
which is where the dynamic linker looks when asyncssh then loads the library (a
library only the compiler could find would not load by its name anyway).

Builders call ``load`` before their first SSH connection; asyncssh imported any other
way still works, it only probes the slow way.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import sys
import threading
from collections.abc import Callable, Iterator

#: The names asyncssh probes: liboqs (asyncssh.crypto.pq) and nettle, for UMAC
#: (asyncssh.crypto.umac).
PROBED = frozenset({"oqs", "liboqs", "nettle"})

_LOCK = threading.Lock()


def load() -> None:
    """Import asyncssh (and imagesmith's SSH communicator) if not done yet."""
    with _LOCK:
        if "asyncssh" not in sys.modules:
            with _linker_cache_probe():
                import asyncssh  # noqa: F401
    import imagesmith.communicators.ssh  # noqa: F401


@contextlib.contextmanager
def _linker_cache_probe() -> Iterator[None]:
    from_cache: Callable[[str], str | None] | None = getattr(
        ctypes.util, "_findSoname_ldconfig", None
    )
    if from_cache is None:  # not Linux: Python's lookup has no slow fallback there
        yield
        return
    original = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        if name in PROBED:
            return from_cache(name)
        return original(name)

    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.util.find_library = original

"""asyncssh loaded through sshlib: same libraries found, without running a compiler."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys
import textwrap

import pytest

from imagesmith.communicators import sshlib


@pytest.mark.skipif(not hasattr(ctypes.util, "_findSoname_ldconfig"), reason="Linux only")
def test_probes_are_answered_from_the_linker_cache_alone() -> None:
    # A fresh interpreter: asyncssh is imported once per process.
    script = textwrap.dedent(
        """
        import ctypes.util, subprocess, sys
        started = []
        real_popen = subprocess.Popen.__init__
        def popen(self, args, *a, **k):
            started.append(args[0] if isinstance(args, list) else args)
            return real_popen(self, args, *a, **k)
        subprocess.Popen.__init__ = popen
        from imagesmith.communicators import sshlib
        sshlib.load()
        print(sorted(set(started)))
        print(ctypes.util.find_library.__module__)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "['/sbin/ldconfig']"  # no gcc, no ld
    assert out[1] == "ctypes.util"  # the real lookup is back in place


def test_the_answer_is_what_the_linker_cache_says() -> None:
    seen: dict[str, str | None] = {}
    with sshlib._linker_cache_probe():
        for name in ("c", "oqs"):
            seen[name] = ctypes.util.find_library(name)
    assert seen["c"] and seen["c"].startswith("libc.so")
    # Whatever the machine has, the probe agrees with the linker cache.
    assert seen["oqs"] == ctypes.util._findSoname_ldconfig("oqs")  # type: ignore[attr-defined]
    assert ctypes.util.find_library.__module__ == "ctypes.util"  # put back


def test_load_imports_the_ssh_stack() -> None:
    sshlib.load()
    assert "asyncssh" in sys.modules
    assert "imagesmith.communicators.ssh" in sys.modules

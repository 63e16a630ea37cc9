"""Component lookup: imagesmith's own entry points are read from its own metadata file,
others through ``importlib.metadata`` (what keeps ``validate`` from scanning every
installed distribution)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from imagesmith.plugins import (
    _GROUPS,
    Registry,
    UnknownComponent,
    _own_dist_info,
    _read_own_entry_points,
)


def test_own_entry_points_are_the_installed_ones() -> None:
    if _own_dist_info() is None:
        pytest.skip("imagesmith is not installed (no dist-info on sys.path)")
    own = _read_own_entry_points()
    for kind, group in _GROUPS.items():
        installed = {
            ep.name: ep.value
            for ep in entry_points(group=group)
            if ep.dist is not None and ep.dist.name == "imagesmith"
        }
        assert own[kind] == installed


def test_builtin_lookup_does_not_scan_installed_distributions() -> None:
    code = (
        "import sys\n"
        "from imagesmith.plugins import registry\n"
        "cls = registry.get('builder', 'null')\n"
        "print(cls.__name__, 'importlib.metadata' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["NullBuilder", "False"]


def test_unknown_names_fall_back_to_every_entry_point_and_suggest() -> None:
    registry = Registry()
    with pytest.raises(UnknownComponent) as caught:
        registry.get("builder", "nul")
    assert str(caught.value) == "Unknown builder nul. Did you mean 'null'?"
    assert {"null", "file", "docker", "amazon-ebs"} <= set(registry.names("builder"))
    assert str(UnknownComponent("provisioner", "zzz", ["shell"])) == "Unknown provisioner zzz"

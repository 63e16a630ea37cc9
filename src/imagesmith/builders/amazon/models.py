"""A trimmed copy of botocore's EC2 API model, for a faster first client.

botocore parses the whole EC2 model (765 operations, 4,000 shapes) when it creates an
EC2 client: about a third of the 0.15 s a build spends before its first call. The
builder uses some thirty of those operations, so a model with only them (and the
shapes they reach) is written once per botocore version to the user's cache directory,
and put first on the client's data path. Anything wrong with the cache simply leaves
botocore's own model in use.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Every EC2 operation the builder, the artifact and ``imagesmith cleanup`` call.
OPERATIONS = frozenset(
    {
        "AuthorizeSecurityGroupIngress",
        "CopyImage",
        "CreateFleet",
        "CreateImage",
        "CreateKeyPair",
        "CreateLaunchTemplate",
        "CreateSecurityGroup",
        "CreateTags",
        "DeleteKeyPair",
        "DeleteLaunchTemplate",
        "DeleteSecurityGroup",
        "DeleteSnapshot",
        "DeleteTags",
        "DeleteVolume",
        "DeregisterImage",
        "DescribeImages",
        "DescribeInstances",
        "DescribeKeyPairs",
        "DescribeLaunchTemplates",
        "DescribeRegions",
        "DescribeSecurityGroups",
        "DescribeSnapshots",
        "DescribeSubnets",
        "DescribeVolumes",
        "DescribeVpcs",
        "EnableImageDeprecation",
        "GetPasswordData",
        "ModifyImageAttribute",
        "ModifyInstanceAttribute",
        "ModifySnapshotAttribute",
        "RunInstances",
        "StopInstances",
        "TerminateInstances",
    }
)
SERVICE = "ec2"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "imagesmith"


def install(session: Any) -> None:
    """Put the trimmed EC2 model first on ``session``'s data path (if it can be had)."""
    try:
        path = _trimmed_data_path(session)
    except (OSError, ValueError, KeyError) as e:
        log.debug("using botocore's full EC2 model: %s", e)
        return
    if path is not None:
        session.get_component("data_loader").search_paths.insert(0, path)


def _trimmed_data_path(session: Any) -> str | None:
    import botocore

    root = cache_root() / f"botocore-{botocore.__version__}-data"
    loader = session.get_component("data_loader")
    version = loader.list_api_versions(SERVICE, "service-2")[-1]
    target = root / SERVICE / version / "service-2.json"
    if not target.exists():
        model = loader.load_service_model(SERVICE, "service-2", version)
        _write_atomically(target, trim(model))
    return str(root)


def trim(model: dict[str, Any]) -> dict[str, Any]:
    """``model`` with only ``OPERATIONS``, the shapes they reach, and no documentation."""
    operations = {
        name: _undocumented(op) for name, op in model["operations"].items() if name in OPERATIONS
    }
    missing = OPERATIONS - operations.keys()
    if missing:
        raise KeyError(f"operations missing from the EC2 model: {sorted(missing)}")
    shapes = model["shapes"]
    wanted: set[str] = set()
    pending = [
        ref["shape"]
        for op in operations.values()
        for ref in [op.get("input"), op.get("output"), *op.get("errors", [])]
        if ref
    ]
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        wanted.add(name)
        pending.extend(_references(shapes[name]))
    return {
        **{k: v for k, v in model.items() if k not in ("operations", "shapes", "documentation")},
        "operations": operations,
        "shapes": {name: _undocumented(shapes[name]) for name in sorted(wanted)},
    }


def _references(shape: dict[str, Any]) -> list[str]:
    refs = [m["shape"] for m in shape.get("members", {}).values()]
    for key in ("member", "key", "value"):
        if key in shape:
            refs.append(shape[key]["shape"])
    return refs


def _undocumented(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _undocumented(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [_undocumented(v) for v in node]
    return node


def _write_atomically(target: Path, data: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".service-2.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise

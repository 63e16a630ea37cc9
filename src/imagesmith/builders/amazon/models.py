"""A faster first EC2 client: a trimmed copy of botocore's EC2 model, and a cached list
of the services botocore bundles.

botocore parses the whole EC2 model (765 operations, 4,000 shapes) when it creates an
EC2 client: about a third of the 0.15 s a build spends before its first call. The
builder uses some thirty of those operations, so a model with only them (and the
shapes they reach) is written once per botocore version to the user's cache directory,
and put first on the client's data path.

Before it loads a model, botocore also lists every service it knows, by walking the
directory of each of its ~450 bundled services (about 0.02 s for an EC2 client). That
directory only changes when botocore does, so its list is kept in the same cache.
And every client parses botocore's ``endpoints.json`` (1.2 MB of JSON, 0.014 s); big
data files are kept parsed, in ``marshal`` form (four times faster to load), keyed by
their path, size and mtime.

Anything wrong with the cache simply leaves botocore's own data and listing in use.
"""

from __future__ import annotations

import hashlib
import json
import logging
import marshal
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
    """Give ``session`` a data loader that lists bundled services from the cache, and
    put the trimmed EC2 model first on its data path (if it can be had)."""
    session.register_component("data_loader", _loader(session.get_config_variable("data_path")))
    try:
        path = _trimmed_data_path(session)
    except (OSError, ValueError, KeyError) as e:
        log.debug("using botocore's full EC2 model: %s", e)
        return
    if path is not None:
        session.get_component("data_loader").search_paths.insert(0, path)


def _loader(data_path: str | None) -> Any:
    """botocore's data loader for ``data_path`` (``AWS_DATA_PATH``), as botocore makes
    it, except that the services on its bundled data path are listed from the cache."""
    from botocore.loaders import Loader, instance_cache

    class CachedListingLoader(Loader):
        @instance_cache
        def list_available_services(self, type_name: str) -> list[str]:
            services: set[str] = set()
            for path in self.search_paths:
                if path == self.BUILTIN_DATA_PATH:
                    services.update(bundled_services(path, type_name))
                elif os.path.isdir(path):
                    services.update(_services_in(path, type_name))
            return sorted(services)

    extra = None
    if data_path:
        extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    return CachedListingLoader(extra_search_paths=extra, file_loader=_parsed_file_loader())


#: Files smaller than this parse about as fast as their cached form loads.
PARSED_CACHE_MIN_SIZE = 64 * 1024


def _parsed_file_loader() -> Any:
    """botocore's JSON file loader, with big files' parsed data cached."""
    from botocore.loaders import JSONFileLoader

    class ParsedCacheFileLoader(JSONFileLoader):
        def load_file(self, file_path: str) -> Any:
            key = _parsed_cache_key(file_path)
            if key is None:
                return super().load_file(file_path)
            try:
                return marshal.loads(key.read_bytes())
            except (OSError, EOFError, ValueError, TypeError):
                pass
            data = super().load_file(file_path)
            if data is not None:
                try:
                    _write_bytes_atomically(key, marshal.dumps(_plain(data)))
                except (OSError, ValueError) as e:
                    log.debug("cannot cache the parsed %s: %s", file_path, e)
            return data

    return ParsedCacheFileLoader()


def _parsed_cache_key(file_path: str) -> Path | None:
    """Where the parsed form of ``file_path`` (.json or .json.gz) is cached, or None for
    a small or missing file."""
    for ext in (".json", ".json.gz"):
        try:
            st = os.stat(file_path + ext)
        except OSError:
            continue
        if st.st_size < PARSED_CACHE_MIN_SIZE:
            return None
        name = hashlib.sha256(f"{file_path}{ext}".encode()).hexdigest()[:32]
        stamp = f"{st.st_size}-{st.st_mtime_ns}"
        return cache_root() / "parsed" / f"{name}-{stamp}.marshal"
    return None


def _plain(node: Any) -> Any:
    """``node`` with botocore's OrderedDicts made plain dicts (same order), which
    ``marshal`` can store."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def bundled_services(data_dir: str, type_name: str) -> list[str]:
    """The services in botocore's bundled ``data_dir`` that have a ``type_name`` model,
    read from the cache (keyed by botocore's version and the directory's mtime)."""
    import botocore

    try:
        stamp = os.stat(data_dir).st_mtime_ns
    except OSError:
        return []
    cache = cache_root() / f"botocore-{botocore.__version__}-services" / f"{type_name}-{stamp}"
    try:
        return cache.read_text(encoding="utf-8").split()
    except OSError:
        pass
    services = _services_in(data_dir, type_name)
    try:
        _write_text_atomically(cache, "\n".join(services))
    except OSError as e:
        log.debug("cannot cache botocore's service list: %s", e)
    return services


def _services_in(data_dir: str, type_name: str) -> list[str]:
    """What botocore's own listing finds in one directory: each subdirectory with an
    API version directory that holds a ``type_name`` model (plain or gzipped)."""
    found = []
    for service in os.listdir(data_dir):
        service_dir = os.path.join(data_dir, service)
        if not os.path.isdir(service_dir):
            continue
        for version in os.listdir(service_dir):
            model = os.path.join(service_dir, version, type_name)
            if os.path.isfile(f"{model}.json") or os.path.isfile(f"{model}.json.gz"):
                found.append(service)
                break
    return sorted(found)


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
    _write_text_atomically(target, json.dumps(data, separators=(",", ":")))


def _write_text_atomically(target: Path, text: str) -> None:
    _write_bytes_atomically(target, text.encode())


def _write_bytes_atomically(target: Path, data: bytes) -> None:
    """Write through a temporary file, so that concurrent builds never read half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise

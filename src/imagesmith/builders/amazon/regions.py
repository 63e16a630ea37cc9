"""The AWS regions this version knows, read from botocore's partition data.

Packer 1.6.6 only learns that a region is misspelt from DescribeRegions, once the
build has started. ``validate`` checks here instead, without importing botocore: its
``partitions.json`` (7 KB, where ``endpoints.json`` is over 1 MB) is read as a plain
file.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os


@functools.cache
def known_regions() -> frozenset[str]:
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        return frozenset()
    path = os.path.join(os.path.dirname(spec.origin), "data", "partitions.json")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return frozenset()
    # Each partition also lists a pseudo-region for its global endpoints ("aws-global"):
    # not a place an instance can run.
    return frozenset(
        region
        for part in data.get("partitions", [])
        for region in part.get("regions", {})
        if not region.endswith("-global")
    )


def is_known(region: str) -> bool:
    known = known_regions()
    # Without the data there is nothing to check against; the build's DescribeRegions
    # call still catches a wrong name.
    return not known or region in known


def unknown_message(key: str, region: str) -> str:
    return (
        f'{key}: "{region}" is not an AWS region this version knows. Check the spelling, '
        "or set skip_region_validation to true for a region newer than this version."
    )


def is_china(region: str) -> bool:
    return region.startswith("cn-")


def is_gov_cloud(region: str) -> bool:
    return region.startswith("us-gov-")

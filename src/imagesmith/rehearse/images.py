"""Which local container image stands in for a template's source AMI, and which AMI the
emulator serves so that ``source_ami``, ``source_ami_filter`` and ``{{ .SourceAMI }}``
resolve as they would on AWS.

Precedence for the image: the ``-rehearse-image`` flag, then the first matching entry
of the ``-rehearse-map`` file, then the default of the AMI's family (recognised from
its name), then the Debian base image.

The mapping file is JSON::

    {
      "default": "imagesmith/rehearse-base:debian-bookworm",
      "sources": [
        {"build": "amazon-ebs", "source_ami": "ami-5e414e24", "family": "amazon-linux",
         "ami": {"name": "amzn-ami-2017.09.h-amazon-ecs-optimized",
                 "owner_id": "591542846629"}},
        {"name": "ubuntu/images/*", "image": "my-ubuntu-sshd:22.04"}
      ]
    }

An entry matches when each of ``build``, ``source_ami`` and ``name`` (a shell-style
pattern over the source AMI's name) it gives matches; it then names an ``image`` or a
``family``, and may set attributes of the emulated AMI under ``ami``.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import importlib.util
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from imagesmith.errors import ImagesmithError

DEBIAN_IMAGE = "imagesmith/rehearse-base:debian-bookworm"
AMAZON_STANDIN_IMAGE = "imagesmith/rehearse-base:amazon-linux-standin"

ACCOUNT_ID = "123456789012"  # moto's account: "self"
OWNER_ALIASES = {
    "self": ACCOUNT_ID,
    "amazon": "137112412989",
    "aws-marketplace": "679593333241",
}


@dataclass(frozen=True)
class Family:
    key: str
    patterns: tuple[str, ...]
    image: str
    notice: str


FAMILIES = (
    Family(
        "amazon-linux",
        ("amzn-ami-*", "amzn2-ami-*", "al2023-ami-*", "amzn*", "*amazon-ecs-optimized*"),
        AMAZON_STANDIN_IMAGE,
        "Amazon Linux is rehearsed on a Debian bookworm userland whose yum answers from an "
        "empty local repository: updates report nothing to do, installs of Amazon "
        "packages fail.",
    ),
    Family(
        "ubuntu",
        ("ubuntu/images/*", "*ubuntu*"),
        DEBIAN_IMAGE,
        "Ubuntu is rehearsed on Debian bookworm: apt works, Ubuntu's own packages and "
        "versions differ.",
    ),
    Family(
        "debian",
        ("debian-*", "*debian*"),
        DEBIAN_IMAGE,
        "Debian is rehearsed on Debian bookworm whatever the AMI's release.",
    ),
)
FAMILY_BY_KEY = {f.key: f for f in FAMILIES}


class MappingError(ImagesmithError):
    pass


@dataclass(frozen=True)
class SourceSpec:
    """What one amazon build asks for as its source AMI."""

    build: str
    source_ami: str = ""
    filters: Mapping[str, str] = field(default_factory=dict)
    owners: Sequence[str] = ()


@dataclass(frozen=True)
class MappingEntry:
    build: str | None = None
    source_ami: str | None = None
    name: str | None = None
    image: str | None = None
    family: str | None = None
    ami: Mapping[str, Any] = field(default_factory=dict)

    def matches(self, spec: SourceSpec, ami_name: str) -> bool:
        return (
            (self.build is None or self.build == spec.build)
            and (self.source_ami is None or self.source_ami == spec.source_ami)
            and (self.name is None or fnmatch.fnmatchcase(ami_name, self.name))
        )


@dataclass(frozen=True)
class ImageMapping:
    entries: tuple[MappingEntry, ...] = ()
    default: str | None = None


@dataclass
class ResolvedSource:
    spec: SourceSpec
    image: str
    ami: dict[str, Any]  # the moto AMI record the emulator serves
    notices: list[str]


_AMI_KEYS = {
    "name": str,
    "description": str,
    "owner_id": str,
    "architecture": str,
    "virtualization_type": str,
    "root_device_name": str,
    "creation_date": str,
    "platform": str,
    "public": bool,
    "tags": dict,
}
_ENTRY_KEYS = {"build", "source_ami", "name", "image", "family", "ami"}


def load_mapping(path: str) -> ImageMapping:
    """Read a ``-rehearse-map`` file, naming the file and key of any mistake."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except OSError as exc:
        raise MappingError(f"Cannot read the rehearsal map {path}: {exc.strerror}.") from None
    except json.JSONDecodeError as exc:
        raise MappingError(
            f"The rehearsal map {path} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}): {exc.msg}."
        ) from None
    return parse_mapping(raw, path)


def parse_mapping(raw: Any, path: str = "the rehearsal map") -> ImageMapping:
    def fail(where: str, what: str) -> MappingError:
        return MappingError(f"{path}: {where} {what}.")

    if not isinstance(raw, dict):
        raise fail("the top level", "must be an object with 'sources' and 'default'")
    unknown = sorted(set(raw) - {"sources", "default"})
    if unknown:
        raise fail(f"key '{unknown[0]}'", "is unknown (expected 'sources' or 'default')")
    default = raw.get("default")
    if default is not None and (not isinstance(default, str) or not default):
        raise fail("'default'", "must be an image name such as " + DEBIAN_IMAGE)
    sources = raw.get("sources", [])
    if not isinstance(sources, list):
        raise fail("'sources'", "must be a list of objects")
    entries = []
    for i, item in enumerate(sources):
        where = f"sources[{i}]"
        if not isinstance(item, dict):
            raise fail(where, "must be an object")
        unknown = sorted(set(item) - _ENTRY_KEYS)
        if unknown:
            raise fail(f"{where}.{unknown[0]}", "is not a known key")
        for key in ("build", "source_ami", "name", "image", "family"):
            if key in item and not isinstance(item[key], str):
                raise fail(f"{where}.{key}", "must be a string")
        if ("image" in item) == ("family" in item):
            raise fail(where, "must give exactly one of 'image' or 'family'")
        if "family" in item and item["family"] not in FAMILY_BY_KEY:
            known = ", ".join(FAMILY_BY_KEY)
            raise fail(f"{where}.family", f"'{item['family']}' is not one of {known}")
        ami = item.get("ami", {})
        if not isinstance(ami, dict):
            raise fail(f"{where}.ami", "must be an object")
        for key, value in ami.items():
            kind = _AMI_KEYS.get(key)
            if kind is None:
                raise fail(f"{where}.ami.{key}", "is not a known AMI attribute")
            if not isinstance(value, kind):
                raise fail(f"{where}.ami.{key}", f"must be a {kind.__name__}")
        entries.append(
            MappingEntry(
                build=item.get("build"),
                source_ami=item.get("source_ami"),
                name=item.get("name"),
                image=item.get("image"),
                family=item.get("family"),
                ami=ami,
            )
        )
    return ImageMapping(tuple(entries), default)


def family_of(ami_name: str) -> Family | None:
    for family in FAMILIES:
        if any(fnmatch.fnmatchcase(ami_name, p) for p in family.patterns):
            return family
    return None


def resolve(
    spec: SourceSpec,
    *,
    region: str = "us-east-1",
    flag_image: str | None = None,
    mapping: ImageMapping | None = None,
    now: datetime | None = None,
) -> ResolvedSource:
    """Pick the container image for ``spec`` and build the AMI record to serve."""
    notices: list[str] = []
    ami = emulated_ami(spec, region=region, now=now, notices=notices)
    entry = next(
        (e for e in (mapping.entries if mapping else ()) if e.matches(spec, ami["name"])), None
    )
    if entry is not None:
        ami.update(entry.ami)
    family = FAMILY_BY_KEY.get(entry.family or "") if entry else None
    family = family or family_of(ami["name"])

    what = f"source AMI {ami['ami_id']} ({ami['name']})"
    if flag_image:
        image = flag_image
    elif entry is not None and entry.image:
        image = entry.image
    elif family is not None:
        image = family.image
        notices.append(family.notice)
    elif mapping is not None and mapping.default:
        image = mapping.default
    else:
        image = DEBIAN_IMAGE
        notices.append(
            f"The {what} is of no family the rehearsal knows, so it runs on Debian "
            "bookworm: say which image stands in for it with -rehearse-image or "
            "-rehearse-map."
        )
    return ResolvedSource(spec=spec, image=image, ami=ami, notices=notices)


def emulated_ami(
    spec: SourceSpec,
    *,
    region: str = "us-east-1",
    now: datetime | None = None,
    notices: list[str] | None = None,
) -> dict[str, Any]:
    """A moto AMI record that ``spec``'s lookup (id, filters, owners) finds."""
    notices = notices if notices is not None else []
    filters = dict(spec.filters)
    ami_id = spec.source_ami or filters.get("image-id", "")
    if not ami_id or _has_wildcard(ami_id):
        ami_id = _stable_ami_id(spec)
    known = known_amis().get(ami_id, {})
    created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    record: dict[str, Any] = {
        "ami_id": ami_id,
        "name": known.get("name") or f"rehearsal-{ami_id}",
        "description": known.get("description") or "Source AMI of a rehearsal",
        "owner_id": known.get("owner_id") or OWNER_ALIASES["amazon"],
        "public": True,
        "virtualization_type": "hvm",
        "architecture": known.get("architecture") or "x86_64",
        "state": "available",
        "platform": known.get("platform"),
        "image_type": "machine",
        "hypervisor": "xen",
        "root_device_name": known.get("root_device_name") or "/dev/xvda",
        "root_device_type": "ebs",
        "sriov": "simple",
        "tags": {},
        "creation_date": known.get("creation_date") or created,
    }
    owner = next(iter(spec.owners), None)
    if owner:
        record["owner_id"] = OWNER_ALIASES.get(owner, owner)

    simple = {
        "name": "name",
        "description": "description",
        "owner-id": "owner_id",
        "architecture": "architecture",
        "virtualization-type": "virtualization_type",
        "root-device-name": "root_device_name",
        "platform": "platform",
        "hypervisor": "hypervisor",
        "image-type": "image_type",
    }
    unsupported = []
    for key, value in filters.items():
        concrete = _concrete(value)
        if key in simple:
            record[simple[key]] = concrete
        elif key.startswith("tag:"):
            record["tags"][key[4:]] = concrete
        elif key == "tag-key":
            record["tags"].setdefault(concrete, "rehearsal")
        elif key == "owner-alias":
            record["owner_id"] = OWNER_ALIASES.get(concrete, record["owner_id"])
        elif key == "is-public":
            record["public"] = concrete.lower() == "true"
        elif key in ("image-id", "state", "root-device-type"):
            continue  # already what the filter asks for (an ebs-backed, available image)
        else:
            unsupported.append(key)
    if unsupported:
        notices.append(
            f"The emulated source AMI of build '{spec.build}' cannot honour the filter "
            f"key(s) {', '.join(sorted(unsupported))}; the EC2 emulator may reject them."
        )
    return record


@cache
def known_amis() -> dict[str, dict[str, Any]]:
    """The real public AMIs moto ships descriptions of, by id (empty without moto).

    Read from moto's data file directly: importing moto's EC2 models takes seconds.
    """
    spec = importlib.util.find_spec("moto")
    if spec is None or not spec.submodule_search_locations:
        return {}
    resources = Path(next(iter(spec.submodule_search_locations))) / "ec2" / "resources"
    for name, opener in (("amis.json.gz", gzip.open), ("amis.json", open)):
        path = resources / name
        if path.exists():
            try:
                with opener(path, "rt", encoding="utf-8") as f:
                    return {record["ami_id"]: record for record in json.load(f)}
            except (OSError, ValueError, KeyError, TypeError):
                return {}
    return {}


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _concrete(pattern: str) -> str:
    """A value an EC2 wildcard pattern matches (``*`` any run, ``?`` one character)."""
    return pattern.replace("*", "rehearsal").replace("?", "0")


def _stable_ami_id(spec: SourceSpec) -> str:
    # The same filter gives the same id in every run and every build of a template.
    key = json.dumps([sorted(spec.filters.items()), list(spec.owners)])
    return "ami-" + hashlib.sha256(key.encode()).hexdigest()[:17]

"""Mapping a template's source AMI to a stand-in image and an emulated AMI."""

from __future__ import annotations

import fnmatch
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagesmith.rehearse import images
from imagesmith.rehearse.images import (
    AMAZON_STANDIN_IMAGE,
    DEBIAN_IMAGE,
    ImageMapping,
    MappingEntry,
    MappingError,
    SourceSpec,
    load_mapping,
    parse_mapping,
    resolve,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_unknown_source_ami_runs_on_debian_with_a_notice() -> None:
    got = resolve(SourceSpec("amazon-ebs", source_ami="ami-5e414e24"), now=NOW)
    assert got.image == DEBIAN_IMAGE
    assert got.ami["ami_id"] == "ami-5e414e24"
    assert got.ami["name"] == "rehearsal-ami-5e414e24"
    assert got.ami["root_device_type"] == "ebs"
    assert got.ami["creation_date"] == "2026-01-02T03:04:05.000Z"
    assert any("-rehearse-image" in n and "ami-5e414e24" in n for n in got.notices)


def test_ami_known_to_moto_keeps_its_name_and_family() -> None:
    got = resolve(SourceSpec("b", source_ami="ami-760aaa0f"), now=NOW)
    assert got.ami["name"] == "amzn-ami-hvm-2017.09.1.20171103-x86_64-gp2"
    assert got.ami["owner_id"] == "137112412989"
    assert got.image == AMAZON_STANDIN_IMAGE
    assert any("yum" in n for n in got.notices)


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("amzn2-ami-hvm-*-x86_64-gp2", "amazon-linux"),
        ("al2023-ami-2023.*-x86_64", "amazon-linux"),
        ("amzn-ami-2017.09.h-amazon-ecs-optimized", "amazon-linux"),
        ("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*", "ubuntu"),
        ("debian-12-amd64-*", "debian"),
        ("RHEL-9.*", None),
    ],
)
def test_family_is_recognised_from_the_name(name: str, family: str | None) -> None:
    found = images.family_of(name)
    assert (found.key if found else None) == family


def test_filter_gives_an_ami_the_filter_matches() -> None:
    spec = SourceSpec(
        "al2",
        filters={
            "name": "amzn2-ami-hvm-*-x86_64-gp?",
            "virtualization-type": "hvm",
            "root-device-type": "ebs",
            "architecture": "arm64",
            "tag:Team": "core-*",
        },
        owners=["amazon"],
    )
    ami = images.emulated_ami(spec, now=NOW)
    assert fnmatch.fnmatchcase(ami["name"], "amzn2-ami-hvm-*-x86_64-gp?")
    assert "*" not in ami["name"] and "?" not in ami["name"]
    assert ami["architecture"] == "arm64"
    assert ami["owner_id"] == "137112412989"
    assert fnmatch.fnmatchcase(ami["tags"]["Team"], "core-*")
    assert ami["ami_id"].startswith("ami-") and len(ami["ami_id"]) == 21


def test_same_filter_same_id_other_filter_other_id() -> None:
    a = SourceSpec("x", filters={"name": "debian-12-*"}, owners=["136693071363"])
    b = SourceSpec("y", filters={"name": "debian-12-*"}, owners=["136693071363"])
    c = SourceSpec("x", filters={"name": "debian-11-*"}, owners=["136693071363"])
    ids = [images.emulated_ami(s)["ami_id"] for s in (a, b, c)]
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize(
    ("owner", "owner_id"),
    [
        ("self", "123456789012"),
        ("099720109477", "099720109477"),
        ("aws-marketplace", "679593333241"),
    ],
)
def test_owner_names_become_account_ids(owner: str, owner_id: str) -> None:
    spec = SourceSpec("x", filters={"name": "n"}, owners=[owner])
    assert images.emulated_ami(spec)["owner_id"] == owner_id


def test_unsupported_filter_keys_are_noticed() -> None:
    notes: list[str] = []
    images.emulated_ami(
        SourceSpec("b1", filters={"name": "x", "block-device-mapping.volume-size": "8"}),
        notices=notes,
    )
    assert len(notes) == 1
    assert "b1" in notes[0] and "block-device-mapping.volume-size" in notes[0]


def test_flag_image_wins_over_map_and_family() -> None:
    mapping = ImageMapping((MappingEntry(image="from-map:1"),), default="map-default:1")
    spec = SourceSpec("b", filters={"name": "debian-12-*"})
    assert resolve(spec, flag_image="flag:1", mapping=mapping).image == "flag:1"
    assert resolve(spec, mapping=mapping).image == "from-map:1"


def test_map_entries_match_on_build_id_and_name_first_wins() -> None:
    mapping = parse_mapping(
        {
            "default": "fallback:1",
            "sources": [
                {"build": "other", "image": "wrong:1"},
                {"source_ami": "ami-0000000000000000a", "image": "by-id:1"},
                {"name": "ubuntu/images/*", "image": "ubuntu-sshd:22.04"},
                {
                    "build": "ecs",
                    "family": "amazon-linux",
                    "ami": {"name": "amzn-ami-2017.09.h-amazon-ecs-optimized", "owner_id": "1"},
                },
            ],
        }
    )
    by_id = resolve(SourceSpec("b", source_ami="ami-0000000000000000a"), mapping=mapping)
    assert by_id.image == "by-id:1"
    by_name = resolve(SourceSpec("b", filters={"name": "ubuntu/images/*jammy*"}), mapping=mapping)
    assert by_name.image == "ubuntu-sshd:22.04"
    ecs = resolve(SourceSpec("ecs", source_ami="ami-5e414e24"), mapping=mapping)
    assert ecs.image == AMAZON_STANDIN_IMAGE
    assert ecs.ami["name"] == "amzn-ami-2017.09.h-amazon-ecs-optimized"
    assert ecs.ami["owner_id"] == "1"
    unknown = resolve(SourceSpec("z", source_ami="ami-5e414e24"), mapping=mapping)
    assert unknown.image == "fallback:1"
    assert unknown.notices == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "the top level must be an object"),
        ({"images": []}, "key 'images' is unknown"),
        ({"default": 3}, "'default' must be an image name"),
        ({"sources": {}}, "'sources' must be a list"),
        ({"sources": ["x"]}, "sources[0] must be an object"),
        ({"sources": [{"image": "a", "colour": 1}]}, "sources[0].colour is not a known key"),
        ({"sources": [{"build": 1, "image": "a"}]}, "sources[0].build must be a string"),
        ({"sources": [{"build": "b"}]}, "exactly one of 'image' or 'family'"),
        ({"sources": [{"image": "a", "family": "debian"}]}, "exactly one of 'image' or 'family'"),
        ({"sources": [{"family": "gentoo"}]}, "sources[0].family 'gentoo' is not one of"),
        ({"sources": [{"image": "a", "ami": {"colour": "x"}}]}, "ami.colour is not a known"),
        ({"sources": [{"image": "a", "ami": {"tags": "x"}}]}, "ami.tags must be a dict"),
    ],
)
def test_mapping_mistakes_name_the_key(raw: object, message: str) -> None:
    with pytest.raises(MappingError) as err:
        parse_mapping(raw, "map.json")
    assert str(err.value).startswith("map.json: ")
    assert message in str(err.value)


def test_mapping_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match=r"Cannot read the rehearsal map .*nope.json"):
        load_mapping(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"sources": [\n  {"image": }\n]}')
    with pytest.raises(MappingError, match=r"bad.json is not valid JSON \(line 2, column"):
        load_mapping(str(bad))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"sources": [{"name": "debian-*", "image": "d:1"}]}))
    assert load_mapping(str(good)).entries[0].image == "d:1"

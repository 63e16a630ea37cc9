"""Which daemon a build uses: DOCKER_HOST, then the docker context, as the docker command
chooses. The contexts are made by the docker command itself, so these tests also pin
down the format of its context store."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from docker_helpers import docker_context, make_certs

from imagesmith.builders.docker.endpoint import (
    DEFAULT_HOST,
    Endpoint,
    EndpointError,
    Tls,
    resolve,
)


def docker_cli(config: Path, *args: str) -> None:
    """The docker command on a configuration folder of the test's own (no daemon needed)."""
    subprocess.run(
        ["docker", "--config", str(config), *args], check=True, capture_output=True, text=True
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "docker-config"
    folder.mkdir()
    docker_context(folder, "remote", "ssh://me@build-host:2222")
    docker_context(folder, "other", "unix:///run/other.sock")
    return folder


def test_without_any_setting_the_local_socket_is_used(tmp_path: Path) -> None:
    assert resolve({"DOCKER_CONFIG": str(tmp_path)}) == Endpoint(DEFAULT_HOST)
    assert DEFAULT_HOST == "unix:///var/run/docker.sock"


def test_the_current_context_chosen_by_docker_context_use(config: Path) -> None:
    docker_cli(config, "context", "use", "remote")
    assert resolve({"DOCKER_CONFIG": str(config)}) == Endpoint(
        "ssh://me@build-host:2222", context="remote"
    )


def test_docker_context_overrides_the_current_context(config: Path) -> None:
    docker_cli(config, "context", "use", "remote")
    env = {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "other"}
    assert resolve(env) == Endpoint("unix:///run/other.sock", context="other")
    env["DOCKER_CONTEXT"] = "default"
    assert resolve(env) == Endpoint(DEFAULT_HOST)


def test_docker_host_overrides_every_context(config: Path) -> None:
    docker_cli(config, "context", "use", "remote")
    env = {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "other", "DOCKER_HOST": "tcp://h:1"}
    assert resolve(env) == Endpoint("tcp://h:1")


def test_the_default_certificate_folder_is_the_configuration_folder(tmp_path: Path) -> None:
    env = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1"}
    assert resolve(env).tls == Tls(str(tmp_path), True)
    env["DOCKER_CERT_PATH"] = "/certs"
    del env["DOCKER_TLS_VERIFY"]
    assert resolve(env).tls == Tls("/certs", False)
    del env["DOCKER_CERT_PATH"]
    assert resolve(env).tls is None


def test_a_context_with_certificates_uses_tls(config: Path, tmp_path: Path) -> None:
    make_certs(tmp_path)
    docker_context(config, "secure", "tcp://127.0.0.1:2376", tmp_path)
    docker_context(config, "lax", "tcp://h:2376,skip-tls-verify=true")
    env = {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "secure"}
    found = resolve(env)
    assert found.host == "tcp://127.0.0.1:2376" and found.context == "secure"
    assert found.tls is not None and found.tls.verify
    # The docker command copied the files into its store, where they are read.
    assert (Path(found.tls.folder) / "ca.pem").read_bytes() == (tmp_path / "ca.pem").read_bytes()
    assert found.tls.folder.startswith(str(config / "contexts" / "tls"))
    env["DOCKER_CONTEXT"] = "lax"
    assert resolve(env).tls == Tls(
        str(config / "contexts" / "tls" / hashlib.sha256(b"lax").hexdigest() / "docker"),
        False,
    )
    env["DOCKER_CONTEXT"] = "other"
    assert resolve(env).tls is None


def test_a_missing_context_is_named_with_what_chose_it(config: Path) -> None:
    env = {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "gone"}
    with pytest.raises(EndpointError) as e:
        resolve(env)
    assert str(e.value) == (
        f'Docker context "gone" (set by DOCKER_CONTEXT) does not exist in {config}/contexts; '
        "create it with `docker context create`, or choose another with `docker context use`."
    )
    (config / "config.json").write_text(json.dumps({"currentContext": "gone"}))
    with pytest.raises(EndpointError, match=r'\(set by "currentContext" in .*config.json\)'):
        resolve({"DOCKER_CONFIG": str(config)})


def test_a_broken_configuration_is_named(config: Path) -> None:
    (config / "config.json").write_text('{"currentContext": "remote",}')
    with pytest.raises(EndpointError) as e:
        resolve({"DOCKER_CONFIG": str(config)})
    assert str(e.value).startswith(f"{config}/config.json is not valid JSON (")
    assert "or set DOCKER_HOST" in str(e.value)
    # DOCKER_HOST needs nothing from the file, as with the docker command.
    assert resolve({"DOCKER_CONFIG": str(config), "DOCKER_HOST": "unix:///x"}).host == "unix:///x"


def test_a_context_without_a_docker_endpoint_is_named(config: Path) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(b"k8s").hexdigest() / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"Name": "k8s", "Metadata": {}, "Endpoints": {}}))
    with pytest.raises(EndpointError, match=r'Docker context "k8s" in .* has no docker endpoint'):
        resolve({"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "k8s"})

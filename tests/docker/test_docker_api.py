"""The Engine API client: daemon addresses (unix, tcp, tls), errors, streamed bodies,
registry credentials from the docker configuration."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import Upload, docker_context, forwarder, free_port, run_build, tls_daemon

from imagesmith.builders.docker import api
from imagesmith.builders.docker.client import Engine, connect
from imagesmith.builders.docker.endpoint import Endpoint

pytestmark = pytest.mark.docker


def test_no_daemon_is_reported_at_once_with_what_to_do(tmp_path: Path) -> None:
    out = run_build({"image": "x", "commit": True}, ["true"],
                    env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})  # fmt: skip
    assert out.rc == 1
    assert (
        f"Cannot connect to the Docker daemon at unix://{tmp_path}/none.sock (no such file or "
        "directory). Is the docker daemon running? Start it with `systemctl start docker`"
    ) in out.output
    assert "Traceback" not in out.output


def test_a_refused_tcp_address_is_explained() -> None:
    port = free_port()
    out = run_build({"image": "x", "commit": True}, env={"DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
    assert out.rc == 1
    assert f"daemon at tcp://127.0.0.1:{port} (connection refused)" in out.output


def test_an_unknown_address_scheme_is_refused() -> None:
    out = run_build({"image": "x", "commit": True}, env={"DOCKER_HOST": "npipe:////./pipe/x"})
    assert out.rc == 1
    assert (
        "Cannot use the Docker daemon at npipe:////./pipe/x: DOCKER_HOST must start with "
        "unix://, tcp:// or ssh://."
    ) in out.output, out.output


def test_a_build_over_tcp(busybox_image: str) -> None:
    with forwarder() as port:
        env = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
        out = run_build(
            {"image": busybox_image, "pull": False, "discard": True}, ["echo over tcp"], env=env
        )
    assert out.rc == 0, out.output
    assert "    docker: over tcp" in out.lines


def test_a_build_over_tls_with_client_certificates(busybox_image: str, tmp_path: Path) -> None:
    server = tls_daemon(tmp_path)
    with forwarder(server) as port:
        env = {"DOCKER_HOST": f"tcp://127.0.0.1:{port}", "DOCKER_TLS_VERIFY": "1",
               "DOCKER_CERT_PATH": str(tmp_path)}  # fmt: skip
        out = run_build({"image": busybox_image, "pull": False, "discard": True},
                        ["echo over tls"], env=env)  # fmt: skip
        assert out.rc == 0, out.output
        assert "    docker: over tls" in out.lines
        # A tmpfs upload streams through tar in the container, with no half-close on TLS.
        (tmp_path / "f.txt").write_text("on tmpfs over tls\n")
        out = run_build(
            {"image": busybox_image, "pull": False, "discard": True, "tmpfs": ["/scratch"]},
            [Upload("f.txt", "/scratch/f.txt"), "cat /scratch/f.txt"], env=env, workdir=tmp_path,
        )  # fmt: skip
        assert out.rc == 0, out.output
        assert "    docker: on tmpfs over tls" in out.lines
        # Without the client certificate the daemon hangs up: said, not a traceback.
        (tmp_path / "key.pem").unlink()
        out = run_build({"image": busybox_image, "pull": False, "discard": True}, env=env)
    assert out.rc == 1
    assert f"Cannot connect to the Docker daemon at tcp://127.0.0.1:{port}" in out.output
    assert "Traceback" not in out.output


def test_daemon_errors_carry_its_message() -> None:
    engine = connect()
    with pytest.raises(api.NotFound) as exc:
        engine.inspect_image("imagesmith-test/absent:404")
    assert exc.value.status == 404
    assert "No such image: imagesmith-test/absent:404" in exc.value.message


def test_a_failing_request_body_raises_its_own_error(
    docker_client: Any, busybox_image: str
) -> None:
    engine = connect()
    cid = docker_client.create_container(busybox_image, entrypoint=["/bin/sh"], tty=True)["Id"]
    try:

        def body() -> Iterator[bytes]:
            yield b"\0" * 512
            raise PermissionError("cannot read the source")

        with pytest.raises(PermissionError, match="cannot read the source"):
            engine.put_archive(cid, "/tmp", body(), {})
        # The client is still usable afterwards (each call has its own connection).
        assert engine.inspect_container(cid)["Id"] == cid
    finally:
        docker_client.remove_container(cid, force=True)


def test_push_uses_credentials_from_the_docker_config(
    docker_client: Any, busybox_image: str, docker_registry_auth: tuple[str, str, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    address, user, password = docker_registry_auth
    config = tmp_path / "docker-config"
    config.mkdir()
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {address: {"auth": encoded}}}))
    repo = f"{address}/imagesmith/from-config-{uuid.uuid4().hex[:6]}"
    chain = [{"type": "docker-tag", "repository": repo, "tags": ["c1"]}, {"type": "docker-push"}]
    out = run_build({"image": busybox_image, "pull": False, "commit": True}, ["true"], [chain],
                    env={"DOCKER_CONFIG": str(config)})  # fmt: skip
    assert out.rc == 0, out.output
    assert f"    docker (docker-push): Pushing: {repo}:c1" in out.lines
    docker_client.remove_image(out.image_id, force=True)
    # Without the stored credentials the registry refuses the same push.
    (config / "config.json").write_text("{}")
    out = run_build({"image": busybox_image, "pull": False, "commit": True}, ["true"], [chain],
                    env={"DOCKER_CONFIG": str(config)})  # fmt: skip
    assert out.rc == 1
    assert "no basic auth credentials" in out.output or "unauthorized" in out.output
    docker_client.remove_image(out.image_id, force=True)


def test_engine_is_closed_without_error() -> None:
    engine: Engine = connect()
    engine.close()
    assert engine.api.version == "1.41"


def test_a_daemon_that_refuses_the_api_version_is_asked_for_its_own(tmp_path: Path) -> None:
    """An engine older (or much newer) than API 1.41 answers 400 with "client version";
    the client then reads the daemon's range and repeats the call. No such engine is
    installed here, so a socket server plays its documented answers."""
    import http.server
    import socketserver

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            if self.path == "/version":
                self.reply(200, {"ApiVersion": "1.40", "MinAPIVersion": "1.12"})
            elif self.path.startswith("/v1.41/"):
                self.reply(400, {"message": "client version 1.41 is too new. Maximum "
                                            "supported API version is 1.40"})  # fmt: skip
            else:
                self.reply(200, {"Id": "sha256:old", "Config": {}})

        def reply(self, status: int, data: object) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    sock = tmp_path / "old.sock"
    with Server(str(sock), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        engine = Engine(api.Client(Endpoint(f"unix://{sock}")))
        assert engine.inspect_image("busybox")["Id"] == "sha256:old"
        assert engine.inspect_image("busybox")["Id"] == "sha256:old"
        server.shutdown()
    assert seen == ["/v1.41/images/busybox/json", "/version", "/v1.40/images/busybox/json",
                    "/v1.40/images/busybox/json"]  # fmt: skip


def test_push_uses_a_credential_helper(
    docker_client: Any, busybox_image: str, docker_registry_auth: tuple[str, str, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    """``credHelpers`` names a ``docker-credential-<name>`` program that answers ``get``
    with the server on stdin, as ``docker login`` with a credential store sets it up."""
    address, user, password = docker_registry_auth
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-imagesmith-test"
    answer = json.dumps({"ServerURL": address, "Username": user, "Secret": password})
    helper.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] && [ "$(cat)" = "{address}" ] && echo \'{answer}\' && exit 0\n'
        "echo 'credentials not found in native keychain'; exit 1\n"
    )
    helper.chmod(0o755)
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credHelpers": {address: "imagesmith-test"}}))
    repo = f"{address}/imagesmith/from-helper-{uuid.uuid4().hex[:6]}"
    chain = [{"type": "docker-tag", "repository": repo, "tags": ["h1"]}, {"type": "docker-push"}]
    env = {"DOCKER_CONFIG": str(config), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = run_build({"image": busybox_image, "pull": False, "commit": True}, ["true"], [chain],
                    env=env)  # fmt: skip
    assert out.rc == 0, out.output
    assert f"    docker (docker-push): Pushing: {repo}:h1" in out.lines
    assert password not in out.output
    docker_client.remove_image(out.image_id, force=True)


def test_unusable_tls_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    (tmp_path / "key.pem").write_text("not a key\n")
    env = {"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_CERT_PATH": str(tmp_path)}
    out = run_build({"image": "x", "commit": True}, env=env)
    assert out.rc == 1
    assert (
        "Cannot use the Docker daemon at tcp://127.0.0.1:2376: cannot use the TLS "
        f"certificates in {tmp_path}: " in out.output
    )
    assert "Traceback" not in out.output


def test_a_build_on_the_daemon_of_the_current_docker_context(
    busybox_image: str, tmp_path: Path
) -> None:
    """The context's own certificates reach a daemon that requires a client certificate:
    the build can only succeed on the context's endpoint."""
    certs, config = tmp_path / "certs", tmp_path / "docker-config"
    certs.mkdir()
    accepted: list[socket.socket] = []
    with forwarder(tls_daemon(certs), accepted) as port:
        docker_context(config, "builder", f"tcp://127.0.0.1:{port}", certs)
        (config / "config.json").write_text(json.dumps({"currentContext": "builder"}))
        out = run_build(
            {"image": busybox_image, "pull": False, "discard": True},
            ["echo on the daemon of the context"],
            env={"DOCKER_CONFIG": str(config)},
        )
    assert out.rc == 0, out.output
    assert "    docker: on the daemon of the context" in out.lines
    assert accepted, "the build did not go through the context's endpoint"


def test_an_unreachable_docker_context_is_named(tmp_path: Path) -> None:
    port = free_port()
    docker_context(tmp_path, "gone-away", f"tcp://127.0.0.1:{port}")
    env = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "gone-away"}
    out = run_build({"image": "x", "commit": True}, env=env)
    assert out.rc == 1
    assert (
        f"Cannot connect to the Docker daemon at tcp://127.0.0.1:{port} (connection refused), "
        'the endpoint of docker context "gone-away". Check it with `docker --context gone-away '
        "version`, or choose another with `docker context use`."
    ) in " ".join(out.output.split()), out.output
    assert "Traceback" not in out.output


def test_a_docker_context_that_does_not_exist_stops_the_build(tmp_path: Path) -> None:
    out = run_build({"image": "x", "commit": True},
                    env={"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "nowhere"})  # fmt: skip
    assert out.rc == 1
    assert (
        'Docker context "nowhere" (set by DOCKER_CONTEXT) does not exist in '
        f"{tmp_path}/contexts; create it with `docker context create`"
    ) in " ".join(out.output.split()), out.output
    assert "Traceback" not in out.output

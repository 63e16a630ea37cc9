"""consul_key, vault and aws_secretsmanager in the variables section, over HTTP.

AWS Secrets Manager is served by moto's real HTTP server. Consul and Vault cannot be
installed from the package registries this project uses, so a loopback HTTP server
answers the two endpoints the functions call (``GET /v1/kv/<key>`` and
``GET /v1/<path>``) with the response bodies those services document.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from imagesmith.template.render import RenderContext, RenderError, render


def r(text: str) -> str:
    return render(text, RenderContext(allow_env=True, in_variables=True))


def err(text: str) -> str:
    with pytest.raises(RenderError) as e:
        r(text)
    return str(e.value)


def calling(fn: str, at: str, message: str) -> str:
    return f'template: root:1:2: executing "root" at <{at}>: error calling {fn}: {message}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a loopback Consul/Vault HTTP endpoint ---------------------------------------------

CONSUL_KV = {"app/greeting": "hi there", "app/empty": ""}
VAULT = {
    "secret/data/app": (200, {"data": {"data": {"password": "s3cr3t", "port": 5432}}}),
    "kv1/app": (200, {"data": {"password": "v1pass"}}),
    "kv1/warn": (200, {"data": {}, "warnings": ["first", "second"]}),
    "secret/data/denied": (403, {"errors": ["permission denied"]}),
}
TOKEN = "root-token"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *_args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/v1/kv/"):
            key = path[len("/v1/kv/") :]
            if key not in CONSUL_KV:
                return self._send(404, None)
            value = base64.b64encode(CONSUL_KV[key].encode()).decode() or None
            return self._send(200, [{"Key": key, "Value": value}])
        if self.headers.get("X-Vault-Token") != TOKEN:
            return self._send(403, {"errors": ["permission denied"]})
        status, body = VAULT.get(path[len("/v1/") :], (404, {"errors": []}))
        return self._send(status, body)


@pytest.fixture(scope="module")
def http_addr() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_consul_key(http_addr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUL_HTTP_ADDR", http_addr)
    assert r('{{ consul_key "app/greeting" }}') == "hi there"
    assert err('{{consul_key "app/none"}}') == calling(
        "consul_key", 'consul_key "app/none"', "key does not exist at the given path: app/none"
    )
    assert err('{{consul_key "app/empty"}}') == calling(
        "consul_key", 'consul_key "app/empty"', "value is empty at path app/empty"
    )


def test_consul_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv("CONSUL_HTTP_ADDR", f"127.0.0.1:{port}")
    assert err('{{consul_key "k"}}') == calling(
        "consul_key",
        'consul_key "k"',
        f'error reading consul key: Get "http://127.0.0.1:{port}/v1/kv/k": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused",
    )


def test_vault(http_addr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", f"http://{http_addr}")
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    assert r('{{ vault "secret/data/app" "password" }}') == "s3cr3t"
    assert r('{{ vault "/kv1/app" "password" }}') == "v1pass"


@pytest.mark.parametrize(
    ("path", "key", "message"),
    [
        ("secret/data/none", "k", "Vault Secret does not exist at the given path."),
        ("kv1/warn", "k", "Vault data was empty at the given path. Warnings: first; second"),
        ("secret/data/app", "nope", "interface conversion: interface {} is nil, not string"),
        (
            "secret/data/app",
            "port",
            "interface conversion: interface {} is json.Number, not string",
        ),
    ],
)
def test_vault_errors(
    path: str, key: str, message: str, http_addr: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", f"http://{http_addr}")
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    text = f'{{{{vault "{path}" "{key}"}}}}'
    assert err(text) == calling("vault", text[2:-2], message)


def test_vault_api_error(http_addr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", f"http://{http_addr}")
    monkeypatch.setenv("VAULT_TOKEN", TOKEN)
    assert err('{{vault "secret/data/denied" "k"}}') == calling(
        "vault",
        'vault "secret/data/denied" "k"',
        "Error reading vault secret: Error making API request.\n\n"
        f"URL: GET http://{http_addr}/v1/secret/data/denied\nCode: 403. Errors:\n\n"
        "* permission denied",
    )


def test_vault_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    assert err('{{vault "a" "b"}}') == calling(
        "vault",
        'vault "a" "b"',
        "Must set VAULT_TOKEN env var in order to use vault template function",
    )


# --- AWS Secrets Manager on moto's server ----------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    exe = shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto_server is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    import boto3

    client = boto3.client("secretsmanager")
    for name, value in {
        "plain": "just text",
        "single": json.dumps({"user": "admin"}),
        "multi": json.dumps({"user": "admin", "password": "pw"}),
    }.items():
        with contextlib.suppress(client.exceptions.ResourceExistsException):
            client.create_secret(Name=name, SecretString=value)
    return client


@pytest.mark.parametrize(
    ("text", "out"),
    [
        ('{{ aws_secretsmanager "plain" }}', "just text"),
        ('{{ aws_secretsmanager "single" }}', "admin"),
        ('{{ aws_secretsmanager "multi" "password" }}', "pw"),
    ],
)
def test_aws_secretsmanager(text: str, out: str, aws: Any) -> None:
    assert r(text) == out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{{aws_secretsmanager "multi"}}',
            "Error getting secret: Secret has multiple values and no key was set",
        ),
        ('{{aws_secretsmanager "multi" "nope"}}', "Error getting secret: No secret found"),
        ("{{aws_secretsmanager}}", "secret name must be provided"),
        (
            '{{aws_secretsmanager "a" "b" "c"}}',
            "only secret name and optional secret key can be provided.",
        ),
    ],
)
def test_aws_secretsmanager_errors(text: str, message: str, aws: Any) -> None:
    assert err(text) == calling("aws_secretsmanager", text[2:-2], message)


def test_aws_secretsmanager_missing_secret(aws: Any) -> None:
    message = err('{{aws_secretsmanager "absent"}}')
    assert message.startswith(
        calling("aws_secretsmanager", 'aws_secretsmanager "absent"', "Error getting secret: ")
        + "ResourceNotFoundException: "
    )
    assert re.search(r"\n\tstatus code: \d+, request id: \S+$", message)

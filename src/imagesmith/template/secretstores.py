"""The template functions that read secrets stores: consul_key, vault and
aws_secretsmanager. Packer allows them only in the variables section.

Consul and Vault are read over their HTTP APIs with the standard library, configured
by the same environment variables as their Go clients (CONSUL_HTTP_ADDR,
CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL; VAULT_ADDR, VAULT_TOKEN). AWS Secrets Manager goes
through boto3, imported only when a template calls the function.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote as urlquote
from urllib.parse import urlsplit

from imagesmith.golang import quote
from imagesmith.template.gobuiltins import FuncError


def _get(url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
    """GET ``url``; a failure to connect is worded as Go's net/http words it."""
    # urllib.request pulls in ssl, http.client and email: only load it when a
    # template actually reads a secret store, not on every variables pass.
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, headers=dict(headers))
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ConnectionRefusedError):
            host = urlsplit(url).netloc
            detail = f"dial tcp {host}: connect: connection refused"
        else:
            detail = str(getattr(reason, "strerror", None) or reason)
        raise FuncError(f"Get {quote(url)}: {detail}") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


# --- Consul --------------------------------------------------------------------------


def _consul_base() -> str:
    addr = os.environ.get("CONSUL_HTTP_ADDR") or "127.0.0.1:8500"
    if "://" in addr:
        return addr.rstrip("/")
    ssl = os.environ.get("CONSUL_HTTP_SSL", "").lower() in ("1", "true")
    return ("https://" if ssl else "http://") + addr.rstrip("/")


def consul_key(key: str) -> str:
    url = f"{_consul_base()}/v1/kv/{urlquote(key.lstrip('/'), safe='/')}"
    headers = {}
    if token := os.environ.get("CONSUL_HTTP_TOKEN"):
        headers["X-Consul-Token"] = token
    try:
        status, body = _get(url, headers)
    except FuncError as e:
        raise FuncError(f"error reading consul key: {e}") from None
    if status == 404:
        raise FuncError(f"key does not exist at the given path: {key}")
    entries = _json(body)
    if status != 200 or not isinstance(entries, list) or not entries:
        text = body.decode("utf-8", "replace")
        raise FuncError(f"error reading consul key: Unexpected response code: {status} ({text})")
    raw = entries[0].get("Value") or ""
    value = base64.b64decode(raw).decode("utf-8", "surrogateescape") if raw else ""
    if value == "":
        raise FuncError(f"value is empty at path {key}")
    return value


# --- Vault ---------------------------------------------------------------------------


def _go_json_type(v: Any) -> str:
    """The Go type of a value Vault's client decoded (numbers stay json.Number)."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "json.Number"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return "[]interface {}"


def vault(path: str, key: str) -> str:
    token = os.environ.get("VAULT_TOKEN", "")
    if not token:
        raise FuncError("Must set VAULT_TOKEN env var in order to use vault template function")
    base = (os.environ.get("VAULT_ADDR") or "https://127.0.0.1:8200").rstrip("/")
    url = f"{base}/v1/{path.lstrip('/')}"
    try:
        status, raw = _get(url, {"X-Vault-Token": token})
    except FuncError as e:
        raise FuncError(f"Error reading vault secret: {e}") from None
    body = _json(raw)
    if status == 404 and not (
        isinstance(body, dict) and (body.get("data") or body.get("warnings"))
    ):
        raise FuncError("Vault Secret does not exist at the given path.")
    if status >= 400:
        errors = body.get("errors") or [] if isinstance(body, dict) else []
        listed = "".join(f"\n* {e}" for e in errors)
        raise FuncError(
            "Error reading vault secret: Error making API request.\n\n"
            f"URL: GET {url}\nCode: {status}. Errors:\n{listed}"
        )
    if not isinstance(body, dict):
        raise FuncError("Vault Secret does not exist at the given path.")
    data = body.get("data") or {}
    if "data" in data:  # KV version 2 nests the secret one level down
        inner = data["data"]
        value = inner.get(key) if isinstance(inner, dict) else None
    elif key in data:  # KV version 1
        value = data[key]
    else:
        warnings = body.get("warnings") or []
        raise FuncError("Vault data was empty at the given path. Warnings: " + "; ".join(warnings))
    if not isinstance(value, str):
        # Packer asserts the value is a string; Go's panic is reported as the error.
        raise FuncError(
            f"interface conversion: interface {{}} is {_go_json_type(value)}, not string"
        )
    return value


# --- AWS Secrets Manager -------------------------------------------------------------


def aws_secretsmanager(*secret: str) -> str:
    if not secret:
        raise FuncError("secret name must be provided")
    if len(secret) > 2:
        raise FuncError("only secret name and optional secret key can be provided.")
    name = secret[0]
    key = secret[1] if len(secret) == 2 else ""
    try:
        value = _get_secret_string(name)
        return _secret_value(value, key)
    except FuncError as e:
        raise FuncError(f"Error getting secret: {e}") from None


def _get_secret_string(name: str) -> str:
    import boto3  # only templates that use this function pay for the import
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.session.Session().client("secretsmanager")
        resp = client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    except ClientError as e:
        # Worded as the Go SDK words a service error.
        err = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        raise FuncError(
            f"{err.get('Code', 'Error')}: {err.get('Message', '')}\n"
            f"\tstatus code: {meta.get('HTTPStatusCode', 0)}, "
            f"request id: {meta.get('RequestId', '')}"
        ) from None
    except BotoCoreError as e:
        raise FuncError(str(e)) from None
    value = resp.get("SecretString")
    if value is None:
        raise FuncError("Secret is not string")
    return str(value)


def _secret_value(secret: str, key: str) -> str:
    try:
        parsed = json.loads(secret)
    except ValueError:
        return secret  # a plain-text secret is returned as it is
    if not isinstance(parsed, dict):
        raise FuncError(
            f"json: cannot unmarshal {_json_kind(parsed)} into Go value of type map[string]string"
        )
    for v in parsed.values():
        if not isinstance(v, str) and v is not None:
            raise FuncError(f"json: cannot unmarshal {_json_kind(v)} into Go value of type string")
    values = {k: v or "" for k, v in parsed.items()}
    if key == "" and len(values) > 1:
        raise FuncError("Secret has multiple values and no key was set")
    if key == "":
        return next(iter(values.values()), "")
    if key in values:
        return values[key]
    raise FuncError("No secret found")


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"

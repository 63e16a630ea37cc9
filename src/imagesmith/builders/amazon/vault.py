"""``vault_aws_engine``: AWS credentials issued by HashiCorp Vault's AWS secrets engine.

Read with Vault's HTTP API (``VAULT_ADDR``, ``VAULT_TOKEN``), when the build starts:
Packer reads them while validating, which makes ``validate`` talk to Vault.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

from imagesmith.builders.amazon.access import VaultAWSEngineOptions
from imagesmith.errors import BuildError


def read_credentials(options: VaultAWSEngineOptions) -> tuple[str, str, str]:
    """(access key, secret key, session token) from Vault; blocking."""
    address = os.environ.get("VAULT_ADDR", "https://127.0.0.1:8200").rstrip("/")
    token = os.environ.get("VAULT_TOKEN", "")
    engine = options.engine_name or "aws"
    kind = "sts" if options.role_arn else "creds"
    url = f"{address}/v1/{engine}/{kind}/{urllib.parse.quote(options.name)}"
    query = {}
    if options.role_arn:
        query["role_arn"] = options.role_arn
    if options.ttl:
        query["ttl"] = options.ttl
    if query:
        url += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url, headers={"X-Vault-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise BuildError(f"Error reading vault secret: {e}") from None
    data = body.get("data") or {}
    if not data.get("access_key") or not data.get("secret_key"):
        raise BuildError("Error reading vault secret: the answer holds no AWS credentials")
    return data["access_key"], data["secret_key"], data.get("security_token") or ""

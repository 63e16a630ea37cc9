"""ECR credentials for ``ecr_login``, from moto's ECR over HTTP.

No ECR registry can be reached from the test machines, so the push itself is tested
against a loopback registry elsewhere (``test_docker_postprocessors.py``); here the
token comes from a real ECR API (moto's), through ``AWS_ENDPOINT_URL_ECR``.
"""

from __future__ import annotations

import asyncio
import base64

import pytest

from fixtures.moto import MotoServer
from imagesmith.builders.docker.ecr import AwsAccessConfig, ecr_credentials
from imagesmith.errors import BuildError

SERVER = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_the_token_is_fetched_in_the_registrys_region_and_decoded(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", moto_server.endpoint)
    access = AwsAccessConfig(aws_access_key="AKIDECRTEST", aws_secret_key="ecr-test-secret")
    user, password = asyncio.run(ecr_credentials(SERVER, access))

    import boto3

    ecr = boto3.client(
        "ecr", region_name="eu-west-1", endpoint_url=moto_server.endpoint,
        aws_access_key_id="AKIDECRTEST", aws_secret_access_key="ecr-test-secret",
    )  # fmt: skip
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert (user, password) == tuple(base64.b64decode(token).decode().split(":", 1))
    assert user == "AWS" and password


def test_an_unreachable_ecr_fails_saying_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    from fixtures.moto import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", f"http://127.0.0.1:{free_port()}")
    access = AwsAccessConfig(aws_access_key="AKIDECRTEST", aws_secret_key="ecr-test-secret")
    with pytest.raises(BuildError) as caught:
        asyncio.run(ecr_credentials(SERVER, access))
    message = str(caught.value)
    assert message.startswith(f"Error fetching ECR credentials: could not get a token for {SERVER}")
    assert "log in with login_username/login_password instead" in message
    assert "ecr-test-secret" not in message

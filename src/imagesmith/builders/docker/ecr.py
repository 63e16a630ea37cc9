"""Amazon ECR credentials for ``ecr_login`` (docker builder and docker-push).

The registry password is a short-lived token from ECR's GetAuthorizationToken, in the
region named by the registry host ``ACCOUNT.dkr.ecr.REGION.amazonaws.com``. boto3 is
imported only here, when a build actually logs in. Endpoints can be redirected with
the standard ``AWS_ENDPOINT_URL_ECR`` variable.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from imagesmith.config.fields import opt
from imagesmith.errors import BuildError

_ECR_HOST = re.compile(
    r"^(?:https?://)?(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/?$"
)


@dataclass
class AwsAccessConfig:
    """Packer's ``AwsAccessConfig`` keys, squashed into the docker components' configs."""

    aws_access_key: str = opt("", secret=True)
    aws_secret_key: str = opt("", secret=True)
    aws_token: str = opt("", secret=True)
    aws_profile: str = ""


def ecr_region(server: str) -> str | None:
    m = _ECR_HOST.match(server)
    return m.group(2) if m else None


def check_server(server: str) -> str | None:
    """The problem with ``login_server`` for ECR, or None."""
    if not server:
        return "ECR login requires login server to be provided."
    if ecr_region(server) is None:
        return (
            f"login_server {server!r} is not an Amazon ECR registry address; ecr_login "
            "needs one of the form ACCOUNT.dkr.ecr.REGION.amazonaws.com"
        )
    return None


async def ecr_credentials(server: str, aws: AwsAccessConfig) -> tuple[str, str]:
    """(username, password) for ``docker login`` to the ECR registry ``server``."""
    region = ecr_region(server)
    if region is None:
        raise BuildError(check_server(server) or "invalid ECR login server")

    def fetch() -> tuple[str, str]:
        import boto3
        from botocore.config import Config

        session = boto3.Session(
            aws_access_key_id=aws.aws_access_key or None,
            aws_secret_access_key=aws.aws_secret_key or None,
            aws_session_token=aws.aws_token or None,
            profile_name=aws.aws_profile or None,
            region_name=region,
        )
        config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})
        ecr = session.client("ecr", config=config)
        data = ecr.get_authorization_token()["authorizationData"][0]
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        return user, password

    import asyncio  # here, not at import: validate never needs it

    try:
        return await asyncio.to_thread(fetch)
    except BuildError:
        raise
    except Exception as e:
        raise BuildError(
            f"Error fetching ECR credentials: could not get a token for {server} from Amazon "
            f"ECR in {region} ({type(e).__name__}: {e}). Check the network path to ECR and "
            "the AWS credentials, or log in with login_username/login_password instead."
        ) from None

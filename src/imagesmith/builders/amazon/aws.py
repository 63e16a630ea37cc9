"""boto3's clients for a build, and the one way the steps call them.

Everything here runs on the build path only: botocore (the core of boto3, whose
clients these are) is imported the first time a build needs a client, never by
``validate``. Clients are cached for the whole process (a
botocore client is thread-safe and costs ~0.15 s to create), so parallel builds with
the same credentials share them.

``AwsSession.call`` runs one API operation in a worker thread with the retry policy
of ``retry``. botocore's own retries are switched off so that every wait between
attempts is an asyncio sleep: an interrupt cuts it short at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from imagesmith.builders.amazon.access import AccessConfig
from imagesmith.builders.amazon.retry import DEFAULT_CALL_TRIES, AwsFailure, RetryBudget
from imagesmith.errors import BuildError

if TYPE_CHECKING:
    from imagesmith.rehearse.seam import RehearsalTarget

log = logging.getLogger(__name__)

# API calls block a thread each; parallel builds need more threads than asyncio's
# default executor has (cores + 4).
_EXECUTOR = ThreadPoolExecutor(max_workers=48, thread_name_prefix="aws")
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_SESSIONS: dict[tuple[Any, ...], Any] = {}
# Held while a session or client is made, so that parallel builds wait for the first
# one instead of each making their own (0.15 s of CPU each).
_CREATE_LOCK = threading.RLock()


class AwsError(BuildError):
    """An AWS API error, worded as aws-sdk-go words it (Packer's messages embed that)."""

    def __init__(self, text: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(text)
        self.code = code
        self.status = status


def go_sdk_text(code: str, message: str, status: int, request_id: str) -> str:
    """``Code: message\\n\\tstatus code: 400, request id: ...`` (aws-sdk-go's Error())."""
    text = f"{code}: {message}" if message else code
    if status:
        text += f"\n\tstatus code: {status}, request id: {request_id}"
    return text


def _translate(exc: BaseException) -> AwsError:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code = str(err.get("Code", "Unknown"))
        status = int(meta.get("HTTPStatusCode", 0) or 0)
        text = go_sdk_text(code, str(err.get("Message", "")), status, meta.get("RequestId", ""))
        return AwsError(text, code=code, status=status)
    if isinstance(exc, BotoCoreError):
        return AwsError(str(exc), code=type(exc).__name__)
    return AwsError(str(exc) or type(exc).__name__, code=type(exc).__name__)


def _failure(exc: AwsError, original: BaseException) -> AwsFailure:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    connection = isinstance(original, BotoConnectionError | HTTPClientError)
    return AwsFailure(exc.code, exc.status, connection=connection)


class CallCounter:
    """How many API calls of each operation a build made (for the benchmarks' report)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, operation: str) -> None:
        with self._lock:
            self.counts[operation] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class AwsSession:
    """The clients and credentials of one build.

    ``rehearsal``: when a rehearsal is active every client goes to its emulator with
    its credentials, whatever the template says, so nothing can reach AWS.
    """

    def __init__(self, access: AccessConfig, *, rehearsal: RehearsalTarget | None = None) -> None:
        self.access = access
        self.region = access.effective_region()
        self.rehearsal = rehearsal
        self.counter = CallCounter()
        self._boto_session: Any = None
        self._static_credentials: dict[str, str] | None = None

    # -- credentials ------------------------------------------------------------------

    def use_credentials(self, access_key: str, secret_key: str, token: str = "") -> None:
        """Credentials obtained at run time (Vault), in place of the template's."""
        self._static_credentials = {
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
        }
        if token:
            self._static_credentials["aws_session_token"] = token
        self._boto_session = None

    def _session(self) -> Any:
        with _CREATE_LOCK:
            if self._boto_session is None:
                self._boto_session = self._make_session()
            return self._boto_session

    def _session_key(self) -> tuple[Any, ...]:
        a = self.access
        creds = self._static_credentials or {}
        return (
            a.access_key,
            a.secret_key,
            a.token,
            a.profile,
            a.shared_credentials_file,
            a.skip_metadata_api_check,
            a.mfa_code,
            tuple(sorted(creds.items())),
            repr(a.assume_role),
            self.rehearsal.endpoint_url if self.rehearsal else None,
        )

    def _make_session(self) -> Any:
        """A botocore session (boto3's core: the same clients, without boto3's
        resource layer, which costs 0.1 s to import and is not used here)."""
        key = self._session_key()
        with _CREATE_LOCK:
            cached = _SESSIONS.get(key)
            if cached is None:
                cached = _SESSIONS[key] = self._new_session()
            return cached

    def _new_session(self) -> Any:
        import botocore.session

        from imagesmith.builders.amazon import models

        a = self.access
        core = botocore.session.Session()
        if self.rehearsal is not None:
            creds = self.rehearsal.credentials()
            core.set_credentials(creds["aws_access_key_id"], creds["aws_secret_access_key"])
        elif self._static_credentials:
            c = self._static_credentials
            core.set_credentials(
                c["aws_access_key_id"], c["aws_secret_access_key"], c.get("aws_session_token")
            )
        elif a.access_key:
            core.set_credentials(a.access_key, a.secret_key, a.token or None)
        else:
            if a.shared_credentials_file:
                core.set_config_variable(
                    "credentials_file", os.path.expanduser(a.shared_credentials_file)
                )
            if a.skip_metadata_api_check:
                core.get_component("credential_provider").remove("iam-role")
            if a.mfa_code:
                _answer_mfa_prompts(core, a.mfa_code)
        if a.profile and self.rehearsal is None:
            # After credentials_file: the profile is looked up in it.
            core.set_config_variable("profile", a.profile)
        models.install(core)
        if self.rehearsal is None and a.assume_role.role_arn:
            _assume_role(core, a, self.region, self._client_config())
        return core

    # -- clients ------------------------------------------------------------------------

    def _client_config(self) -> Any:
        from botocore.config import Config

        return Config(
            retries={"total_max_attempts": 1},
            max_pool_connections=64,
            connect_timeout=20,
            read_timeout=120,
            user_agent_extra="imagesmith",
        )

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.region
        endpoint = self._endpoint(service)
        verify = not self.access.insecure_skip_tls_verify
        key = (service, region, endpoint, verify, self._session_key())
        cached = _CLIENTS.get(key)
        if cached is not None:
            return cached
        with _CREATE_LOCK:
            cached = _CLIENTS.get(key)
            if cached is None:
                cached = _CLIENTS[key] = self._session().create_client(
                    service,
                    region_name=region,
                    endpoint_url=endpoint,
                    verify=verify,
                    config=self._client_config(),
                )
            return cached

    def _endpoint(self, service: str) -> str | None:
        if self.rehearsal is not None:
            return self.rehearsal.endpoint_url
        if service == "ec2" and self.access.custom_endpoint_ec2:
            endpoint = self.access.custom_endpoint_ec2
            # Packer accepts a bare host name.
            return endpoint if "://" in endpoint else f"https://{endpoint}"
        # botocore reads AWS_ENDPOINT_URL_<SERVICE> and AWS_ENDPOINT_URL itself.
        return None

    def ec2(self, region: str | None = None) -> Any:
        return self.client("ec2", region)

    async def warm(self, services: tuple[str, ...] = ("ec2",)) -> None:
        """Create the clients (in a worker thread); ``AwsError`` if botocore cannot."""
        loop = asyncio.get_running_loop()
        for service in services:
            try:
                await loop.run_in_executor(_EXECUTOR, self.client, service)
            except Exception as exc:
                raise _translate(exc) from None

    # -- calls --------------------------------------------------------------------------

    async def call(
        self,
        operation: str,
        *,
        service: str = "ec2",
        region: str | None = None,
        retry_codes: frozenset[str] | tuple[str, ...] = (),
        tries: int = DEFAULT_CALL_TRIES,
        retry_if: Callable[[AwsError], bool] | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Run one API operation (``operation`` is the boto3 method name).

        ``retry_codes`` / ``retry_if``: errors this call retries on its own budget of
        ``tries`` attempts (eventual consistency). Throttling, 5xx answers and dropped
        connections are retried up to ``max_retries`` times.
        """
        loop = asyncio.get_running_loop()
        try:
            client = await loop.run_in_executor(_EXECUTOR, self.client, service, region)
        except Exception as exc:
            # Credentials or configuration that botocore cannot use (a missing profile...).
            raise _translate(exc) from None
        codes = frozenset(retry_codes)
        budget = RetryBudget(sdk_retries=self.access.retries, call_tries=tries)
        method = getattr(client, operation)
        while True:
            self.counter.add(operation)
            started = time.monotonic()
            try:
                return dict(await loop.run_in_executor(_EXECUTOR, lambda: method(**params)))
            except Exception as exc:
                error = _translate(exc)
                log.debug(
                    "%s %s failed after %.3fs: %s",
                    region or self.region,
                    operation,
                    time.monotonic() - started,
                    error.code,
                )
                if retry_if is not None and retry_if(error):
                    codes = codes | {error.code}
                delay = budget.next_delay(_failure(error, exc), codes)
                if delay is None:
                    if self.access.decode_authorization_messages:
                        error = await self._decoded(error)
                    raise error from None
                await asyncio.sleep(delay)

    async def _decoded(self, error: AwsError) -> AwsError:
        """``decode_authorization_messages``: the readable text of an encoded
        authorization failure (sts:DecodeAuthorizationMessage), in the error."""
        marker = "Encoded authorization failure message: "
        text = str(error)
        if marker not in text:
            return error
        encoded = text.split(marker, 1)[1].split()[0]
        try:
            answer = await self.call(
                "decode_authorization_message", service="sts", EncodedMessage=encoded
            )
        except AwsError:
            return error
        decoded = str(answer.get("DecodedMessage", ""))
        return AwsError(text.replace(encoded, decoded), code=error.code, status=error.status)


async def finish_despite_cancel(coro: Any) -> Any:
    """Await ``coro`` to its end even if the caller is cancelled meanwhile.

    For calls that create something: if an interrupt arrives while the request is in
    flight, the resource may exist anyway, and only the answer tells its id. The
    answer is awaited (and recorded by ``coro``) before the cancellation goes on.
    """
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            try:
                await task
            except Exception:
                log.debug("a create call interrupted by cancellation failed", exc_info=True)
        raise


def _answer_mfa_prompts(core: Any, code: str) -> None:
    """Give ``mfa_code`` to the shared-config assume-role provider instead of a prompt."""
    resolver = core.get_component("credential_provider")
    provider = resolver.get_provider("assume-role")
    if provider is not None:
        provider._prompter = lambda _prompt: code


def _assume_role(core: Any, access: AccessConfig, region: str, config: Any) -> None:
    """Replace ``core``'s credentials with ``assume_role``'s, refreshed before expiry."""
    from botocore.credentials import RefreshableCredentials

    role = access.assume_role
    sts = core.create_client("sts", region_name=region, config=config)

    def fetch() -> Mapping[str, str]:
        params: dict[str, Any] = {
            "RoleArn": role.role_arn,
            "RoleSessionName": role.session_name or f"imagesmith-{int(time.time())}",
        }
        if role.duration_seconds:
            params["DurationSeconds"] = role.duration_seconds
        if role.external_id:
            params["ExternalId"] = role.external_id
        if role.policy:
            params["Policy"] = role.policy
        if role.policy_arns:
            params["PolicyArns"] = [{"arn": arn} for arn in role.policy_arns]
        if role.tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in role.tags.items()]
        if role.transitive_tag_keys:
            params["TransitiveTagKeys"] = role.transitive_tag_keys
        creds = sts.assume_role(**params)["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    # botocore has no public setter for refreshable credentials; boto3 does the same.
    core._credentials = RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="assume-role"
    )

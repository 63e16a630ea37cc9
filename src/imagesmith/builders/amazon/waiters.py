"""Waiting for EC2 resources to reach a state, with Packer 1.6.6's timings.

The first poll happens at once, then every ``delay`` seconds, ``max_attempts`` polls in
all (aws-sdk-go's waiters, which boto3 shares). Packer lets ``aws_polling`` or the
``AWS_POLL_DELAY_SECONDS`` / ``AWS_MAX_ATTEMPTS`` / ``AWS_TIMEOUT_SECONDS`` variables
override the instance, image and snapshot waiters, and gives the image waiter 120
attempts (30 minutes) when nothing is overridden. Sleeps are asyncio sleeps, so an
interrupt ends a wait at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from imagesmith.builders.amazon.access import PollingConfig
from imagesmith.builders.amazon.aws import AwsError, AwsSession
from imagesmith.builders.amazon.state import Json

log = logging.getLogger(__name__)

T = TypeVar("T")
Verdict = Literal["success", "failure", "retry"]

EXCEEDED = "ResourceNotReady: exceeded wait attempts"
FAILED = "ResourceNotReady: failed waiting for successful resource state"

SDK_DELAY = 15.0
SDK_ATTEMPTS = 40
IMAGE_DEFAULT_ATTEMPTS = 120
DEPRECATED_TIMEOUT_DELAY = 2.0


class WaiterError(Exception):
    """A wait that ended without success; ``str()`` is aws-sdk-go's text."""


@dataclass(frozen=True)
class WaitPolicy:
    delay: float
    max_attempts: int


def policy(polling: PollingConfig, *, image: bool = False) -> WaitPolicy:
    """The delay and attempts of an overridable waiter (Packer's getWaiterOptions)."""
    delay = float(polling.delay_seconds or _env_int("AWS_POLL_DELAY_SECONDS"))
    attempts = polling.max_attempts or _env_int("AWS_MAX_ATTEMPTS")
    if not attempts:
        timeout = _env_int("AWS_TIMEOUT_SECONDS")
        if timeout:
            # Deprecated variable: its delay defaults to 2 s.
            attempts = max(1, int(timeout // (delay or DEPRECATED_TIMEOUT_DELAY)))
            delay = delay or DEPRECATED_TIMEOUT_DELAY
    if not delay and not attempts and image:
        return WaitPolicy(SDK_DELAY, IMAGE_DEFAULT_ATTEMPTS)
    return WaitPolicy(delay or SDK_DELAY, attempts or SDK_ATTEMPTS)


def _env_int(name: str) -> int:
    try:
        return max(0, int(os.environ.get(name, "") or 0))
    except ValueError:
        log.warning("ignoring %s: not an integer", name)
        return 0


async def wait_until(
    poll: Callable[[], Awaitable[T]],
    verdict: Callable[[T], Verdict],
    how: WaitPolicy,
    *,
    retry_codes: frozenset[str] = frozenset(),
) -> T:
    """Poll until ``verdict`` says success; ``WaiterError`` on failure or exhaustion.

    An API error whose code is in ``retry_codes`` counts as "not yet" (e.g. an id
    that is not visible yet); any other error ends the wait.
    """
    for attempt in range(how.max_attempts):
        if attempt:
            await asyncio.sleep(how.delay)
        try:
            result = await poll()
        except AwsError as e:
            if e.code in retry_codes:
                continue
            raise
        v = verdict(result)
        if v == "success":
            return result
        if v == "failure":
            raise WaiterError(FAILED)
    raise WaiterError(EXCEEDED)


# -- the EC2 waiters the builder uses --------------------------------------------------

NOT_FOUND_INSTANCE = frozenset({"InvalidInstanceID.NotFound"})
NOT_FOUND_IMAGE = frozenset({"InvalidAMIID.NotFound"})
NOT_FOUND_GROUP = frozenset({"InvalidGroup.NotFound", "InvalidSecurityGroupID.NotFound"})


def _instance_verdict(success: str, failures: tuple[str, ...]) -> Callable[[Json], Verdict]:
    def verdict(answer: Json) -> Verdict:
        states = [
            i["State"]["Name"] for r in answer.get("Reservations", []) for i in r["Instances"]
        ]
        if not states:
            return "retry"
        if any(s in failures for s in states):
            return "failure"
        return "success" if all(s == success for s in states) else "retry"

    return verdict


async def instance_state(
    aws: AwsSession, instance_id: str, state: str, how: WaitPolicy, region: str | None = None
) -> Json:
    """Wait for ``running``, ``stopped`` or ``terminated``; returns the last answer of
    DescribeInstances, so callers need not describe the instance again."""
    failures = {
        "running": ("shutting-down", "terminated", "stopping"),
        "stopped": ("pending", "terminated"),
        "terminated": ("pending", "stopping"),
    }[state]

    async def poll() -> Json:
        return await aws.call("describe_instances", region=region, InstanceIds=[instance_id])

    return await wait_until(
        poll, _instance_verdict(state, failures), how, retry_codes=NOT_FOUND_INSTANCE
    )


async def image_available(
    aws: AwsSession, image_id: str, how: WaitPolicy, region: str | None = None
) -> Json:
    """Wait for an AMI to be ``available``; returns the image description."""

    async def poll() -> Json:
        return await aws.call("describe_images", region=region, ImageIds=[image_id])

    def verdict(answer: Json) -> Verdict:
        images = answer.get("Images", [])
        if not images:
            return "retry"
        states = [i.get("State") for i in images]
        if "failed" in states:
            return "failure"
        return "success" if all(s == "available" for s in states) else "retry"

    answer = await wait_until(poll, verdict, how, retry_codes=NOT_FOUND_IMAGE)
    return dict(answer["Images"][0])


async def security_group_exists(aws: AwsSession, group_id: str) -> None:
    """Packer's own waiter: 5 s apart, 40 polls, not overridable."""

    async def poll() -> Json:
        return await aws.call("describe_security_groups", GroupIds=[group_id])

    def verdict(answer: Json) -> Verdict:
        return "success" if answer.get("SecurityGroups") else "retry"

    await wait_until(poll, verdict, WaitPolicy(5.0, 40), retry_codes=NOT_FOUND_GROUP)

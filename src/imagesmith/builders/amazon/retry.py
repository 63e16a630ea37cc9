"""Which AWS errors are worth another try, and how long to wait before it.

Two budgets, as in Packer: the SDK's (``max_retries``, default 10) for throttling,
5xx answers and dropped connections, and a call's own (Packer's ``retry.Config``,
11 tries starting at 200 ms) for eventual consistency, e.g. an instance that
DescribeInstances does not know yet just after RunInstances. Every wait is jittered
so that parallel builds throttled together do not come back together.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "BandwidthLimitExceeded",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "IDPCommunicationError",
    }
)

# Packer's retry.Config for the SDK budget and for a call's own retries.
SDK_BASE_DELAY = 0.1
THROTTLE_BASE_DELAY = 0.5
CALL_BASE_DELAY = 0.2
MAX_DELAY = 30.0
DEFAULT_CALL_TRIES = 11


@dataclass(frozen=True)
class AwsFailure:
    """What went wrong with one attempt, as far as retrying is concerned."""

    code: str
    status: int
    connection: bool = False

    @property
    def throttled(self) -> bool:
        return self.code in THROTTLING_CODES or self.status == 429

    @property
    def transient(self) -> bool:
        return self.connection or self.code in TRANSIENT_CODES or self.status >= 500


def backoff(attempt: int, base: float, cap: float = MAX_DELAY) -> float:
    """Delay before retry number ``attempt`` (0-based): exponential with jitter, so the
    expected wait is 3/4 of the exponential step."""
    step = min(cap, base * (2**attempt))
    return step * random.uniform(0.5, 1.0)


@dataclass
class RetryBudget:
    """Counts the retries of one call against both budgets."""

    sdk_retries: int
    call_tries: int = 1
    sdk_used: int = 0
    call_used: int = 0

    def next_delay(self, failure: AwsFailure, retry_codes: frozenset[str]) -> float | None:
        """Seconds to wait before trying again, or None to give up with this failure."""
        if failure.code in retry_codes and self.call_used + 1 < self.call_tries:
            delay = backoff(self.call_used, CALL_BASE_DELAY)
            self.call_used += 1
            return delay
        if (failure.throttled or failure.transient) and self.sdk_used < self.sdk_retries:
            base = THROTTLE_BASE_DELAY if failure.throttled else SDK_BASE_DELAY
            delay = backoff(self.sdk_used, base)
            self.sdk_used += 1
            return delay
        return None

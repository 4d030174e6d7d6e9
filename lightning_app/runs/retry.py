"""Retry W&B API calls that failed for a transient reason (429 rate limit, 5xx, dropped connection).

Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"),
capped, honouring a server's ``Retry-After``. Anything else (401, 404, a bad filter) is raised at
once: retrying cannot fix it.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
_HTTP_IN_MESSAGE = re.compile(r"\bHTTP (\d{3})\b")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry; ``sleep`` is injectable so tests do not wait."""

    attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Seconds to wait after failed ``attempt`` (0-based)."""
        hinted = retry_after_s(exc)
        if hinted is not None:
            return min(hinted, self.max_delay_s)
        cap = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        return self.rng.uniform(0, cap)


def call_with_retries(func: Callable[[], T], policy: RetryPolicy) -> T:
    """``func()``, retried on transient errors; the last error is raised when attempts run out."""
    for attempt in range(policy.attempts):
        try:
            return func()
        except Exception as exc:
            if not is_transient(exc) or attempt == policy.attempts - 1:
                raise
            policy.sleep(policy.delay(attempt, exc))
    raise AssertionError("unreachable")  # pragma: no cover


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind an error from ``requests`` or wandb (``CommError`` wraps it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response: Any = getattr(current, "response", None)
        for attr in ("status_code", "http_status"):
            status = getattr(response, attr, None)
            if isinstance(status, int) and status:
                return status
        status = getattr(current, "status_code", None)
        if isinstance(status, int):
            return status
        match = _HTTP_IN_MESSAGE.search(str(current))
        if match:
            return int(match.group(1))
        current = getattr(current, "exc", None) or current.__cause__
    return None


def is_transient(exc: BaseException) -> bool:
    status = http_status(exc)
    if status is not None:
        return status == 429 or 500 <= status <= 599
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"ConnectionError", "Timeout", "TimeoutError", "ChunkedEncodingError"}:
        return True
    cause = getattr(exc, "exc", None) or exc.__cause__
    return cause is not None and cause is not exc and is_transient(cause)


def retry_after_s(exc: BaseException) -> float | None:
    response: Any = getattr(exc, "response", None) or getattr(
        getattr(exc, "exc", None), "response", None
    )
    headers = getattr(response, "headers", None) or {}
    try:
        value = headers.get("Retry-After")
    except AttributeError:
        return None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: fall back to backoff

"""Retry the W&B API failures that W&B's own client does not retry.

In wandb 0.31 every public-API request goes through the wandb-core service process: Python sends
it (``wandb/apis/public/service_api.py``: ``ServiceApi.execute_graphql``/``send_api_request``)
and waits for the answer (``wandb/sdk/lib/service/service_connection.py``:
``ServiceConnection.api_request``). wandb-core makes the HTTP request and **already retries**
it: up to 20 times, 2 to 60 s apart, on connection errors, 429, 5xx and most other 4xx, and it
honours ``Retry-After`` itself (wandb-core ``core/internal/api``: ``DefaultRetryMax``,
``DefaultRetryWaitMin/Max``; ``core/internal/clients``: ``CheckRetry``, ``RetryMostFailures``,
``retryAfterHeader``; tunable with the ``x_graphql_retry_*`` settings in
``wandb/sdk/wandb_settings.py``). What comes back to Python is one exception type,
``WandbApiFailedError(message, response)``, where ``response`` is an ``ApiErrorResponse`` proto
(``message``, ``error_type``, ``http_status``; ``http_status`` is 0 when there was no HTTP
response, ``core/internal/wbapi/graphqlhandler.go``: ``graphqlErrorInfo``, and always 0 for
history reads, ``readrunhistoryhandler.go``). No HTTP headers reach Python, so there is no
``Retry-After`` to honour here. Listing pages and history pages raise it as it is;
``Run.scan_history``'s own requests come wrapped as ``CommError(message, exc)`` by
``wandb/apis/normalize.py``: ``normalize_exceptions``.

Retried here, because nothing else retries them:

- the wait for wandb-core timed out: ``api_request`` turns ``TimeoutError`` into
  ``WandbApiFailedError("Failed to execute API request: the service process is busy and did not
  respond in time.")`` with no response and no HTTP status; the handle cancels the request
  (``MailboxHandle.wait_or``), so retrying sends it again. ``wandb.Api(timeout=...)`` sets the
  wait (the reader uses 60 s) for GraphQL requests (listing pages, ``lastHistoryStep``);
  wandb-core is usually still retrying a 429/5xx/dropped connection when it runs out. History
  pages are waited for without a time-out (``HistoryScan`` sends them with none).
- a dropped connection that wandb-core passed back as it was: no HTTP status and Go's network
  error text (connection reset, EOF, broken pipe, i/o timeout, ...), as history reads report
  their errors (message only).

Raised at once: anything with an HTTP status (wandb-core has already retried 408/429/5xx up to
its limit, and a 401/403/404 cannot succeed), wandb-core giving up after its own retries
(``giving up after N attempt(s)``), ``the service process is not running`` (the connection to
wandb-core is gone; this ``Api`` object cannot recover it), GraphQL errors (no HTTP status but
no network text either: permission, not found) and everything else.

Attempts: 3. Each attempt already contains wandb-core's retries for up to the ``Api`` timeout, so
three ride out several minutes of outage per request while bounding the damage: an outer loop
of 6 around wandb-core's 21 tries would send up to 126 requests for one page, and back off far
longer than the outage it waits for. A history scan resumes after the last ``_step`` it got
(``wandb_api._scan_rows``), so a retry does not fetch again what was read.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# ServiceConnection.api_request's message when its wait for wandb-core times out.
SERVICE_TIMEOUT_TEXT = "did not respond in time"
# Go's net/http and net errors for a connection that dropped or never answered.
_NETWORK_FAILURE = re.compile(
    r"connection reset|broken pipe|connection refused|\bEOF\b|i/o timeout|"
    r"TLS handshake timeout|Client\.Timeout exceeded|deadline exceeded|"
    r"server closed idle connection|client connection lost|GOAWAY|network is unreachable"
)
# wandb-core's HTTP client after its own retries ran out (go-retryablehttp, core/internal/api).
_CORE_GAVE_UP = re.compile(r"giving up after \d+ attempt|while retrying")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry; ``sleep`` is injectable so tests do not wait."""

    attempts: int = 3
    base_delay_s: float = 2.0
    max_delay_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed ``attempt`` (0-based): exponential, full jitter."""
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
            policy.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may succeed where wandb-core's own retries did not run or could not."""
    failure = api_failure(exc)
    if failure is None:
        return False
    response: Any = getattr(failure, "response", None)
    text = str(getattr(response, "message", "") or failure)
    if response is None:
        return SERVICE_TIMEOUT_TEXT in text
    if getattr(response, "http_status", 0):
        return False
    return bool(_NETWORK_FAILURE.search(text)) and not _CORE_GAVE_UP.search(text)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status wandb-core reported for the failed request, if there was one."""
    failure = api_failure(exc)
    status = getattr(getattr(failure, "response", None), "http_status", 0)
    return int(status) if status else None


def api_failure(exc: BaseException) -> BaseException | None:
    """The ``WandbApiFailedError`` behind ``exc``: itself, or the one a ``CommError`` was
    raised from (``normalize_exceptions`` raises ``CommError(message, err) from err``)."""
    failed = _failed_error_type()
    if failed is None:
        return None
    for current in _chain(exc):
        if isinstance(current, failed):
            return current
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def _failed_error_type() -> type[BaseException] | None:
    try:
        from wandb.sdk.lib.service.service_connection import WandbApiFailedError
    except ImportError:  # pragma: no cover - wandb is a dependency
        return None
    return WandbApiFailedError

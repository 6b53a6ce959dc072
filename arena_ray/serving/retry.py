"""The one retrying request path: a timeout per attempt, exponential backoff between attempts, and a line
between failures worth retrying (a dead replica, a timeout, a transport error) and those that are not."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable, Optional

from arena_ray.errors import ServingError
from arena_ray.records import Completion, GenerationRequest


class RequestFailed(ServingError):
    """Every attempt of a request failed; the message holds the last failure."""


@dataclass(frozen=True)
class RetryPolicy:
    timeout_s: float = 600.0
    max_retries: int = 3
    backoff_s: float = 1.0
    # Long enough for Serve's health check to replace a dead replica and the new one to start its engine.
    max_backoff_s: float = 60.0
    # Failures retrying cannot fix (e.g. a replay file lacks the answer): raised at once.
    permanent: tuple[type[BaseException], ...] = ()

    def delay(self, retry: int) -> float:
        return min(self.backoff_s * 2 ** (retry - 1), self.max_backoff_s)


async def request(client, req: GenerationRequest, policy: RetryPolicy,
                  on_failure: Optional[Callable[[BaseException, int], None]] = None) -> Completion:
    """`client.generate(req)` with retries; `on_failure(error, attempt)` sees every failed attempt (to count or
    record it). Raises RequestFailed once max_retries retries have failed too."""
    last: BaseException | None = None
    for attempt in range(policy.max_retries + 1):
        if attempt:
            await asyncio.sleep(policy.delay(attempt))
        try:
            return await asyncio.wait_for(client.generate(req), policy.timeout_s)
        except policy.permanent:
            raise
        except asyncio.TimeoutError:
            last = TimeoutError(f"no answer within {policy.timeout_s:g}s")
        except Exception as err:  # a dead replica, a transport error: retry
            last = err
        if on_failure is not None:
            on_failure(last, attempt)
    raise RequestFailed(f"{type(last).__name__}: {last}"[:500])

"""Per-channel rate limits: a token bucket per channel, refilled continuously.

The limits are per worker process: with N workers, give each 1/N of the provider's limit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta


class TokenBucket:
    """At most ``per_second`` sends per second on average, bursts up to ``burst``."""

    def __init__(
        self,
        per_second: float,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.burst = burst if burst is not None else max(1, int(per_second))
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()

    def available(self) -> int:
        """How many sends may start now."""
        if self.per_second <= 0:
            return 1_000_000
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.per_second)
        self._at = now
        return int(self._tokens)

    def take(self, n: int = 1) -> None:
        """Spend ``n`` tokens (the caller checked ``available`` first)."""
        if self.per_second > 0:
            self._tokens -= n

    def wait_s(self) -> float:
        """Seconds until the next token."""
        if self.per_second <= 0 or self.available() >= 1:
            return 0.0
        return (1.0 - self._tokens) / self.per_second


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with jitter: attempt n waits base * 2**(n-1), scaled by a random
    factor in [0.5, 1], capped; after ``max_attempts`` the delivery is dead."""

    max_attempts: int = 6
    base_s: float = 60.0
    cap_s: float = 6 * 3600.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """The wait before the attempt after failed attempt number ``attempt`` (from 1)."""
        full = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        jitter = (rng or random).uniform(0.5, 1.0)
        return timedelta(seconds=full * jitter)

    def gives_up(self, attempt: int) -> bool:
        """True if failed attempt number ``attempt`` was the last one."""
        return attempt >= self.max_attempts

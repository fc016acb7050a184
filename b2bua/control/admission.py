"""Admission control: how many calls may exist at once and how fast new ones may start."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

OVERLOAD_TEXT = {"over-capacity": "at the call ceiling; try again shortly",
                 "over-rate": "too many new calls this second; try again shortly",
                 "closed": "shutting down"}


class AdmissionGate:
    """Admission control shared by the SIP thread (INVITEs) and the asyncio thread (API calls, releases).

    Two limits, both sized from the benchmark: a ceiling on admitted calls (each holds media and conference
    ports), and a token bucket on the rate of new admissions (set-up work is what starves signalling first
    under a burst). A refusal names its reason and how long the peer should wait."""

    def __init__(self, ceiling: int, rate: float = 0.0, burst: int = 0, retry_after_s: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = ceiling
        self.retry_after_s = retry_after_s
        self._n = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._clock = clock
        self.closed = False
        self.set_rate(rate, burst)

    def set_rate(self, rate: float, burst: int = 0) -> None:
        """``rate`` admissions a second (0: unlimited); ``burst``: how many may come at once (0: a fifth of a
        second's worth, at least 1)."""
        with self._lock:
            self.rate = rate
            self.burst = float(burst or max(1, round(rate / 5)))
            self._tokens = self.burst
            self._stamp = self._clock()

    def admit(self, in_flight: bool = False) -> str | None:
        """Take one admission; returns why it is refused ("closed", "over-capacity", "over-rate") or None.
        ``in_flight``: taken on the SIP thread for an INVITE that asyncio has not seen yet (see ``claim``)."""
        with self._lock:
            if self.closed:
                return "closed"
            if self._n >= self.ceiling:
                return "over-capacity"
            if self.rate > 0:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens < 1.0 - 1e-9:  # float sums of refills must not lose a token
                    return "over-rate"
                self._tokens -= 1.0
            self._n += 1
            self._in_flight += int(in_flight)
            return None

    def claim(self) -> None:
        """asyncio took over an admission taken ``in_flight``: a call (or the release on failure) owns it now."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def snapshot(self) -> tuple[int, int]:
        """(admitted, of which in flight), read together."""
        with self._lock:
            return self._n, self._in_flight

    def retry_after(self, reason: str) -> int:
        """A rate refusal clears within a second; a full house takes the configured while."""
        return 1 if reason == "over-rate" else self.retry_after_s

    def release(self, n: int = 1) -> None:
        with self._lock:
            self._n = max(0, self._n - n)

    def close(self) -> None:
        """Shutting down: every later admission is refused ("closed"); admitted calls keep their slots."""
        with self._lock:
            self.closed = True

    @property
    def admitted(self) -> int:
        return self._n

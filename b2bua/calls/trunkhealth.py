"""Which trunks are up: the per-trunk hysteresis of OPTIONS ping results (sans-I/O: results and time in, state
changes out), and the view the router reads on the SIP thread.

A final response to OPTIONS means the carrier's SIP stack is alive, whatever the status (carriers often answer
404, 405 or 481 to an OPTIONS outside a dialog); only 408 and 503 (and no response at all) count as a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEAD_CODES = frozenset({0, 408, 503})  # 0: no final response within the ping timeout (or the ping not sent)


def alive(code: int) -> bool:
    """Whether an OPTIONS final response (``0``: none) shows the trunk alive."""
    return code not in DEAD_CODES and code >= 200


@dataclass
class Hysteresis:
    """One trunk's state: ``down_after`` failures in a row take it down, ``up_after`` successes in a row bring
    it back, so that one lost datagram does not move calls away and one answer does not bring them back."""

    down_after: int
    up_after: int
    up: bool = True  # a trunk is presumed up until pings say otherwise (today's behaviour before the first ping)
    failures: int = 0
    successes: int = 0
    since: float = 0.0  # when the state last changed (monotonic)
    last_code: int | None = None  # the last ping's final response (0: none); None: not pinged yet

    def observe(self, code: int, now: float) -> bool | None:
        """Record one ping result; returns the new state if it changed, else None."""
        self.last_code = code
        if alive(code):
            self.failures = 0
            self.successes += 1
            if not self.up and self.successes >= self.up_after:
                return self._change(True, now)
        else:
            self.successes = 0
            self.failures += 1
            if self.up and self.failures >= self.down_after:
                return self._change(False, now)
        return None

    def _change(self, up: bool, now: float) -> bool:
        self.up, self.since = up, now
        self.failures = self.successes = 0
        return up


@dataclass(frozen=True, slots=True)
class TrunkState:
    up: bool
    monitored: bool
    last_code: int | None = None


class TrunkHealth:
    """Up/down per trunk, written on the asyncio thread by the monitor and read lock-free on the SIP thread by
    the router: the down set is an immutable ``frozenset`` replaced whole (one reference assignment), so a reader
    sees the old set or the new one, never a half-made one."""

    def __init__(self, monitored: Iterable[str] = ()) -> None:
        self._down: frozenset[str] = frozenset()
        self._states: dict[str, TrunkState] = {name: TrunkState(True, True) for name in monitored}

    def is_up(self, trunk: str) -> bool:
        return trunk not in self._down

    def record(self, trunk: str, up: bool, last_code: int | None) -> None:
        """The monitor's latest view of ``trunk`` (asyncio thread only)."""
        self._states = {**self._states, trunk: TrunkState(up, True, last_code)}
        down = self._down - {trunk} if up else self._down | {trunk}
        if down != self._down:
            self._down = down

    def states(self, trunks: Iterable[str]) -> Mapping[str, TrunkState]:
        """Every named trunk's state, unmonitored ones as up (for /health)."""
        states = self._states
        return {name: states.get(name, TrunkState(True, False)) for name in trunks}

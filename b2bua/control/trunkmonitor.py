"""Trunk monitoring (asyncio thread): every trunk with a host and ``ping_interval_s`` gets OPTIONS pings on its own
schedule; the results go through its hysteresis, and a change of state updates what the router reads
(``TrunkHealth``), the ``b2bua_trunk_up`` gauge and the log.

One task per trunk, each ping bounded by the trunk's ``ping_timeout_s``: a dead or unresolvable trunk never delays
another's pings, and a state is never older than ``ping_interval_s + ping_timeout_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from b2bua.calls.trunkhealth import Hysteresis, TrunkHealth, alive
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import TrunkSettings
from b2bua.sip.streams import Transport


class Pinger(Protocol):
    async def ping(self, host: str, port: int, timeout_s: float, transport: Transport = ...) -> int: ...


def monitored(trunks: Sequence[TrunkSettings]) -> list[TrunkSettings]:
    """The trunks that are pinged: those with somewhere to send to and an interval, each over its own transport
    (a TLS-only carrier answers nothing on UDP)."""
    return [t for t in trunks if t.host and t.ping_interval_s > 0]


class TrunkMonitor:
    def __init__(self, trunks: Sequence[TrunkSettings], metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.trunks = monitored(trunks)
        self.outbound = [t.name for t in trunks if t.host]
        self.health = TrunkHealth(t.name for t in self.trunks)  # the router reads it
        self.metrics = metrics
        self.clock = clock
        self.states = {t.name: Hysteresis(t.down_after, t.up_after, since=clock()) for t in self.trunks}
        self._log = get_logger("trunks")
        for t in self.trunks:
            metrics.trunk_up.labels(t.name).set(1)

    def views(self) -> dict[str, dict[str, Any]]:
        """Every trunk calls can be sent to, as /health shows it."""
        return {name: {"state": "up" if s.up else "down", "monitored": s.monitored, "last_response": s.last_code}
                for name, s in self.health.states(self.outbound).items()}

    def observe(self, trunk: TrunkSettings, code: int) -> bool | None:
        """One ping's result for ``trunk``; returns its new state if it changed (and says so everywhere)."""
        state = self.states[trunk.name]
        was_since = state.since
        changed = state.observe(code, self.clock())
        self.metrics.trunk_pings.labels(trunk.name, "alive" if alive(code) else "failed").inc()
        self.health.record(trunk.name, state.up, code)
        if changed is not None:
            word = "up" if changed else "down"
            self.metrics.trunk_up.labels(trunk.name).set(1 if changed else 0)
            self.metrics.trunk_state_changes.labels(trunk.name, word).inc()
            log = self._log.info if changed else self._log.warning
            log(f"trunk {word}", trunk=trunk.name, host=trunk.host, port=trunk.port, last_response=code,
                previous_state_s=round(state.since - was_since, 1))
        return changed

    async def run(self, pinger: Pinger) -> None:
        """Ping every monitored trunk until cancelled."""
        if not self.trunks:
            return
        self._log.info("trunk monitoring", trunks=[t.name for t in self.trunks])
        await asyncio.gather(*(self._watch(pinger, t) for t in self.trunks))

    async def _watch(self, pinger: Pinger, trunk: TrunkSettings) -> None:
        while True:
            started = self.clock()
            try:
                code = await pinger.ping(trunk.host, trunk.port, trunk.ping_timeout_s, trunk.transport)
            except Exception:  # never let one trunk's fault stop its monitoring (or anyone else's)
                self._log.exception("trunk ping failed", trunk=trunk.name)
                code = 0
            self.observe(trunk, code)
            await asyncio.sleep(max(0.0, trunk.ping_interval_s - (self.clock() - started)))

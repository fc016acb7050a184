"""The admission invariant, checked: every admission is owned by a live call (one, plus one per party leg it
admitted on its own) or by an INVITE the SIP thread admitted that asyncio has not taken over yet.

A difference seen once may be a race; the same leak seen on two checks in a row is a bug somewhere: it is logged
as an error, shown as ``b2bua_admission_drift`` and given back, so a leak can never shrink capacity for good.
"""

from __future__ import annotations

import asyncio

from b2bua.control.admission import AdmissionGate
from b2bua.control.runner import CallRunner
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics


class AdmissionWatchdog:
    def __init__(self, runner: CallRunner, gate: AdmissionGate, metrics: Metrics, interval_s: float = 10.0) -> None:
        self.runner = runner
        self.gate = gate
        self.metrics = metrics
        self.interval_s = interval_s
        self._last_drift = 0
        self._log = get_logger("calls")

    def owned(self) -> int:
        return sum(1 + len(call.admitted_roles) for call in self.runner.calls.values())

    def check(self) -> int:
        """One check (asyncio thread); returns how many leaked admissions were given back."""
        admitted, in_flight = self.gate.snapshot()
        owned = self.owned()
        drift = admitted - in_flight - owned
        self.metrics.admission_drift.set(drift)
        leaked = min(drift, self._last_drift) if drift > 0 and self._last_drift > 0 else 0
        self._last_drift = drift
        if drift < 0:
            self._log.error("admission undercount: calls hold more than the gate counts", admitted=admitted,
                            in_flight=in_flight, owned=owned)
        if leaked > 0:
            self._log.error("admissions leaked: giving them back", leaked=leaked, admitted=admitted,
                            in_flight=in_flight, owned=owned)
            self.gate.release(leaked)
            self._last_drift = drift - leaked
        return leaked

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.check()

"""How the domain refuses a request: one exception carrying the HTTP status and the rule that refused it."""

from __future__ import annotations

from b2bua.control.admission import OVERLOAD_TEXT, AdmissionGate


class Refused(Exception):
    """A request the rules turn down; ``status`` is the HTTP status, ``rule`` a short fixed word naming the rule
    (clients branch on it), ``retry_after`` seconds for overload refusals."""

    def __init__(self, status: int, rule: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.rule, self.message, self.retry_after = status, rule, message, retry_after


def take_admission(gate: AdmissionGate) -> None:
    """Take one admission for an API-started call, or raise the 503 (with Retry-After) that says why not."""
    reason = gate.admit()
    if reason is not None:
        raise Refused(503, reason, OVERLOAD_TEXT.get(reason, reason), retry_after=gate.retry_after(reason))


class Reservation:
    """One admission taken before the call that will own it exists. Used as a context manager: unless
    ``hand_over`` was called (the runner now holds it and releases it when the call ends), it is given back on
    the way out, whatever raised in between."""

    def __init__(self, gate: AdmissionGate) -> None:
        take_admission(gate)
        self.gate = gate
        self.held = True

    def hand_over(self) -> None:
        self.held = False

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *_: object) -> None:
        if self.held:
            self.held = False
            self.gate.release()

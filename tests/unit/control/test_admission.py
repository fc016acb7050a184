"""The admission gate: a ceiling on admitted calls and a token bucket on the rate of new ones."""

from __future__ import annotations

from b2bua.control.admission import AdmissionGate


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_ceiling_refuses_until_a_call_is_released() -> None:
    g = AdmissionGate(2)
    assert [g.admit(), g.admit(), g.admit()] == [None, None, "over-capacity"]
    g.release()
    assert g.admit() is None and g.admitted == 2
    assert g.retry_after("over-capacity") == 5


def test_rate_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    g = AdmissionGate(1000, rate=10, burst=3, clock=clock)
    assert [g.admit() for _ in range(4)] == [None, None, None, "over-rate"]
    clock.t += 0.05  # half a token
    assert g.admit() == "over-rate"
    clock.t += 0.05
    assert g.admit() is None and g.admit() == "over-rate"
    clock.t += 10.0  # a long quiet spell refills only up to the burst
    assert [g.admit() for _ in range(4)] == [None, None, None, "over-rate"]
    assert g.retry_after("over-rate") == 1
    assert g.admitted == 7  # refusals never count as admitted


def test_sustained_offer_at_twice_the_rate_admits_the_rate() -> None:
    clock = Clock()
    g = AdmissionGate(100000, rate=100, clock=clock)
    assert g.burst == 20  # a fifth of a second's worth by default
    admitted = 0
    for _ in range(2000):  # 10 s offered at 200 a second
        clock.t += 0.005
        admitted += g.admit() is None
    assert 1000 <= admitted <= 1000 + g.burst


def test_unlimited_rate_and_closed_gate() -> None:
    g = AdmissionGate(5, rate=0)
    assert all(g.admit() is None for _ in range(5))
    g.closed = True
    g.release()
    assert g.admit() == "closed"

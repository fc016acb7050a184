"""The admission invariant: a leak seen on two checks in a row is logged and given back; INVITEs admitted on the
SIP thread but not yet taken over by asyncio, and party legs with their own admission, are not leaks."""

from __future__ import annotations

from structlog.testing import capture_logs

from b2bua.control.watchdog import AdmissionWatchdog
from b2bua.sip.types import Admit
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import metric


def watchdog(t: InProcess) -> AdmissionWatchdog:
    return AdmissionWatchdog(t.runner, t.node.gate, t.node.metrics, interval_s=60)


async def test_a_leak_seen_twice_is_given_back_and_logged(t: InProcess) -> None:
    assert isinstance(t.far.call_in(invite("A1", called="4930123456")), Admit)  # a real call holds one
    assert t.node.gate.admit() is None and t.node.gate.admit() is None  # two leaked: nobody owns them
    dog = watchdog(t)
    with capture_logs() as logs:
        assert dog.check() == 0, "seen once: could be a race"
        assert metric(t, "b2bua_admission_drift") == 2 and t.node.gate.admitted == 3
        assert dog.check() == 2
    assert t.node.gate.admitted == 1 and len(t.runner.calls) == 1
    assert [e["leaked"] for e in logs if e["event"] == "admissions leaked: giving them back"] == [2]
    assert dog.check() == 0 and metric(t, "b2bua_admission_drift") == 0


async def test_invites_in_flight_and_party_admissions_are_not_leaks(t: InProcess) -> None:
    gate = t.node.gate
    assert gate.admit(in_flight=True) is None  # the SIP thread admitted an INVITE; asyncio has not seen it yet
    dog = watchdog(t)
    assert dog.check() == 0 and dog.check() == 0 and gate.admitted == 1
    gate.claim()  # asyncio took it over ... and a call now owns it
    assert isinstance(t.far.call_in(invite("A1", called="4930123456")), Admit)
    call = next(iter(t.runner.calls.values()))
    call.admitted_roles.add("party")  # a party leg with its own admission
    assert gate.admit() is None
    assert dog.check() == 0 and dog.check() == 1, "the claimed one has no owner: 1 leaked, the rest owned"
    assert gate.admitted == 2


async def test_a_transient_difference_is_not_released(t: InProcess) -> None:
    gate = t.node.gate
    dog = watchdog(t)
    assert gate.admit() is None
    assert dog.check() == 0
    gate.release()  # its owner showed up and finished in between
    assert dog.check() == 0 and gate.admitted == 0

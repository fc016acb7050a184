"""Untrusted sources, malformed SIP and overload: refused cleanly, and the next call still works."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.support import rawsip
from tests.support.procs import B2bua, uac, uas

pytestmark = pytest.mark.e2e


def _normal_call_works(b: B2bua) -> None:
    far = uas(b, "uas_answer.xml", name="uas-after")
    r = uac(b, "uac_call.xml", hold_ms=300, name="uac-after").start().wait(20)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out


def test_untrusted_source_is_refused_and_nothing_is_dialled(b2bua: B2bua) -> None:
    far = uas(b2bua, "uas_answer.xml", name="uas-never")
    r = uac(b2bua, "uac_fail.xml", src_ip="127.0.0.66").start().wait(20)
    assert r.rc == 0, r.out
    assert r.statuses()[-1] == 403
    time.sleep(0.5)
    assert far.stop().requests() == []  # the far end never saw an INVITE
    # refused statelessly by the source filter (patch 0009) before any call existed: screening never saw it
    deadline = time.monotonic() + 3  # the SIP thread reads the filter's C counters once a second
    while b2bua.metric("b2bua_untrusted_requests_total", action="rejected") != 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b2bua.metric("b2bua_untrusted_requests_total", action="rejected") == 1
    assert b2bua.metric("b2bua_invites_rejected_total", code="403", reason="untrusted-source") == 0
    b2bua.wait_idle()
    _normal_call_works(b2bua)


def test_unrouted_number_gets_404(b2bua: B2bua) -> None:
    r = uac(b2bua, "uac_fail.xml", called="not-a-number").start().wait(20)
    assert r.rc == 0, r.out
    assert r.statuses()[-1] == 404
    b2bua.wait_idle()


@pytest.mark.parametrize("case, msg, expected", [
    ("bad Max-Forwards", rawsip.request(extra="Max-Forwards: lots").replace("Max-Forwards: 70\r\n", ""), 400),
    ("bad Expires", rawsip.request(extra="Expires: soon"), 400),
    ("bad SDP", rawsip.request(body="v=0\r\nthis is not sdp\r\n"), 400),
    # a CSeq that does not parse: answered from the raw text (patch 0011; RFC 4475 3.1.2.4)
    ("bad CSeq", rawsip.request(cseq="abc"), 400),
    ("unknown method", rawsip.request("FROBNICATE"), 501),
    ("REGISTER to a B2BUA", rawsip.request("REGISTER", ruri="sip:127.0.0.1"), 501),
])
def test_malformed_requests_get_4xx_and_service_continues(b2bua: B2bua, case: str, msg: str,
                                                          expected: int) -> None:
    statuses = rawsip.exchange(msg, b2bua.sip_port)
    finals = [int(s.split()[1]) for s in statuses if not s.startswith("SIP/2.0 1")]
    assert finals and finals[0] == expected, f"{case}: {statuses}"
    b2bua.wait_idle()
    _normal_call_works(b2bua)


def test_unanswerable_garbage_is_dropped_and_service_continues(b2bua: B2bua) -> None:
    # nothing to route or correlate an answer with: no SIP at all, no Call-ID, no Via
    for junk in ("\x00\x01\x02 garbage \xff" * 20, rawsip.request(drop=("Call-ID",)),
                 rawsip.request(drop=("Via",)), "INVITE\r\n\r\n"):
        assert rawsip.exchange(junk, b2bua.sip_port, timeout=0.5) == []
    assert b2bua.health()["engine"]["up"]
    _normal_call_works(b2bua)


def test_calls_above_the_ceiling_get_503_with_retry_after(start_b2bua: Callable[..., B2bua]) -> None:
    b = start_b2bua(max_bridged_calls=2)
    assert b.health()["admission"]["ceiling"] == 2
    assert b.metric("b2bua_limit", limit="max_bridged_calls") == 2
    far = uas(b, "uas_answer.xml", calls=2)
    admitted = uac(b, "uac_call.xml", calls=2, rate=10, limit=2, hold_ms=3000).start()
    deadline = time.monotonic() + 5
    while b.metric("b2bua_active_calls") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.metric("b2bua_active_calls") == 2
    extra = uac(b, "uac_fail.xml", name="uac-extra", instance=1).start().wait(20)
    assert extra.rc == 0, extra.out
    assert extra.statuses()[-1] == 503
    final = next(m for m in extra.messages if m.startswith("SIP/2.0 503"))
    assert "Retry-After: 7" in final
    r = admitted.wait(30)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out  # the admitted calls were not disturbed
    b.wait_idle()
    assert b.metric("b2bua_invites_rejected_total", code="503", reason="over-capacity") == 1
    assert b.metric("b2bua_calls_total", outcome="completed-a-hangup") == 2

"""Trunk calls through the real B2BUA process, with SIPp as the trunk (127.0.0.2) and the far end
(127.0.0.3), media checked in a loopback capture."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import audio
from tests.support.procs import B2bua, capture, uac, uas

pytestmark = pytest.mark.e2e


def test_call_bridged_with_media_both_ways(b2bua: B2bua) -> None:
    with capture(b2bua.workdir) as pcap:
        far = uas(b2bua, "uas_answer.xml")
        trunk = uac(b2bua, "uac_call.xml", hold_ms=3000).start()
        r = trunk.wait(30)
        f = far.wait(10)
    assert r.rc == 0, r.out
    assert f.rc == 0, f.out
    assert r.requests() == ["INVITE", "ACK", "BYE"]
    assert 200 in r.statuses() and 180 in r.statuses()
    assert f.requests() == ["INVITE", "ACK", "BYE"]
    # B leg presents the caller's number
    invite_b = next(m for m in f.messages if m.startswith("INVITE"))
    assert "sip:15551230001@127.0.0.1" in invite_b.split("\nFrom:", 1)[1].splitlines()[0]

    # the far end's tone reached the caller and the caller's tone reached the far end, through our RTP
    to_far = audio.streams(pcap, "127.0.0.1", "127.0.0.3")
    to_caller = audio.streams(pcap, "127.0.0.1", "127.0.0.2")
    assert len(to_far) == 1 and len(to_caller) == 1, (to_far.keys(), to_caller.keys())
    ok, why = audio.tone_in(next(iter(to_far.values())), 1000.0)
    assert ok, f"caller->far end: {why}"
    ok, why = audio.tone_in(next(iter(to_caller.values())), 1700.0)
    assert ok, f"far end->caller: {why}"

    b2bua.wait_idle()
    assert b2bua.metric("b2bua_calls_total", outcome="completed-a-hangup") == 1
    status, body = b2bua.http("GET", "/v1/cdrs")
    assert status == 200
    cdr = body["cdrs"][0]
    assert (cdr["caller"], cdr["called"], cdr["outcome"], cdr["final_code"]) == (
        "15551230001", "4930123456", "completed-a-hangup", 200)
    assert cdr["duration_s"] > 2.5


def test_ptime_40_sends_40ms_packets_and_media_still_flows(start_b2bua: Callable[..., B2bua]) -> None:
    """sip.ptime_ms = 40 (the capacity lever): the B2BUA sends 40 ms packets on both legs and still bridges the
    20 ms packets the peers send (pjmedia's SDP names no a=ptime, so peers keep their own packetisation)."""
    b2bua = start_b2bua(env={"B2BUA_SIP__PTIME_MS": "40"})
    with capture(b2bua.workdir) as pcap:
        far = uas(b2bua, "uas_answer.xml")
        trunk = uac(b2bua, "uac_call.xml", hold_ms=3000).start()
        r = trunk.wait(30)
        f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    for dst, tone in (("127.0.0.3", 1000.0), ("127.0.0.2", 1700.0)):
        got = audio.streams(pcap, "127.0.0.1", dst)
        assert len(got) == 1, got.keys()
        payloads = next(iter(got.values()))
        sizes = [len(p) - 1 for p in payloads]
        assert sum(1 for n in sizes if n == 320) >= 0.9 * len(sizes), sorted(set(sizes))
        ok, why = audio.tone_in(payloads, tone)
        assert ok, f"to {dst}: {why}"
    b2bua.wait_idle()
    assert b2bua.metric("b2bua_calls_total", outcome="completed-a-hangup") == 1


def test_far_end_busy_maps_to_486(b2bua: B2bua) -> None:
    far = uas(b2bua, "uas_busy.xml")
    r = uac(b2bua, "uac_fail.xml").start().wait(20)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    assert r.statuses()[-1] == 486
    assert f.requests() == ["INVITE", "ACK"]
    b2bua.wait_idle()
    assert b2bua.metric("b2bua_calls_total", outcome="busy") == 1


def test_no_answer_timeout_cancels_far_end_and_refuses_caller(start_b2bua: Callable[..., B2bua]) -> None:
    b = start_b2bua(no_answer_timeout_s=1.5)
    far = uas(b, "uas_noanswer.xml")
    r = uac(b, "uac_fail.xml").start().wait(20)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    assert 180 in r.statuses()
    assert r.statuses()[-1] == 480
    assert f.requests() == ["INVITE", "CANCEL", "ACK"]
    b.wait_idle()
    assert b.metric("b2bua_calls_total", outcome="no-answer") == 1


@pytest.mark.parametrize("far_scenario, caller_scenario, rings",
                         [("uas_trying.xml", "uac_cancel.xml", False),
                          ("uas_noanswer.xml", "uac_cancel_ringing.xml", True)])
def test_caller_cancel_before_and_after_180(b2bua: B2bua, far_scenario: str, caller_scenario: str,
                                            rings: bool) -> None:
    far = uas(b2bua, far_scenario)
    r = uac(b2bua, caller_scenario, hold_ms=1000).start().wait(20)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    assert (180 in r.statuses()) is rings
    assert r.statuses()[-2:] == [200, 487] or r.statuses()[-2:] == [487, 200]
    assert f.requests() == ["INVITE", "CANCEL", "ACK"]
    b2bua.wait_idle()
    assert b2bua.metric("b2bua_calls_total", outcome="cancelled") == 1


def test_bye_from_far_end_reaches_caller(b2bua: B2bua) -> None:
    far = uas(b2bua, "uas_hangup.xml", hold_ms=1500)
    r = uac(b2bua, "uac_wait_bye.xml").start().wait(20)
    f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    assert r.requests() == ["INVITE", "ACK", "BYE"]  # BYE received from the B2BUA
    b2bua.wait_idle()
    assert b2bua.metric("b2bua_calls_total", outcome="completed-b-hangup") == 1


def test_hold_and_unhold_are_reflected_on_the_other_leg(b2bua: B2bua) -> None:
    far = uas(b2bua, "uas_hold.xml")
    r = uac(b2bua, "uac_hold.xml", hold_ms=800).start().wait(30)
    f = far.wait(10)
    # both scenarios check the SDP direction of each re-INVITE / answer themselves
    assert r.rc == 0, r.out
    assert f.rc == 0, f.out
    assert f.requests() == ["INVITE", "ACK", "INVITE", "ACK", "INVITE", "ACK", "BYE"]
    b2bua.wait_idle()


def test_early_media_is_relayed_before_answer(b2bua: B2bua) -> None:
    with capture(b2bua.workdir) as pcap:
        far = uas(b2bua, "uas_early_media.xml", hold_ms=2500)
        r = uac(b2bua, "uac_call.xml", hold_ms=1000).start().wait(30)
        f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    assert 183 in r.statuses()
    to_caller = audio.streams(pcap, "127.0.0.1", "127.0.0.2")
    payloads = next(iter(to_caller.values()))
    # the far end answered 2.5 s after its 183: most of the tone the caller got came before the answer
    ok, why = audio.tone_in(payloads[:100], 1700.0)
    assert ok, f"early media: {why}"
    b2bua.wait_idle()

"""Incoming calls for users end to end: trunk calls to a business number (DID) ring the telecommuter phone or the
desk device, else voicemail or busy; hot desking through the API; call waiting; live events; restart.

Peers: pjsua2 phones and SIPp. The carrier trunk's callers come from 127.0.0.2, telecommuter phones answer on
the "mobile" trunk (127.0.0.4), desk devices on 127.0.0.5."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.test_callback import BUSINESS, MOBILE, ROUTES, make_user, phone
from tests.support import wav
from tests.support.procs import B2bua, PhoneProc, uac, uas

pytestmark = pytest.mark.e2e

INCOMING_CONFIG = """
[telecommuter]
home_country = "DE"
ring_timeout_s = 4
owned_numbers = ["+4930123"]
test_call_confirmation_s = 1.5

[voicemail]
max_message_s = 20

# a PBX / desk phones: may call users by extension
[[trunks]]
name = "pbx"
inbound_acl = ["127.0.0.6/32"]
extensions = true
"""
CALLER = "+4940111222"
DESK_IP = "127.0.0.5"


@pytest.fixture
def inc(start_b2bua: Callable[..., B2bua]) -> B2bua:
    return start_b2bua(extra_config=INCOMING_CONFIG, routes_before=ROUTES, no_answer_timeout_s=4)


def caller_phone(b: B2bua, name: str, called: str, slot: int = 0, **kw: str) -> PhoneProc:
    args = ["--ip", "127.0.0.2", "--port", str(b.sip_port + 1100 + slot),
            "--rtp-port", str(b.far_port + 4000 + 100 * slot),
            "--call", f"sip:{called}@127.0.0.1:{b.sip_port}", "--caller", CALLER]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", v]
    return PhoneProc(b.workdir, name, args).wait_ready()


def header(invite: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*)$", invite, re.MULTILINE | re.IGNORECASE)
    return m.group(1).strip() if m else ""


def call_events(events: Any, state: str) -> dict[str, Any]:
    return dict(events.wait_for(state, pred=lambda e: e.get("direction") == "in"))


def test_did_rings_telecommuter_with_caller_id_diversion_and_two_way_audio(inc: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(inc)
    events = watcher_factory(inc, uid, token)
    tele_wav, caller_wav = inc.workdir / "tele.wav", inc.workdir / "caller.wav"
    tele = phone(inc, "tele", "127.0.0.4", inc.far_port + 3000, tone_hz="1700", record=str(tele_wav),
                 answer_after_s="1.0", max_s="30")
    caller = caller_phone(inc, "caller", BUSINESS, tone_hz="1000", record=str(caller_wav), hangup_after_s="4",
                          max_s="30")
    ringing = call_events(events, "ringing")
    assert ringing["caller"] == CALLER and ringing["called"] == BUSINESS and ringing["trunk"] == "carrier"
    assert ringing["ringing"] == "telecommuter" and ringing["caller_name"] == "Phone Caller"
    ce, te = caller.wait(30), tele.wait(30)
    connected = call_events(events, "connected")
    ended = call_events(events, "ended")
    assert connected["caller"] == CALLER and ended["outcome"] == "completed-caller-hangup"

    invite = next(e for e in te if e["event"] == "incoming")["invite"]
    assert CALLER in header(invite, "From") and "Phone Caller" in header(invite, "From")
    assert CALLER in header(invite, "P-Asserted-Identity")
    diversion = header(invite, "Diversion")
    assert BUSINESS in diversion and "reason=unconditional" in diversion, diversion
    history = header(invite, "History-Info")
    assert BUSINESS in history and "index=1.1" in history and MOBILE in history, history
    assert invite.startswith(f"INVITE sip:{MOBILE}@127.0.0.4")

    # the tone each side sent reached the other
    up_c = next(e["t"] for e in ce if e["event"] == "confirmed")
    t0_c = next(e["t"] for e in ce if e["event"] == "media")
    share, n = wav.tone_share(caller_wav, 1700.0, start_s=up_c - t0_c + 0.3)
    assert n >= 15 and share > 0.8, f"telecommuter's tone at the caller: {share:.2f} of {n}"
    up_t = next(e["t"] for e in te if e["event"] == "confirmed")
    t0_t = next(e["t"] for e in te if e["event"] == "media")
    share, n = wav.tone_share(tele_wav, 1000.0, start_s=up_t - t0_t + 0.3)
    assert n >= 15 and share > 0.8, f"caller's tone at the telecommuter: {share:.2f} of {n}"
    inc.wait_idle()


def test_desk_then_logged_out_voicemail_then_busy_and_all_survives_restart(inc: B2bua, watcher_factory: Any) -> None:
    status, desk = inc.http("POST", "/v1/desks", body={"extension": "2101", "name": "3rd floor, window",
                                                       "contact": f"sip:2101@{DESK_IP}:{inc.far_port}"})
    assert status == 201, desk
    uid, token = make_user(inc, mode_on=False, telecommuter_number=MOBILE)
    events = watcher_factory(inc, uid, token)
    status, view = inc.http("PUT", f"/v1/users/{uid}/desk", token=token, body={"extension": "2101"})
    assert status == 200 and view["desk"] == "2101" and view["rings"] == "desk", view

    # at the desk: the desk device rings, not the telecommuter number
    desk_uas = uas(inc, "uas_answer.xml", ip=DESK_IP, name="desk")
    tele_uas = uas(inc, "uas_answer.xml", ip="127.0.0.4", name="tele")
    r = uac(inc, "uac_call.xml", called=BUSINESS, hold_ms=1000, name="call-desk").start().wait(30)
    assert r.rc == 0, r.out
    d = desk_uas.wait(10)
    assert d.requests().count("INVITE") == 1 and d.rc == 0
    assert call_events(events, "ringing")["ringing"] == "desk"

    # telecommuter mode logs the user out of the desk; leaving it restores the free desk
    status, body = inc.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "on-demand"})
    assert status == 200 and body["user"]["desk"] is None and body["user"]["restore_desk"] == "2101", body
    assert body["user"]["rings"] == "telecommuter"
    assert inc.http("GET", "/v1/desks/2101")[1]["occupant"] is None
    status, body = inc.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "off"})
    assert status == 200 and body["user"]["desk"] == "2101" and body["user"]["restore_desk"] is None, body
    # again, and this time someone else hot-desks there meanwhile
    status, body = inc.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "on-demand"})
    assert status == 200 and body["user"]["desk"] is None
    uid2, token2 = make_user(inc, extension="2002", business="+493012340000", mode_on=False)
    status, body = inc.http("PUT", f"/v1/users/{uid2}/desk", token=token2, body={"extension": "2101"})
    assert status == 200, body
    status, body = inc.http("PUT", f"/v1/users/{uid}/desk", token=token, body={"extension": "2101"})
    assert status == 409 and body["rule"] in ("desk-occupied", "telecommuter-mode-on"), body
    # leaving telecommuter mode cannot restore the taken desk: the user is logged out
    status, body = inc.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "off"})
    assert status == 200 and body["user"]["desk"] is None and body["user"]["rings"] == "voicemail", body
    desk_event = events.wait_event("desk", lambda e: e.get("logged_out") is True)
    assert desk_event["desk"] is None and desk_event["restored"] is False

    # logged out, voicemail on: greeting, then the caller's message is recorded
    caller_wav = inc.workdir / "vm-caller.wav"
    caller = caller_phone(inc, "vm-caller", BUSINESS, tone_hz="1000", record=str(caller_wav), hangup_after_s="5",
                          max_s="30")
    ce = caller.wait(30)
    assert any(e["event"] == "confirmed" for e in ce), ce
    new = events.wait_event("voicemail", lambda e: e.get("change") == "new")
    assert new["waiting"] is True and new["unread"] == 1, new
    assert new["message"]["caller"] == CALLER
    status, box = inc.http("GET", f"/v1/users/{uid}/voicemail", token=token)
    assert status == 200 and box["total"] == 1 and box["unread"] == 1, box
    msg = box["messages"][0]
    assert msg["caller"] == CALLER and msg["called"] == BUSINESS and 2.0 < msg["duration_s"] < 6.0, msg
    audio = inc.workdir / "downloaded.wav"
    status, raw = inc.http_bytes("GET", f"/v1/users/{uid}/voicemail/{msg['id']}/audio", token=token)
    assert status == 200
    audio.write_bytes(raw)
    share, n = wav.tone_share(audio, 1000.0)
    assert n >= 15 and share > 0.8, f"caller's tone in the message: {share:.2f} of {n}"
    # the caller heard the greeting (its 1400 Hz beep) before the recording started
    share, n = wav.tone_share(caller_wav, 1400.0, candidates=(523.0, 659.0, 784.0, 1000.0, 1400.0), end_s=2.0)
    assert n >= 2 and share > 0.2, f"greeting beep: {share:.2f} of {n}"
    status, m = inc.http("PATCH", f"/v1/users/{uid}/voicemail/{msg['id']}", token=token, body={"read": True})
    assert status == 200 and m["read"] is True
    assert inc.http("GET", f"/v1/users/{uid2}/voicemail", token=token)[0] == 403  # not theirs
    cdr = next(c for c in inc.http("GET", "/v1/cdrs")[1]["cdrs"] if c["outcome"] == "voicemail")
    assert cdr["kind"] == "incoming" and cdr["caller"] == CALLER and cdr["trunk_in"] == "carrier"

    # voicemail off: busy
    status, body = inc.http("PATCH", f"/v1/users/{uid}", token=token, body={"voicemail": False})
    assert status == 200 and body["rings"] == "busy", body
    r = uac(inc, "uac_fail.xml", called=BUSINESS, name="busy").start().wait(30)
    assert 486 in r.statuses(), r.statuses()
    assert tele_uas.stop().requests().count("INVITE") == 0  # never the telecommuter number: mode is off
    inc.wait_idle()

    # a restart keeps the desk assignment and the voicemail
    assert inc.stop() == 0
    inc.start()
    status, box2 = inc.http("GET", f"/v1/users/{uid}/voicemail", token=token)
    assert status == 200 and [x["id"] for x in box2["messages"]] == [msg["id"]] and box2["unread"] == 0
    status, raw2 = inc.http_bytes("GET", f"/v1/users/{uid}/voicemail/{msg['id']}/audio", token=token)
    assert status == 200 and raw2 == raw
    status, view2 = inc.http("GET", f"/v1/users/{uid2}", token=token2)
    assert status == 200 and view2["desk"] == "2101"
    status, desks = inc.http("GET", "/v1/desks")
    assert desks["desks"][0]["occupant"] == uid2
    assert inc.http("DELETE", f"/v1/users/{uid}/voicemail/{msg['id']}", token=token)[0] == 204
    assert inc.http("GET", f"/v1/users/{uid}/voicemail", token=token)[1]["total"] == 0


def _waiting_round(b: B2bua, tag: str, expect_rung: int) -> None:
    """Three calls to the same DID while the first stays up; count how many reached the telecommuter."""
    tele = uas(b, "uas_answer.xml", ip="127.0.0.4", name=f"tele-{tag}", calls=3, hold_ms=300)
    first = uac(b, "uac_call.xml", called=BUSINESS, hold_ms=7000, name=f"first-{tag}").start()
    time.sleep(1.5)
    second_scn = "uac_call.xml" if expect_rung >= 2 else "uac_fail.xml"
    second = uac(b, second_scn, called=BUSINESS, hold_ms=2000, name=f"second-{tag}", instance=1).start()
    time.sleep(1.5)
    third = uac(b, "uac_fail.xml", called=BUSINESS, name=f"third-{tag}", instance=2).start()
    r3 = third.wait(20)
    r2 = second.wait(20)
    r1 = first.wait(20)
    assert r1.rc == 0, r1.out
    assert 486 in r3.statuses(), r3.statuses()  # a further call always gets the fallback (busy: voicemail off)
    if expect_rung >= 2:
        assert r2.rc == 0 and 200 in r2.statuses(), r2.out
    else:
        assert 486 in r2.statuses(), r2.statuses()
    t = tele.stop()
    assert t.requests().count("INVITE") == expect_rung, t.first_lines()
    b.wait_idle()


def test_call_waiting_rings_one_more_call_and_a_third_gets_the_fallback(inc: B2bua) -> None:
    uid, token = make_user(inc)
    status, body = inc.http("PATCH", f"/v1/users/{uid}", token=token, body={"voicemail": False, "call_waiting": True})
    assert status == 200 and body["call_waiting"] is True, body
    _waiting_round(inc, "cw-on", expect_rung=2)
    status, body = inc.http("PATCH", f"/v1/users/{uid}", token=token, body={"call_waiting": False})
    assert status == 200
    _waiting_round(inc, "cw-off", expect_rung=1)


def test_unknown_did_paging_and_caller_cancel(inc: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(inc)
    events = watcher_factory(inc, uid, token)
    # a number in our DID range that is nobody's: 404, nothing dialled
    r = uac(inc, "uac_fail.xml", called="+493012399999", name="unknown").start().wait(20)
    assert 404 in r.statuses(), r.statuses()
    # a page is not redirected to a mobile: 480, the telecommuter is not rung
    tele = uas(inc, "uas_noanswer.xml", ip="127.0.0.4", name="tele", calls=3)
    r = uac(inc, "uac_page.xml", called=BUSINESS, name="page").start().wait(20)
    assert 480 in r.statuses(), r.statuses()
    # the caller hangs up while the telecommuter phone rings: that leg is CANCELled, nothing is left
    r = uac(inc, "uac_cancel_ringing.xml", called=BUSINESS, name="cancel").start().wait(20)
    assert r.rc == 0 and 487 in r.statuses(), r.out
    # an internal call from the PBX trunk by extension is a normal call: it rings the telecommuter too
    r = uac(inc, "uac_cancel_ringing.xml", called="2001", src_ip="127.0.0.6", name="ext", instance=1).start().wait(20)
    assert r.rc == 0 and 487 in r.statuses(), r.out
    r = uac(inc, "uac_fail.xml", called="2999", src_ip="127.0.0.6", name="no-ext", instance=1).start().wait(20)
    assert 404 in r.statuses(), r.statuses()
    t = tele.stop()
    assert t.requests().count("INVITE") == 2 and t.requests().count("CANCEL") == 2, t.first_lines()
    events.wait_for("ended", pred=lambda e: e.get("called") == "2001")
    outcomes = [(e["called"], e["outcome"]) for e in events.events if e.get("state") == "ended"]
    assert outcomes == [(BUSINESS, "paging"), (BUSINESS, "cancelled"), ("2001", "cancelled")], outcomes
    inc.wait_idle()
    assert inc.metric("b2bua_invites_rejected_total", code="404", reason="unknown-number") == 1

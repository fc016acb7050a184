"""Routing on the live settings over real SIP (issue 17, second part): the built-in profiles' effects (Home
forwards with the caller's identity and Diversion kept; Mobile rings desk and mobile, the first answer wins and
the other leg gets CANCEL with `Reason: SIP;cause=200`), forwarding on busy and on no answer, do-not-disturb.

Peers: callers on the carrier trunk (127.0.0.2), forward numbers on the carrier's far side (127.0.0.3), mobiles on
the "mobile" trunk (127.0.0.4), desk devices on 127.0.0.5; SIPp where only signalling matters, pjsua2 phones
where the winner's media is checked (tone detected)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.test_callback import BUSINESS, MOBILE, ROUTES, make_user, phone
from tests.e2e.test_incoming import CALLER, DESK_IP, INCOMING_CONFIG, caller_phone, header
from tests.support import wav
from tests.support.procs import B2bua, PhoneProc, uac, uas

pytestmark = pytest.mark.e2e

HOME = "+494012345678"
ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


@pytest.fixture
def rt(start_b2bua: Callable[..., B2bua]) -> B2bua:
    return start_b2bua(extra_config=INCOMING_CONFIG, routes_before=ROUTES, no_answer_timeout_s=4)


def ok(b: B2bua, method: str, path: str, token: str | None = "admin", body: Any = None) -> Any:
    status, data = b.http(method, path, token=token, body=body)
    assert 200 <= status < 300, (method, path, status, data)
    return data


def desk_for(b: B2bua, uid: str, token: str) -> None:
    contact = f"sip:2101@{DESK_IP}:{b.far_port}"
    ok(b, "POST", "/v1/desks", body={"extension": "2101", "name": "desk", "contact": contact})
    assert ok(b, "PUT", f"/v1/users/{uid}/desk", token, {"extension": "2101"})["desk"] == "2101"


def invite_of(messages: list[str]) -> str:
    return next(m for m in messages if m.startswith("INVITE "))


def assert_forwarded(invite: str, reason: str) -> None:
    assert invite.startswith(f"INVITE sip:{HOME}@127.0.0.3"), invite.splitlines()[0]
    assert CALLER in header(invite, "From") and CALLER in header(invite, "P-Asserted-Identity"), invite
    diversion = header(invite, "Diversion")
    assert BUSINESS in diversion and f"reason={reason}" in diversion, diversion
    assert BUSINESS in header(invite, "History-Info"), invite


def test_home_forwards_then_busy_and_no_answer_forwarding(rt: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(rt, mode_on=False, home_number="040 12345678")
    events = watcher_factory(rt, uid, token)
    assert ok(rt, "POST", "/v1/users/me/profiles/home/select", token)["name"] == "Home"

    # Home: straight to the home number, as the caller, with Diversion naming the business number
    far = uas(rt, "uas_answer.xml", ip="127.0.0.3", name="home")
    r = uac(rt, "uac_call.xml", called=BUSINESS, caller=CALLER, name="call-home").start().wait(30)
    assert r.rc == 0 and 200 in r.statuses(), r.out
    assert_forwarded(invite_of(far.wait(10).messages), "unconditional")
    rt.wait_idle()

    # at the desk with busy forwarding: the desk answers 486, the home number takes the call
    ok(rt, "PATCH", "/v1/users/me/settings", token, {"forwarding": {"unconditional": None, "busy": HOME}})
    desk_for(rt, uid, token)
    desk = uas(rt, "uas_busy.xml", ip=DESK_IP, name="desk-busy")
    far = uas(rt, "uas_answer.xml", ip="127.0.0.3", name="fwd-busy")
    r = uac(rt, "uac_call.xml", called=BUSINESS, caller=CALLER, name="call-busy").start().wait(30)
    assert r.rc == 0 and 200 in r.statuses(), r.out
    assert desk.wait(10).requests().count("INVITE") == 1
    assert_forwarded(invite_of(far.wait(10).messages), "user-busy")
    rt.wait_idle()

    # no-answer forwarding: the desk rings for the user's ring time, is CANCELled, the home number rung
    ok(rt, "PATCH", "/v1/users/me/settings", token, {"forwarding": {"busy": None, "no_answer": HOME, "ring_time_s": 5}})
    desk = uas(rt, "uas_noanswer.xml", ip=DESK_IP, name="desk-noanswer")
    far = uas(rt, "uas_answer.xml", ip="127.0.0.3", name="fwd-noanswer")
    since = len(events.events)
    started = time.monotonic()
    call = uac(rt, "uac_call.xml", called=BUSINESS, caller=CALLER, name="call-noanswer").start()
    events.wait_for("forwarding", pred=lambda e: e.get("to") == "no_answer", timeout=15)
    waited = time.monotonic() - started
    assert 4.5 < waited < 8.0, waited
    r = call.wait(30)
    assert r.rc == 0 and 200 in r.statuses(), r.out
    assert desk.wait(10).requests()[:2] == ["INVITE", "CANCEL"]
    assert_forwarded(invite_of(far.wait(10).messages), "no-answer")
    assert next(e for e in events.events[since:] if e.get("state") == "forwarding")["because"] == "no-answer"
    print(f"no-answer forwarding after {waited:.2f} s (ring time 5 s)")
    rt.wait_idle()


def test_dnd_sends_calls_to_voicemail_else_busy(rt: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(rt)  # on-demand: calls would ring the mobile
    events = watcher_factory(rt, uid, token)
    tele = uas(rt, "uas_answer.xml", ip="127.0.0.4", name="tele")
    ok(rt, "PUT", "/v1/users/me/presence", token, {"status": "do-not-disturb", "message": ""})
    r = uac(rt, "uac_call.xml", called=BUSINESS, caller=CALLER, name="dnd-vm").start().wait(30)
    assert r.rc == 0 and 200 in r.statuses(), r.out  # voicemail answered
    assert events.wait_for("voicemail", pred=lambda e: e.get("direction") == "in")["because"] == "dnd"
    ok(rt, "PATCH", f"/v1/users/{uid}", token, {"voicemail": False})
    r = uac(rt, "uac_fail.xml", called=BUSINESS, caller=CALLER, name="dnd-busy").start().wait(30)
    assert 486 in r.statuses(), r.statuses()
    assert tele.stop().requests().count("INVITE") == 0
    rt.wait_idle()


def _heard(log: list[dict[str, Any]], path: Any, hz: float, after_s: float = 0.3) -> tuple[float, int]:
    up = next(e["t"] for e in log if e["event"] == "confirmed")
    t0 = next(e["t"] for e in log if e["event"] == "media")
    return wav.tone_share(path, hz, start_s=up - t0 + after_s)


def _twin_round(rt: B2bua, tag: str, winner: PhoneProc, winner_wav: Any, loser_ip: str, slot: int,
                prompt_s: float = 0.0) -> None:
    """One call; ``prompt_s``: how long the winner heard the confirmation prompt before the caller's audio."""
    loser = uas(rt, "uas_noanswer.xml", ip=loser_ip, name=f"loser-{tag}")
    caller_wav = rt.workdir / f"caller-{tag}.wav"
    caller = caller_phone(rt, f"caller-{tag}", BUSINESS, slot=slot, tone_hz="1000", record=str(caller_wav),
                          hangup_after_s="5", max_s="30")
    ce, we = caller.wait(30), winner.wait(30)
    lost = loser.wait(15)
    assert lost.requests()[:2] == ["INVITE", "CANCEL"], lost.first_lines()
    cancel = next(m for m in lost.messages if m.startswith("CANCEL "))
    assert header(cancel, "Reason") == ELSEWHERE, cancel
    share, n = _heard(ce, caller_wav, 1700.0)
    assert n >= 15 and share > 0.8, f"{tag}: the winner's tone at the caller: {share:.2f} of {n}"
    share, n = _heard(we, winner_wav, 1000.0, 0.3 + prompt_s)
    assert n >= 15 and share > 0.8, f"{tag}: the caller's tone at the winner: {share:.2f} of {n}"
    rt.wait_idle()


def test_mobile_profile_twins_desk_and_mobile_first_answer_wins(rt: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(rt, mode_on=False, telecommuter_number=MOBILE, confirm_digit="1")
    events = watcher_factory(rt, uid, token)
    assert ok(rt, "POST", "/v1/users/me/profiles/mobile/select", token)["name"] == "Mobile"
    desk_for(rt, uid, token)

    # the desk answers first: the mobile's ringing leg is CANCELled with the Reason
    desk_wav = rt.workdir / "desk.wav"
    desk = phone(rt, "desk", DESK_IP, rt.far_port + 3000, tone_hz="1700", record=str(desk_wav),
                 answer_after_s="1.0", max_s="30")
    _twin_round(rt, "desk", desk, desk_wav, "127.0.0.4", 0)
    ringing = events.wait_for("ringing", pred=lambda e: e.get("direction") == "in")
    assert (ringing["ringing"], ringing["twin"]) == ("desk", "twin")
    assert events.wait_for("connected", pred=lambda e: e.get("direction") == "in")["answered"] == "desk"

    # the mobile answers and presses the confirmation digit: the desk's ringing leg is CANCELled
    mobile_wav = rt.workdir / "mobile.wav"
    mobile = phone(rt, "mobile", "127.0.0.4", rt.far_port + 3200, tone_hz="1700", record=str(mobile_wav),
                   answer_after_s="0.5", dtmf="1", max_s="30")
    _twin_round(rt, "mobile", mobile, mobile_wav, DESK_IP, 1, prompt_s=1.5)
    answered = [e.get("answered") for e in events.events if e.get("state") == "connected"]
    assert answered == ["desk", "twin"], answered

"""Keep-connected mode end to end: one persistent leg to the telecommuter's pjsua2 phone (127.0.0.4) carries
outgoing calls to pjsua2 phones on the carrier side (127.0.0.3) and incoming calls from the trunk (127.0.0.2);
hold with music, park, swap, call waiting, keypad codes, and reconnect after the phone dies."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from b2bua.media.sounds import MUSIC_TONES
from tests.e2e.test_callback import BUSINESS, MOBILE, ROUTES, make_user, phone
from tests.e2e.test_incoming import caller_phone
from tests.support import wav
from tests.support.procs import B2bua, PhoneProc, uac

pytestmark = pytest.mark.e2e

KC_CONFIG = """
[telecommuter]
home_country = "DE"
ring_timeout_s = 4

[keep_connected]
rtp_timeout_s = 2
reconnect_timeout_s = 12
offer_timeout_s = 8
park_timeout_s = 60

# a second far end for calls to TARGET_B, so two target phones can be up at once
[[trunks]]
name = "other"
host = "127.0.0.7"
port = @FAR_PORT@
"""
KC_ROUTES = ROUTES + """
[[routes]]
pattern = "\\\\+493098765433"
trunk = "other"
"""
TARGET_A, TARGET_B = "030 98765432", "030 98765433"
TONES = (425.0, 1000.0, 1700.0, 1200.0, *MUSIC_TONES)


@pytest.fixture
def kc(start_b2bua: Callable[..., B2bua]) -> B2bua:
    return start_b2bua(extra_config=KC_CONFIG, routes_before=KC_ROUTES, no_answer_timeout_s=6)


def keep_connected(b: B2bua, watcher_factory: Any, via_flag: bool = False, **user: Any) -> tuple[str, str, Any]:
    """A user in keep-connected mode: asked for directly, or forced by "line without disconnect supervision"."""
    uid, token = make_user(b, mode_on=False, telecommuter_number=MOBILE, **user)
    events = watcher_factory(b, uid, token)
    if via_flag:
        assert b.http("PATCH", f"/v1/users/{uid}", token=token, body={"no_supervision": True})[0] == 403  # admin's
        assert b.http("PATCH", f"/v1/users/{uid}", body={"no_supervision": True})[0] == 200
    mode = "on-demand" if via_flag else "keep-connected"
    status, body = b.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": mode})
    assert status == 200 and body["user"]["mode"] == "keep-connected", body
    return uid, token, events


def line_phone(b: B2bua, name: str = "tele", **kw: str) -> PhoneProc:
    return phone(b, name, "127.0.0.4", b.far_port + 3000, tone_hz="1700", answer_after_s="0.3", max_s="90", **kw)


def target_phone(b: B2bua, name: str, tone: str, ip: str = "127.0.0.3", **kw: str) -> PhoneProc:
    return phone(b, name, ip, b.far_port + 3500, tone_hz=tone, answer_after_s="0.3", max_s="90", **kw)


def tone_between(path: Any, events: list[dict[str, Any]], hz: float, start: float, end: float) -> tuple[float, int]:
    """Share of audible 100 ms blocks dominated by ``hz`` between two monotonic instants (phone event times)."""
    t0 = next(e["t"] for e in events if e["event"] == "media")
    return wav.tone_share(path, hz, candidates=TONES, start_s=start - t0, end_s=end - t0)


def ev_time(events: list[dict[str, Any]], name: str, nth: int = 0) -> float:
    return float([e["t"] for e in events if e["event"] == name][nth])


def test_two_outgoing_and_one_incoming_call_over_one_line_invite(kc: B2bua, watcher_factory: Any) -> None:
    tele_wav = kc.workdir / "tele.wav"
    tele = line_phone(kc, record=str(tele_wav))
    uid, token, events = keep_connected(kc, watcher_factory, via_flag=True)
    events.wait_for("line-up", kind="session")

    a_wav = kc.workdir / "a.wav"
    a = target_phone(kc, "a", "1000", record=str(a_wav), hangup_after_s="3")
    status, body = kc.http("POST", f"/v1/users/{uid}/session/calls", token=token, body={"target": TARGET_A})
    assert status == 201, body
    ae = a.wait(30)
    events.wait_for("call-connected", kind="session", pred=lambda e: e["call"] == body["call"])
    events.wait_for("call-ended", kind="session", pred=lambda e: e["call"] == body["call"])

    b = target_phone(kc, "b", "1200", ip="127.0.0.7", hangup_after_s="2")
    status, body2 = kc.http("POST", f"/v1/users/{uid}/session/calls", token=token, body={"target": TARGET_B})
    assert status == 201, body2
    be = b.wait(30)
    assert any(e["event"] == "confirmed" for e in be), be
    events.wait_for("call-connected", kind="session", pred=lambda e: e["call"] == body2["call"])
    events.wait_for("call-ended", kind="session", pred=lambda e: e["call"] == body2["call"])

    c_wav = kc.workdir / "c.wav"
    c = caller_phone(kc, "c", BUSINESS, tone_hz="1000", record=str(c_wav), hangup_after_s="3", max_s="30")
    ce = c.wait(30)
    events.wait_for("call-connected", kind="session", pred=lambda e: e["call"].startswith("in-"))
    events.wait_for("call-ended", kind="session", pred=lambda e: e["call"].startswith("in-"))

    status, view = kc.http("GET", f"/v1/users/{uid}/session", token=token)
    assert status == 200 and view["line"] == "up" and view["line_invites"] == 1 and view["calls"] == [], view
    status, _ = kc.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "off"})
    assert status == 200
    te = tele.wait(20)
    assert [e["event"] for e in te].count("incoming") == 1, te  # exactly one INVITE to the telecommuter
    assert any(e["event"] == "disconnected" for e in te)
    events.wait_for("session-ended", kind="session")

    # audio both ways on each call
    a_up, a_end = ev_time(ae, "confirmed"), ev_time(ae, "hangup")
    share, n = tone_between(a_wav, ae, 1700.0, a_up + 0.5, a_end)
    assert n >= 10 and share > 0.8, f"telecommuter at target A: {share:.2f} of {n}"
    share, n = tone_between(tele_wav, te, 1000.0, a_up + 0.5, a_end)
    assert n >= 10 and share > 0.8, f"target A at the telecommuter: {share:.2f} of {n}"
    c_up, c_end = ev_time(ce, "confirmed"), ev_time(ce, "hangup")
    share, n = tone_between(c_wav, ce, 1700.0, c_up + 0.5, c_end)
    assert n >= 10 and share > 0.8, f"telecommuter at the caller: {share:.2f} of {n}"
    kc.wait_idle()


def nth(events: Any, state: str, n: int, timeout: float = 20.0) -> dict[str, Any]:
    """The n-th session event in ``state`` (waiting for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in list(events.events) if e["kind"] == "session" and e.get("state") == state]
        if len(found) >= n:
            return dict(found[n - 1])
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} {state!r} events: {events.events}")


MUSIC_SHARE = 0.6  # 100 ms blocks across a note change hold two notes; a connected line scores ~0


def music_between(path: Any, events: list[dict[str, Any]], start: float, end: float) -> tuple[float, int]:
    t0 = next(e["t"] for e in events if e["event"] == "media")
    return wav.tone_share(path, MUSIC_TONES, candidates=TONES, start_s=start - t0, end_s=end - t0)


def test_hold_music_call_waiting_swap_park_and_a_further_call_gets_the_fallback(kc: B2bua,
                                                                                  watcher_factory: Any) -> None:
    tele_wav, a_wav, c_wav = kc.workdir / "tele.wav", kc.workdir / "a.wav", kc.workdir / "c.wav"
    tele = line_phone(kc, record=str(tele_wav))
    uid, token, events = keep_connected(kc, watcher_factory, call_waiting=True, voicemail=False)
    events.wait_for("line-up", kind="session")

    def act(action: str, **kw: Any) -> dict[str, Any]:
        status, body = kc.http("POST", f"/v1/users/{uid}/session/actions", token=token, body={"action": action, **kw})
        assert status == 200, (action, body)
        time.sleep(2.5)
        return dict(body)

    a = target_phone(kc, "a", "1000", record=str(a_wav))
    status, dialled = kc.http("POST", f"/v1/users/{uid}/session/calls", token=token, body={"target": TARGET_A})
    assert status == 201, dialled
    events.wait_for("call-connected", kind="session", pred=lambda e: e["call"] == dialled["call"])
    time.sleep(2)
    t = {"hold": time.monotonic()}
    act("hold")
    t["retrieve"] = time.monotonic()
    act("retrieve")

    # call waiting: C is offered while A talks; a further call D gets the fallback (busy: voicemail off)
    c = caller_phone(kc, "c", BUSINESS, tone_hz="1200", record=str(c_wav), max_s="60")
    offered = events.wait_for("call-offered", kind="session")
    assert offered["waiting"] is True and offered["caller"] == "+4940111222"
    r = uac(kc, "uac_fail.xml", called=BUSINESS, name="d", instance=2).start().wait(20)
    assert 486 in r.statuses(), r.statuses()
    assert kc.http("POST", f"/v1/users/{uid}/session/actions", token=token,
                   body={"action": "unpark", "slot": 1})[0] == 409  # nothing parked: refused, nothing changes
    t["accept"] = time.monotonic()
    view = act("accept")
    states = {x["call"]: x["state"] for x in view["calls"]}
    assert states == {dialled["call"]: "held", offered["call"]: "active"}, view
    t["swap"] = time.monotonic()
    view = act("swap")
    assert {x["call"]: x["state"] for x in view["calls"]} == {dialled["call"]: "active", offered["call"]: "held"}
    t["park"] = time.monotonic()
    view = act("park", call=dialled["call"])
    parked = next(x for x in view["calls"] if x["call"] == dialled["call"])
    assert parked["state"] == "parked" and parked["slot"] == 1, view
    t["unpark"] = time.monotonic()
    act("unpark", slot=1)
    t["end"] = time.monotonic()
    # another waiting call, rejected: that caller gets the fallback (busy), the active call is untouched
    e_call = uac(kc, "uac_fail.xml", called=BUSINESS, name="e", instance=3).start()
    waiting = events.wait_for("call-offered", kind="session", pred=lambda e: e["call"] != offered["call"])
    assert waiting["waiting"] is True
    view = act("reject")
    assert 486 in e_call.wait(20).statuses()
    assert {x["call"]: x["state"] for x in view["calls"]}[dialled["call"]] == "active", view
    act("hangup", call=dialled["call"])
    act("hangup", call=offered["call"])
    status, view = kc.http("GET", f"/v1/users/{uid}/session", token=token)
    assert view["calls"] == [] and view["line"] == "up" and view["line_invites"] == 1, view
    ae, ce = a.wait(20), c.wait(20)
    assert kc.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "off"})[0] == 200
    te = tele.wait(20)
    assert [e["event"] for e in te].count("incoming") == 1

    # what A heard: music while held/parked/waiting behind C, the telecommuter (1700 Hz) while connected
    for what, start, end in (("music", "hold", "retrieve"), ("1700", "retrieve", "accept"),
                             ("music", "accept", "swap"), ("1700", "swap", "park"), ("music", "park", "unpark"),
                             ("1700", "unpark", "end")):
        share, n = (music_between(a_wav, ae, t[start] + 0.6, t[end]) if what == "music"
                    else tone_between(a_wav, ae, 1700.0, t[start] + 0.6, t[end]))
        bar = MUSIC_SHARE if what == "music" else 0.7
        assert n >= 8 and share > bar, f"A between {start} and {end}: {what} {share:.2f} of {n}"
    share, n = tone_between(c_wav, ce, 1700.0, t["accept"] + 0.6, t["swap"])
    assert n >= 8 and share > 0.7, f"C connected: {share:.2f} of {n}"
    share, n = music_between(c_wav, ce, t["swap"] + 0.6, t["park"])
    assert n >= 8 and share > MUSIC_SHARE, f"C held: music {share:.2f} of {n}"
    share, n = tone_between(tele_wav, te, 1200.0, t["accept"] + 0.6, t["swap"])
    assert n >= 8 and share > 0.7, f"C at the telecommuter: {share:.2f} of {n}"
    kc.wait_idle()



def test_line_dies_with_calls_held_and_parked_and_each_action_redials_once(kc: B2bua, watcher_factory: Any) -> None:
    a_wav, b_wav = kc.workdir / "a.wav", kc.workdir / "b.wav"
    t1_wav, t2_wav = kc.workdir / "t1.wav", kc.workdir / "t2.wav"
    t1 = line_phone(kc, "t1", record=str(t1_wav))
    uid, token, events = keep_connected(kc, watcher_factory, voicemail=False)
    events.wait_for("line-up", kind="session")

    def post(path: str, body: dict[str, Any], expect: int = 200) -> dict[str, Any]:
        status, got = kc.http("POST", f"/v1/users/{uid}/session/{path}", token=token, body=body)
        assert status == expect, (path, body, got)
        return dict(got)

    def session() -> dict[str, Any]:
        return dict(kc.http("GET", f"/v1/users/{uid}/session", token=token)[1])

    a = target_phone(kc, "a", "1000", record=str(a_wav))
    call_a = post("calls", {"target": TARGET_A}, 201)["call"]
    events.wait_for("call-connected", kind="session", pred=lambda e: e["call"] == call_a)
    post("actions", {"action": "park"})
    b = target_phone(kc, "b", "1200", ip="127.0.0.7", record=str(b_wav))
    call_b = post("calls", {"target": TARGET_B}, 201)["call"]
    events.wait_for("call-connected", kind="session", pred=lambda e: e["call"] == call_b)
    post("actions", {"action": "hold"})
    time.sleep(1)

    # the phone dies without a BYE: the RTP timeout finds out; nothing is lost, both hear music
    killed = time.monotonic()
    t1.proc.kill()
    t1.wait(5)
    down = events.wait_for("line-down", kind="session", timeout=10)
    assert sorted(down["kept"]) == sorted([call_a, call_b]), down
    time.sleep(2.5)
    heard = time.monotonic()
    assert {c["call"]: c["state"] for c in session()["calls"]} == {call_a: "parked", call_b: "held"}

    # retrieve re-dials the telecommuter once and reconnects B with audio both ways
    t2 = line_phone(kc, "t2", record=str(t2_wav), hangup_after_s="5")  # this one drops the line with a BYE
    post("actions", {"action": "retrieve"})
    nth(events, "line-up", 2)
    events.wait_for("call-connected", kind="session", pred=lambda e: e["call"] == call_b and e["id"] > down["id"])
    assert session()["line_invites"] == 2
    t2.wait(15)
    down2 = nth(events, "line-down", 2)
    assert sorted(down2["kept"]) == sorted([call_a, call_b]), down2

    # unpark re-dials once more and reconnects A
    t3 = line_phone(kc, "t3")
    post("actions", {"action": "unpark", "slot": 1})
    nth(events, "line-up", 3)
    events.wait_for("call-connected", kind="session", pred=lambda e: e["call"] == call_a and e["id"] > down2["id"])
    assert session()["line_invites"] == 3
    time.sleep(2.5)

    # and now the user is unreachable: after the bound both calls get the fallback, with a reason
    t3_killed = time.monotonic()
    t3.proc.kill()
    te3 = t3.wait(5)
    failed = events.wait_for("reconnect-failed", kind="session", timeout=30)
    assert sorted(failed["calls"]) == sorted([call_a, call_b])
    ae, be = a.wait(20), b.wait(20)
    assert any(e["event"] == "disconnected" for e in ae) and any(e["event"] == "disconnected" for e in be)
    assert session()["calls"] == []
    assert kc.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "off"})[0] == 200
    kc.wait_idle()

    # A heard music while parked (also after the line died), B while held; each heard the line once back
    share, n = music_between(a_wav, ae, killed + 0.5, heard)
    assert n >= 10 and share > MUSIC_SHARE, f"A parked: {share:.2f} of {n}"
    share, n = music_between(b_wav, be, killed + 3.0, heard)
    assert n >= 3 and share > MUSIC_SHARE, f"B held after the drop: {share:.2f} of {n}"
    # windows from the phones' own clocks (the same monotonic clock), not from when the test saw events
    te2 = t2.events
    t2_up, t2_bye = ev_time(te2, "confirmed"), ev_time(te2, "hangup")
    share, n = tone_between(b_wav, be, 1700.0, t2_up + 0.8, t2_bye - 0.2)
    assert n >= 8 and share > 0.7, f"the new line at B: {share:.2f} of {n}"
    share, n = tone_between(t2_wav, te2, 1200.0, t2_up + 0.8, t2_bye - 0.2)
    assert n >= 8 and share > 0.7, f"B at the new line: {share:.2f} of {n}"
    share, n = tone_between(a_wav, ae, 1700.0, ev_time(te3, "confirmed") + 0.8, t3_killed)
    assert n >= 8 and share > 0.7, f"the third line at A: {share:.2f} of {n}"


@pytest.mark.parametrize("method", ["rfc2833", "info"])
def test_keypad_codes_do_what_the_api_does(kc: B2bua, watcher_factory: Any, method: str) -> None:
    a_wav = kc.workdir / "a.wav"
    # *1 hold, *1 retrieve, *3 park, *5 unpark, *0 hang up (the default codes), typed on the telecommuter phone
    tele = line_phone(kc, dtmf_script="4:*1;7:*1;10:*3;13:*5;16:*0", dtmf_method=method)
    uid, token, events = keep_connected(kc, watcher_factory)
    events.wait_for("line-up", kind="session")
    a = target_phone(kc, "a", "1000", record=str(a_wav))
    status, dialled = kc.http("POST", f"/v1/users/{uid}/session/calls", token=token, body={"target": TARGET_A})
    assert status == 201, dialled
    ae = a.wait(40)
    events.wait_for("call-ended", kind="session", pred=lambda e: e["call"] == dialled["call"])
    states = [e["state"] for e in events.events if e["kind"] == "session" and e.get("call") == dialled["call"]
              and e["state"] in ("call-connected", "call-held", "call-parked", "call-ended")]
    assert states == ["call-connected", "call-held", "call-connected", "call-parked", "call-connected",
                      "call-ended"], states
    assert kc.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "off"})[0] == 200
    te = tele.wait(20)
    sent = [e["t"] for e in te if e["event"] == "sent-dtmf"]
    assert len(sent) == 5 and all(e.get("method") == method for e in te if e["event"] == "sent-dtmf")
    share, n = music_between(a_wav, ae, sent[0] + 0.8, sent[1])
    assert n >= 10 and share > MUSIC_SHARE, f"held by keypad: music {share:.2f} of {n}"
    share, n = tone_between(a_wav, ae, 1700.0, sent[1] + 0.8, sent[2])
    assert n >= 10 and share > 0.7, f"retrieved by keypad: {share:.2f} of {n}"
    share, n = music_between(a_wav, ae, sent[2] + 0.8, sent[3])
    assert n >= 10 and share > MUSIC_SHARE, f"parked by keypad: music {share:.2f} of {n}"
    kc.wait_idle()

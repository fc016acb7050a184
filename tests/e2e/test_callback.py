"""Callback dialling end to end: the real B2BUA, pjsua2 phones and SIPp as the telecommuter's phone (on the
"mobile" trunk, 127.0.0.4) and the target (carrier trunk, 127.0.0.3), the REST API and the live event stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import audio, wav
from tests.support.procs import B2bua, PhoneProc, capture, uas

pytestmark = pytest.mark.e2e

BUSINESS = "+493012345678"
MOBILE = "+491711234567"
TARGET = "+493098765432"

CALLBACK_CONFIG = """
[telecommuter]
home_country = "DE"
user_answer_timeout_s = 3
confirm_timeout_s = 3
failure_tone_s = 2
test_call_confirmation_s = 1.5
"""
ROUTES = """
[[routes]]
pattern = "\\\\+49171.*"
trunk = "mobile"
"""


@pytest.fixture
def cb(start_b2bua: Callable[..., B2bua]) -> B2bua:
    return start_b2bua(extra_config=CALLBACK_CONFIG, routes_before=ROUTES, no_answer_timeout_s=4)


def make_user(b: B2bua, *, extension: str = "2001", business: str = BUSINESS, mode_on: bool = True,
              **extra: Any) -> tuple[str, str]:
    status, body = b.http("POST", "/v1/users", body={"name": "Tele Worker", "extension": extension,
                                                     "business_number": business, **extra})
    assert status == 201, body
    uid, token = body["user"]["id"], body["token"]
    if mode_on:
        status, body = b.http("PUT", f"/v1/users/{uid}/telecommuter", token=token,
                              body={"mode": "on-demand", "number": MOBILE})
        assert status == 200, body
    return uid, token


def phone(b: B2bua, name: str, ip: str, rtp: int, **kw: str) -> PhoneProc:
    args = ["--ip", ip, "--port", str(b.far_port), "--rtp-port", str(rtp)]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", v]
    return PhoneProc(b.workdir, name, args).wait_ready()


def test_callback_rings_user_first_then_target_and_bridges(cb: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(cb)
    events = watcher_factory(cb, uid, token)
    user_wav, target_wav = cb.workdir / "user.wav", cb.workdir / "target.wav"
    user = phone(cb, "user", "127.0.0.4", cb.far_port + 3000, tone_hz="1000", record=str(user_wav),
                 answer_after_s="0.5", max_s="40")
    target = phone(cb, "target", "127.0.0.3", cb.far_port + 3500, tone_hz="1700", record=str(target_wav),
                   answer_after_s="2.5", max_s="40")
    status, call = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": "030 98765432"})
    assert status == 201, call
    assert call["target"] == TARGET and call["kind"] == "callback"
    events.wait_for("connected", pred=lambda e: e["call_id"] == call["id"])
    time.sleep(3)
    status, got = cb.http("GET", f"/v1/calls/{call['id']}", token=token)
    assert status == 200 and got["state"] == "connected"
    assert cb.http("DELETE", f"/v1/calls/{call['id']}", token=token)[0] == 202
    ue, te = user.wait(20), target.wait(20)
    events.wait_for("ended", pred=lambda e: e["call_id"] == call["id"])

    # the telecommuter was rung first; the target only once the telecommuter had answered
    user_up = next(e["t"] for e in ue if e["event"] == "confirmed")
    target_rung = next(e for e in te if e["event"] == "incoming")
    assert target_rung["t"] > user_up
    assert BUSINESS in target_rung["remote"], target_rung  # the target sees the business number
    assert "Tele Worker" in target_rung["remote"]
    user_rung = next(e for e in ue if e["event"] == "incoming")
    assert BUSINESS in user_rung["remote"] and TARGET in user_rung["remote"]  # who is calling, and for whom
    # the API hang-up ended both legs with BYE
    assert any(e["event"] == "disconnected" for e in ue) and any(e["event"] == "disconnected" for e in te)

    states = events.states(call["id"])
    assert states == ["user-calling", "user-ringing", "user-answered", "target-calling", "target-ringing",
                      "connected", "ended"], states
    ended = events.wait_for("ended")
    assert ended["outcome"] == "terminated" and ended["target"] == TARGET

    # ringback while the target rang, then each party's tone at the other end
    # (the WAV starts when the call's media does; the phones' events give the timeline in it)
    t0 = next(e["t"] for e in ue if e["event"] == "media")
    target_up = next(e["t"] for e in te if e["event"] == "confirmed")
    share, n = wav.tone_share(user_wav, 425.0, candidates=(425.0, 1000.0, 1700.0), start_s=user_up - t0,
                              end_s=target_up - t0 - 0.2)
    assert n >= 3 and share > 0.8, f"ringback: {share:.2f} of {n}"
    share, n = wav.tone_share(user_wav, 1700.0, start_s=target_up - t0 + 0.3)
    assert n >= 15 and share > 0.8, f"target's tone at the user: {share:.2f} of {n}"
    share, n = wav.tone_share(target_wav, 1000.0, start_s=0.5)
    assert n >= 15 and share > 0.8, f"user's tone at the target: {share:.2f} of {n}"
    cb.wait_idle()


def test_target_sees_business_number_in_from_and_pai(cb: B2bua) -> None:
    uid, token = make_user(cb)
    user = phone(cb, "user", "127.0.0.4", cb.far_port + 3000, hangup_after_s="2", max_s="30")
    target = uas(cb, "uas_answer.xml")
    status, call = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})
    assert status == 201, call
    user.wait(20)
    t = target.wait(15)
    assert t.rc == 0, t.out
    invite = next(m for m in t.messages if m.startswith("INVITE"))
    headers = dict(line.split(":", 1) for line in invite.splitlines()[1:] if ":" in line)
    assert BUSINESS in headers["From"]
    assert BUSINESS in headers["P-Asserted-Identity"]
    assert "Privacy" not in headers
    cb.wait_idle()


def test_privacy_withholds_the_business_number(cb: B2bua) -> None:
    uid, token = make_user(cb, privacy=True)
    user = phone(cb, "user", "127.0.0.4", cb.far_port + 3000, hangup_after_s="2", max_s="30")
    target = uas(cb, "uas_answer.xml")
    assert cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})[0] == 201
    user.wait(20)
    invite = next(m for m in target.wait(15).messages if m.startswith("INVITE"))
    headers = dict(line.split(":", 1) for line in invite.splitlines()[1:] if ":" in line)
    assert "anonymous" in headers["From"].lower() and BUSINESS not in headers["From"]
    assert headers["Privacy"].strip() == "id" and BUSINESS in headers["P-Asserted-Identity"]
    cb.wait_idle()


def test_confirmation_digit_gates_the_target(cb: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(cb, confirm_digit="1")
    events = watcher_factory(cb, uid, token)
    user = phone(cb, "user", "127.0.0.4", cb.far_port + 3000, dtmf="71", hangup_after_s="4", max_s="30")
    target = phone(cb, "target", "127.0.0.3", cb.far_port + 3500, max_s="30")
    status, call = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})
    assert status == 201
    events.wait_for("connected", pred=lambda e: e["call_id"] == call["id"])
    ue, te = user.wait(20), target.wait(20)
    sent = next(e["t"] for e in ue if e["event"] == "sent-dtmf")
    assert next(e["t"] for e in te if e["event"] == "incoming") > sent  # "7" was ignored, "1" let it through
    states = events.states(call["id"])
    assert states.index("confirming") < states.index("confirmed") < states.index("target-calling")
    cb.wait_idle()


def test_no_confirmation_means_the_target_is_never_called(cb: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(cb, confirm_digit="1")
    events = watcher_factory(cb, uid, token)
    user = phone(cb, "user", "127.0.0.4", cb.far_port + 3000, max_s="15")  # answers, presses nothing
    target = uas(cb, "uas_answer.xml", name="target-never")
    status, call = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})
    assert status == 201
    ended = events.wait_for("ended", pred=lambda e: e["call_id"] == call["id"])
    assert ended["outcome"] == "user-not-confirmed"
    user.wait(10)
    assert target.stop().requests() == []
    cb.wait_idle()


@pytest.mark.parametrize("scenario, outcome", [
    ("uas_busy.xml", "user-busy"), ("uas_noanswer.xml", "user-no-answer"), ("uas_decline.xml", "user-rejected"),
])
def test_user_unavailable_means_target_never_called(cb: B2bua, watcher_factory: Any, scenario: str,
                                                    outcome: str) -> None:
    uid, token = make_user(cb)
    events = watcher_factory(cb, uid, token)
    user = uas(cb, scenario, ip="127.0.0.4", name="user-side")
    target = uas(cb, "uas_answer.xml", name="target-never")
    status, call = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})
    assert status == 201
    ended = events.wait_for("ended", pred=lambda e: e["call_id"] == call["id"], timeout=15)
    assert ended["outcome"] == outcome
    assert user.wait(15).rc == 0
    assert target.stop().requests() == []
    status, over = cb.http("GET", f"/v1/calls/{call['id']}", token=token)  # over: read from the call record
    assert status == 200 and (over["state"], over["outcome"], over["kind"]) == ("ended", outcome, "callback")
    _, other_tok = make_user(cb, extension="2002", business="+493012345679")
    assert cb.http("GET", f"/v1/calls/{call['id']}", token=other_tok)[0] == 404  # not another user's business
    assert cb.http("DELETE", f"/v1/calls/{call['id']}", token=token)[0] == 404  # nothing left to end
    cdr = cb.http("GET", "/v1/cdrs")[1]["cdrs"][0]
    assert cdr["kind"] == "callback" and cdr["outcome"] == outcome and cdr["user_id"] == uid
    cb.wait_idle()


def test_target_busy_plays_busy_tone_then_ends_user_leg_with_reason(cb: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(cb)
    events = watcher_factory(cb, uid, token)
    with capture(cb.workdir, bpf="udp and src host 127.0.0.1 and dst host 127.0.0.4") as pcap:
        user = uas(cb, "uas_answer.xml", ip="127.0.0.4", name="user-side")
        target = uas(cb, "uas_busy.xml", name="target-busy")
        status, call = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})
        assert status == 201
        ended = events.wait_for("ended", pred=lambda e: e["call_id"] == call["id"], timeout=15)
        u = user.wait(15)
    assert target.wait(10).rc == 0 and u.rc == 0, u.out
    assert ended["outcome"] == "target-busy"
    failed = events.wait_for("target-failed")
    assert failed["code"] == 486
    bye = next(m for m in u.messages if m.startswith("BYE"))
    assert "Reason: SIP;cause=486" in bye
    # what the user heard between the target's refusal and our BYE: the 425 Hz busy cadence
    payloads = next(iter(audio.streams(pcap, "127.0.0.1", "127.0.0.4").values()))
    ok, why = audio.tone_in(payloads, 425.0, min_share=0.8)
    assert ok, why
    cb.wait_idle()


def test_user_hanging_up_while_target_rings_cancels_target(cb: B2bua, watcher_factory: Any) -> None:
    uid, token = make_user(cb)
    events = watcher_factory(cb, uid, token)
    user = phone(cb, "user", "127.0.0.4", cb.far_port + 3000, hangup_after_s="1.5", max_s="20")
    target = uas(cb, "uas_noanswer.xml", name="target-rings")
    status, call = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})
    assert status == 201
    ended = events.wait_for("ended", pred=lambda e: e["call_id"] == call["id"], timeout=15)
    assert ended["outcome"] == "user-hangup-while-ringing"
    user.wait(10)
    t = target.wait(10)
    assert t.rc == 0 and t.requests() == ["INVITE", "CANCEL", "ACK"], t.out
    cb.wait_idle()


@pytest.mark.parametrize("target, rule", [
    ("0900 1234567", "class-of-service:standard:premium"),
    ("+1 212 555 0100", "class-of-service:standard:international"),
])
def test_refused_targets_get_403_naming_the_rule_and_nothing_is_dialled(cb: B2bua, target: str,
                                                                         rule: str) -> None:
    uid, token = make_user(cb)
    user = uas(cb, "uas_answer.xml", ip="127.0.0.4", name="user-never")
    far = uas(cb, "uas_answer.xml", name="target-never")
    status, body = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": target})
    assert status == 403 and body["rule"] == rule, body
    assert cb.metric("b2bua_dialling_refused_total", kind="class-of-service", rule=rule) == 1
    time.sleep(0.5)
    assert user.stop().requests() == [] and far.stop().requests() == []
    assert cb.health()["active_calls"] == 0


def test_international_allowed_by_class_of_service(cb: B2bua) -> None:
    uid, token = make_user(cb, class_of_service="international")
    user = uas(cb, "uas_busy.xml", ip="127.0.0.4", name="user-busy")
    status, body = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": "+1 212 555 0100"})
    assert status == 201 and body["target"] == "+12125550100" and body["target_category"] == "international"
    user.wait(10)
    cb.wait_idle()


def test_tokens_isolation_validation_and_restart(cb: B2bua) -> None:
    a_id, a_tok = make_user(cb)
    b_id, b_tok = make_user(cb, extension="2002", business="+493012345679")
    assert cb.http("GET", "/v1/users/me", token=None)[0] == 401
    assert cb.http("GET", "/v1/users/me", token="nope")[0] == 403
    assert cb.http("GET", f"/v1/users/{a_id}", token=b_tok)[0] == 403
    assert cb.http("GET", "/v1/users", token=a_tok)[0] == 403  # provisioning needs the admin token
    assert cb.http("POST", f"/v1/users/{a_id}/calls", token=b_tok, body={"target": TARGET})[0] == 403
    status, body = cb.http("POST", "/v1/users/me/calls", token=a_tok, body=b"{not json")
    assert status == 422
    status, body = cb.http("POST", "/v1/users/me/calls", token=a_tok, body={"target": "not a number"})
    assert status == 422 and body["rule"] == "invalid-number"
    status, body = cb.http("POST", "/v1/users",
                           body={"name": "x", "extension": "2001", "business_number": "+493099999999"})
    assert status == 409, body  # extension taken
    assert cb.http("PUT", "/v1/users/me/telecommuter", token=a_tok,
                   body={"mode": "on-demand", "number": "0900 1234567"})[0] == 403  # a premium "home office"

    user = uas(cb, "uas_noanswer.xml", ip="127.0.0.4", name="user-a")
    status, call = cb.http("POST", "/v1/users/me/calls", token=a_tok, body={"target": TARGET})
    assert status == 201
    assert cb.http("GET", f"/v1/calls/{call['id']}", token=b_tok)[0] == 404
    assert cb.http("DELETE", f"/v1/calls/{call['id']}", token=b_tok)[0] == 404
    assert [c["id"] for c in cb.http("GET", "/v1/calls", token=b_tok)[1]["calls"]] == []
    assert [c["id"] for c in cb.http("GET", "/v1/calls", token=a_tok)[1]["calls"]] == [call["id"]]
    assert cb.http("DELETE", f"/v1/calls/{call['id']}", token=a_tok)[0] == 202
    user.wait(10)
    cb.wait_idle()

    assert cb.stop() == 0
    cb.start()
    status, body = cb.http("GET", "/v1/users")
    assert status == 200 and sorted(u["id"] for u in body["users"]) == sorted([a_id, b_id])
    me = cb.http("GET", "/v1/users/me", token=a_tok)
    assert me[0] == 200 and me[1]["mode"] == "on-demand" and me[1]["telecommuter_number"] == MOBILE


def test_transit_calls_obey_the_trunks_class_of_service(start_b2bua: Callable[..., B2bua]) -> None:
    from tests.support.procs import uac

    b = start_b2bua(extra_config=CALLBACK_CONFIG, trunk_cos="standard")
    far = uas(b, "uas_answer.xml")
    refused = uac(b, "uac_fail.xml", called="+499001234567", name="uac-premium").start().wait(20)
    assert refused.rc == 0 and refused.statuses()[-1] == 403, refused.out
    final = next(m for m in refused.messages if m.startswith("SIP/2.0 403"))
    assert "premium" in final  # the Reason header names the rule
    assert b.metric("b2bua_invites_rejected_total", code="403",
                    reason="dialling-rule:class-of-service:standard:premium") == 1
    ok = uac(b, "uac_call.xml", called="+493098765432", hold_ms=300, instance=1).start().wait(20)
    assert ok.rc == 0, ok.out
    assert far.wait(10).requests() == ["INVITE", "ACK", "BYE"]  # only the allowed call reached the far end
    b.wait_idle()


@pytest.mark.parametrize("scenario, result", [("uas_answer.xml", "success"), ("uas_noanswer.xml", "no-answer")])
def test_test_call_on_activation(cb: B2bua, watcher_factory: Any, scenario: str, result: str) -> None:
    uid, token = make_user(cb, mode_on=False)
    events = watcher_factory(cb, uid, token)
    user = uas(cb, scenario, ip="127.0.0.4", name="user-test")
    status, body = cb.http("PUT", "/v1/users/me/telecommuter", token=token,
                           body={"mode": "on-demand", "number": "0171 1234567", "test_call": True})
    assert status == 200 and body["test_call_id"], body
    done = events.wait_for("test-call", kind="test-call", pred=lambda e: e.get("status") == "done", timeout=15)
    assert done["result"] == result
    assert user.wait(15).rc == 0
    me = cb.http("GET", "/v1/users/me", token=token)[1]
    assert me["last_test"]["result"] == result
    cb.wait_idle()


def test_per_user_concurrent_call_limit(cb: B2bua) -> None:
    uid, token = make_user(cb)  # class "standard": at most 2 callback calls at once
    user = uas(cb, "uas_noanswer.xml", ip="127.0.0.4", name="user-rings", calls=2)
    first = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})
    second = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})
    third = cb.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": TARGET})
    assert first[0] == 201 and second[0] == 201, (first, second)
    assert third[0] == 429 and third[1]["rule"] == "concurrent-limit", third
    assert cb.metric("b2bua_dialling_refused_total", kind="concurrent-limit", rule="concurrent-limit") == 1
    assert user.wait(15).rc == 0  # both rang until the user-answer timeout CANCELled them
    cb.wait_idle()

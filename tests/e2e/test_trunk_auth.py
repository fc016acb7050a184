"""Trunks that authenticate with SIP digest, through the real process: SIPp answers the 401 from an injection
file of credentials and the call is bridged with media; a wrong password gets 403 and nothing is dialled; a
trunk without an ACL is reachable from any address, but only with its credentials."""

from __future__ import annotations

import hashlib
import time

import pytest

from tests.support import audio, rawsip
from tests.support.procs import B2bua, capture, uac, uas

pytestmark = pytest.mark.e2e

AUTH_TRUNKS = f"""
[[trunks]]
name = "pbx"
inbound_acl = ["127.0.0.6/32"]
auth_username = "pbx-1"
auth_password = "s3cret"

[[trunks]]
name = "roaming"
auth_username = "roamer"
auth_ha1 = "{hashlib.md5(b"roamer:b2bua:pw2").hexdigest()}"
"""


@pytest.fixture
def b(start_b2bua) -> B2bua:  # type: ignore[no-untyped-def]
    return start_b2bua(extra_config=AUTH_TRUNKS,  # type: ignore[no-any-return]
                       env={"B2BUA_SIP__AUTH_MAX_FAILURES": "2"})


def test_sipp_answers_the_challenge_from_a_credentials_file_and_media_flows(b: B2bua) -> None:
    creds = b.workdir / "creds.csv"
    creds.write_text("SEQUENTIAL\n" + "".join(
        f"49301234{i:02d};1555123{i:04d};[authentication username=pbx-1 password=s3cret]\n" for i in range(3)))
    with capture(b.workdir) as pcap:
        far = uas(b, "uas_answer.xml", calls=3)
        r = uac(b, "uac_call_auth.xml", calls=3, rate=3, hold_ms=2000, src_ip="127.0.0.6",
                extra=["-inf", str(creds)]).start().wait(40)
        f = far.wait(20)
    assert r.rc == 0, r.out
    assert f.rc == 0, f.out
    assert r.statuses().count(401) == 3 and r.statuses().count(200) == 6  # 3 INVITEs + 3 BYEs
    challenge = next(m for m in r.messages if m.startswith("SIP/2.0 401"))
    assert 'WWW-Authenticate: Digest realm="b2bua"' in challenge and 'qop="auth"' in challenge
    assert f.requests().count("INVITE") == 3  # only authenticated INVITEs were dialled onward
    to_far = audio.streams(pcap, "127.0.0.1", "127.0.0.3")
    to_caller = audio.streams(pcap, "127.0.0.1", "127.0.0.6")
    assert len(to_far) == 3 and len(to_caller) == 3, (to_far.keys(), to_caller.keys())
    for stream in to_far.values():
        ok, why = audio.tone_in(stream, 1000.0)
        assert ok, f"caller->far end: {why}"
    for stream in to_caller.values():
        ok, why = audio.tone_in(stream, 1700.0)
        assert ok, f"far end->caller: {why}"
    b.wait_idle()
    assert b.metric("b2bua_invites_rejected_total", code="401", reason="auth-challenge") == 3
    status, body = b.http("GET", "/v1/cdrs")
    assert status == 200
    assert sorted(c["trunk_in"] for c in body["cdrs"]) == ["pbx"] * 3


def test_wrong_password_gets_403_and_nothing_is_dialled(b: B2bua) -> None:
    far = uas(b, "uas_answer.xml", name="uas-never")
    challenge, statuses = rawsip.challenged_invite(b.sip_port, "127.0.0.6", "pbx-1", "guess")
    assert challenge.startswith("Digest ") and statuses[-1].startswith("SIP/2.0 403"), statuses
    # the right password from outside the pbx trunk's ACL does not pass either (only "roaming" is open)
    challenge, statuses = rawsip.challenged_invite(b.sip_port, "127.0.0.7", "pbx-1", "s3cret")
    assert challenge and statuses[-1].startswith("SIP/2.0 403"), statuses
    # a second guess from 127.0.0.6 reaches the limit (2 in this test): from then on it is not even challenged
    challenge, statuses = rawsip.challenged_invite(b.sip_port, "127.0.0.6", "pbx-1", "guess2")
    assert challenge and statuses[-1].startswith("SIP/2.0 403"), statuses
    challenge, statuses = rawsip.challenged_invite(b.sip_port, "127.0.0.6", "pbx-1", "s3cret")
    assert challenge == "" and statuses == ["SIP/2.0 403 Forbidden"], statuses
    time.sleep(0.5)
    assert far.stop().requests() == []
    assert b.metric("b2bua_invites_rejected_total", code="403", reason="auth-failed") == 3
    assert b.metric("b2bua_invites_rejected_total", code="403", reason="auth-blocked") == 1
    events = [e for e in b.log_events() if e.get("event") == "invite rejected" and e.get("reason") == "auth-failed"]
    assert [e["level"] for e in events] == ["warning"] * 3
    assert "wrong response" in events[0]["detail"] and "unknown username" in events[1]["detail"]
    assert "source blocked" in events[2]["detail"]
    log = b.log_path.read_text()
    assert "guess" not in log and "s3cret" not in log
    b.wait_idle()


def test_roaming_trunk_from_any_address_with_its_credentials(b: B2bua) -> None:
    far = uas(b, "uas_hangup.xml", hold_ms=500)
    challenge, statuses = rawsip.challenged_invite(b.sip_port, "127.0.0.9", "roamer", "pw2")
    assert challenge, statuses
    assert any(s.startswith("SIP/2.0 200") for s in statuses), statuses  # the far end answered, then BYE'd
    f = far.wait(20)
    assert f.rc == 0 and f.requests().count("INVITE") == 1, f.out
    b.wait_idle()
    status, body = b.http("GET", "/v1/cdrs")
    assert status == 200 and [c["trunk_in"] for c in body["cdrs"]] == ["roaming"]


OUTBOUND = """
[[trunks]]
name = "secure-carrier"
host = "127.0.0.3"
port = @FAR_PORT@
outbound_auth_username = "b2bua-out"
outbound_auth_password = "out-pw"
outbound_auth_realm = "carrier.example"
"""
OUTBOUND_ROUTE = """
[[routes]]
pattern = "4977.*"
trunk = "secure-carrier"
"""


@pytest.mark.parametrize("far_password, answered", [("out-pw", True), ("other-pw", False)])
def test_carrier_that_challenges_our_invites_gets_our_credentials(start_b2bua, far_password: str,  # type: ignore[no-untyped-def]
                                                                   answered: bool) -> None:
    b: B2bua = start_b2bua(extra_config=OUTBOUND, routes_before=OUTBOUND_ROUTE)
    with capture(b.workdir) as pcap:
        far = uas(b, "uas_auth_answer.xml", extra=["-key", "realm", "carrier.example", "-key", "auth_user",
                                                   "b2bua-out", "-key", "auth_password", far_password])
        r = uac(b, "uac_call.xml" if answered else "uac_fail.xml", called="4977123456", hold_ms=2000).start().wait(30)
        f = far.wait(20) if answered else far.stop()  # SIPp's stop_call does not count towards -m
    invites = [m for m in f.messages if m.startswith("INVITE")]
    assert len(invites) == 2, f.out  # the challenged one and the one with our credentials
    assert "\nAuthorization: Digest" in invites[1] and 'username="b2bua-out"' in invites[1]
    assert 'realm="carrier.example"' in invites[1] and "out-pw" not in invites[1]
    assert r.rc == 0, r.out
    if answered:
        assert f.rc == 0, f.out
        to_caller = audio.streams(pcap, "127.0.0.1", "127.0.0.2")
        assert len(to_caller) == 1
        ok, why = audio.tone_in(next(iter(to_caller.values())), 1700.0)
        assert ok, f"far end->caller: {why}"
    else:
        assert r.statuses()[-1] == 403  # the carrier's refusal reaches the caller as a refusal
    b.wait_idle()


def test_credentials_are_not_given_to_another_realm(start_b2bua) -> None:  # type: ignore[no-untyped-def]
    b: B2bua = start_b2bua(extra_config=OUTBOUND, routes_before=OUTBOUND_ROUTE)
    far = uas(b, "uas_auth_answer.xml", extra=["-key", "realm", "phisher.example", "-key", "auth_user",
                                               "b2bua-out", "-key", "auth_password", "out-pw"])
    r = uac(b, "uac_fail.xml", called="4977123456").start().wait(30)
    time.sleep(0.5)
    f = far.stop()
    assert r.rc == 0 and r.statuses()[-1] == 403, r.out
    assert [m for m in f.messages if m.startswith("INVITE")][1:] == []  # never answered the challenge
    b.wait_idle()

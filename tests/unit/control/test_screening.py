"""INVITE screening (the SIP thread's part): who sent it, whether the number is ours, where it goes, whether the
trunk's dialling rules allow it, and whether there is room. Every ``Admit`` holds exactly one admission; every
``Reject`` holds none."""

from __future__ import annotations

from pathlib import Path

from b2bua.sip.types import Admit, InboundInvite, Reject, ScreenResult
from tests.support.fake_engine import invite
from tests.support.inprocess import InProcess
from tests.unit.control.helpers import BUSINESS, CARRIER, PBX, make_user, node


def screen(t: InProcess, inv: InboundInvite) -> ScreenResult:
    result = t.node.screen.screen(inv)
    assert isinstance(result, Admit | Reject)
    return result


def rejected(t: InProcess, inv: InboundInvite) -> Reject:
    before = t.node.gate.admitted
    result = screen(t, inv)
    assert isinstance(result, Reject), result
    assert t.node.gate.admitted == before, "a refusal must not hold an admission"
    return result


def admitted(t: InProcess, inv: InboundInvite) -> Admit:
    before = t.node.gate.admitted
    result = screen(t, inv)
    assert isinstance(result, Admit), result
    assert t.node.gate.admitted == before + 1, "an Admit holds exactly one admission"
    return result


# ------------------------------------------------------------------------------------------ who sent it
async def test_source_outside_every_acl_is_refused_403(t: InProcess) -> None:
    r = rejected(t, invite("A1", src_ip="127.0.0.66"))
    assert (r.code, r.reason) == (403, "untrusted-source")


async def test_trunk_call_admitted_with_its_route(t: InProcess) -> None:
    a = admitted(t, invite("A1", called="4930123456", src_ip=CARRIER))
    assert (a.trunk, a.target_trunk, a.user_id) == ("carrier", "carrier", "")
    assert a.target_uri == "sip:4930123456@127.0.0.3:5060"


# ------------------------------------------------------------------------------------------ numbers of ours
async def test_business_number_of_a_user_is_admitted_for_that_user_in_every_reading(t: InProcess) -> None:
    u = make_user(t, business=BUSINESS)
    for i, called in enumerate(("+493012345678", "493012345678", "00493012345678", "03012345678")):
        a = admitted(t, invite(f"A{i}", called=called, src_ip=CARRIER))
        assert (a.user_id, a.trunk, a.target_uri, a.target_trunk) == (u.id, "carrier", "", ""), called


async def test_extension_reaches_a_user_only_from_an_extension_trunk(t: InProcess) -> None:
    u = make_user(t, extension="201")
    assert admitted(t, invite("A1", called="201", src_ip=PBX)).user_id == u.id
    # the carrier may not dial our extensions: "201" is just a number routed onwards
    a = admitted(t, invite("A2", called="201", src_ip=CARRIER))
    assert a.user_id == "" and a.target_trunk == "carrier"


async def test_unknown_extension_from_the_pbx_is_404(t: InProcess) -> None:
    r = rejected(t, invite("A1", called="299", src_ip=PBX))
    assert (r.code, r.reason) == (404, "unknown-extension")


async def test_free_desk_is_480_and_an_occupied_desk_reaches_its_occupant(t: InProcess) -> None:
    t.domain.desks.create("300", "sip:300@127.0.0.5")
    r = rejected(t, invite("A1", called="300", src_ip=PBX))
    assert (r.code, r.reason) == (480, "desk-free")
    u = make_user(t, extension="201")
    t.domain.desks.login(u, "300")
    assert admitted(t, invite("A2", called="300", src_ip=PBX)).user_id == u.id


async def test_emergency_number_is_never_taken_for_an_extension(t: InProcess) -> None:
    # "110" matches the extension pattern, but it is an emergency number: routed on, not a 404 of ours
    a = admitted(t, invite("A1", called="110", src_ip=PBX))
    assert a.user_id == "" and a.target_uri.startswith("sip:110@")


async def test_number_in_our_range_that_is_nobodys_is_404_not_routed(tmp_path: Path) -> None:
    async with node(tmp_path, telecommuter='owned_numbers = ["+4930555"]') as t:
        for i, called in enumerate(("+4930555123", "4930555123", "030555123")):
            r = rejected(t, invite(f"A{i}", called=called, src_ip=CARRIER))
            assert (r.code, r.reason) == (404, "unknown-number"), called
        # a user's business number inside the range still reaches the user
        u = make_user(t, business="+4930555100")
        assert admitted(t, invite("A9", called="4930555100", src_ip=CARRIER)).user_id == u.id
        # outside the range: routed onwards
        assert admitted(t, invite("A10", called="4930666123", src_ip=CARRIER)).target_trunk == "carrier"


# ------------------------------------------------------------------------------------------ routing
async def test_number_no_route_matches_is_404(t: InProcess) -> None:
    r = rejected(t, invite("A1", called="*21#", src_ip=CARRIER))
    assert (r.code, r.reason) == (404, "no-route")


async def test_transit_call_the_trunks_class_of_service_refuses_is_403_with_reason(t: InProcess) -> None:
    # the carrier's class of service ("standard") allows no international or premium numbers
    r = rejected(t, invite("A1", called="+33123456789", src_ip=CARRIER))
    assert (r.code, r.reason) == (403, "dialling-rule:class-of-service:standard:international")
    (name, value), = r.headers
    assert name == "Reason" and value.startswith("SIP;cause=403;text=") and "international" in value
    r = rejected(t, invite("A2", called="+499001234567", src_ip=CARRIER))
    assert r.reason == "dialling-rule:class-of-service:standard:premium"


async def test_trunk_without_class_of_service_is_not_checked(t: InProcess) -> None:
    # the PBX is a trusted peer: its international call is routed out
    a = admitted(t, invite("A1", called="+33123456789", src_ip=PBX))
    assert a.target_trunk == "carrier"


async def test_blocked_prefix_of_the_trunks_class_is_403(tmp_path: Path) -> None:
    extra = """
[classes_of_service.standard]
blocked_prefixes = ["+4930999"]
[classes_of_service.international]
allow = ["internal", "national", "mobile", "international"]
"""
    async with node(tmp_path, extra=extra) as t:
        r = rejected(t, invite("A1", called="4930999123", src_ip=CARRIER))
        assert (r.code, r.reason) == (403, "dialling-rule:blocked-prefix:+4930999")
        assert admitted(t, invite("A2", called="4930998123", src_ip=CARRIER)).target_trunk == "carrier"


# ------------------------------------------------------------------------------------------ admission
async def test_full_house_is_503_with_the_configured_retry_after(t: InProcess) -> None:
    t.node.gate.ceiling = 2
    admitted(t, invite("A1", called="4930123456"))
    u = make_user(t)
    admitted(t, invite("A2", called=BUSINESS))  # a call for a user takes one admission as well
    for inv in (invite("A3", called="4930123456"), invite("A4", called=BUSINESS)):
        r = rejected(t, inv)
        assert (r.code, r.reason, r.headers) == (503, "over-capacity", (("Retry-After", "5"),))
    t.node.gate.release()
    assert admitted(t, invite("A5", called=BUSINESS)).user_id == u.id


async def test_over_rate_is_503_retry_after_one_second(t: InProcess) -> None:
    t.node.gate.set_rate(1.0, 1)
    admitted(t, invite("A1", called="4930123456"))
    r = rejected(t, invite("A2", called="4930123456"))
    assert (r.code, r.reason, r.headers) == (503, "over-rate", (("Retry-After", "1"),))


async def test_closed_gate_refuses_503(t: InProcess) -> None:
    t.node.gate.close()
    r = rejected(t, invite("A1", called="4930123456"))
    assert (r.code, r.reason) == (503, "closed")


async def test_refusals_are_decided_before_admission(t: InProcess) -> None:
    """A refused number never reaches the gate: a full house does not turn a 403/404 into a 503."""
    t.node.gate.ceiling = 0
    assert rejected(t, invite("A1", called="+33123456789")).code == 403
    assert rejected(t, invite("A2", called="*21#")).code == 404
    assert rejected(t, invite("A3", called="299", src_ip=PBX)).code == 404


# ------------------------------------------------------------------------------------------ media security
SECURE_TRUNK = """
[[trunks]]
name = "secure"
inbound_acl = ["127.0.0.9/32"]
host = "127.0.0.9"
srtp = "mandatory"
srtp_secure_signaling = false
"""
PLAIN_OFFER = "v=0\r\nc=IN IP4 127.0.0.9\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
SRTP_OFFER = ("v=0\r\nc=IN IP4 127.0.0.9\r\nm=audio 4000 RTP/SAVP 0\r\n"
              "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n")


async def test_a_plain_offer_from_a_trunk_that_requires_srtp_is_488_and_an_srtp_one_passes(tmp_path: Path) -> None:
    async with node(tmp_path, extra=SECURE_TRUNK) as t:
        r = rejected(t, invite("A1", called="4930123456", src_ip="127.0.0.9", sdp=PLAIN_OFFER))
        assert (r.code, r.reason) == (488, "srtp-required") and r.headers[0][0] == "Warning"
        assert admitted(t, invite("A2", called="4930123456", src_ip="127.0.0.9", sdp=SRTP_OFFER)).trunk == "secure"
        assert admitted(t, invite("A3", called="4930123456", src_ip="127.0.0.9")).trunk == "secure", "late offer"
        assert admitted(t, invite("A4", called="4930123456", src_ip=CARRIER, sdp=PLAIN_OFFER)).trunk == "carrier"

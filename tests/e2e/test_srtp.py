"""SDES-SRTP (RFC 4568) on trunks that ask for it, through the real B2BUA process.

The SRTP trunk is a pjsua2 test phone over TLS (Debian's SIPp has neither TLS nor SRTP). Every TLS trunk in
these configs is ``srtp = "mandatory"``, so the B2BUA's inbound TLS account insists on SRTP too; the carrier
trunk stays plain UDP. Proofs: the SDP (RTP/SAVP, a=crypto), the negotiated profile at both phones, tones in
both phones' recordings, RTP on the wire that does not decode to the tone, and pjsip's SRTP pools: one per leg
of an SRTP call and none on a plain call (patch 0008)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from perf.pool_census import Kind, census
from tests.support import audio, wav
from tests.support.pki import self_signed
from tests.support.procs import B2bua, PhoneProc, capture, uac, uas

pytestmark = pytest.mark.e2e

Start = Callable[[Path], B2bua]
SUITE = "AES_CM_128_HMAC_SHA1_80"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Start]:
    """A B2BUA with a TLS listener and a mandatory-SRTP TLS trunk (the far phone's TLS port, numbers 4940...)."""
    made: list[B2bua] = []

    def start(cert: Path) -> B2bua:
        b = B2bua(tmp_path / f"b2bua{len(made)}")
        made.append(b)
        key = cert.with_name("key.pem")
        b.env = {"B2BUA_SIP__TRANSPORTS": '["udp", "tls"]', "B2BUA_SIP__TLS_PORT": str(b.sip_port + 5),
                 "B2BUA_SIP__TLS_CERT_FILE": str(cert), "B2BUA_SIP__TLS_KEY_FILE": str(key),
                 "B2BUA_SIP__TLS_CA_FILE": str(cert)}
        b.routes_before = f"""
[[trunks]]
name = "carrier-srtp"
host = "127.0.0.3"
port = {b.far_port + 1}
transport = "tls"
srtp = "mandatory"

[[routes]]
pattern = "4940.*"
trunk = "carrier-srtp"
"""
        return b.start()

    yield start
    for b in made:
        rc = b.stop()
        assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"


def _far(b: B2bua, cert: Path, srtp: str, *extra: str) -> PhoneProc:
    """The SRTP trunk's far end: answers over TLS on 127.0.0.3, plays 1700 Hz, records what it hears."""
    return PhoneProc(b.workdir, "far", [
        "--ip", "127.0.0.3", "--port", str(b.far_port), "--rtp-port", str(b.far_port + 3000),
        "--tls-port", str(b.far_port + 1), "--tls-cert", str(cert), "--tls-key", str(cert.with_name("key.pem")),
        "--srtp", srtp, "--tone-hz", "1700", "--record", str(b.workdir / "far.wav"), *extra]).wait_ready()


def _caller(b: B2bua, cert: Path, srtp: str, *extra: str) -> PhoneProc:
    """A carrier calling sips: over TLS from 127.0.0.2 (the carrier trunk's ACL), playing 1000 Hz."""
    return PhoneProc(b.workdir, "caller", [
        "--ip", "127.0.0.2", "--port", str(b.sip_port + 1000), "--rtp-port", str(b.sip_port + 4000),
        "--tls-port", str(b.sip_port + 1001), "--tls-cert", str(cert), "--tls-key", str(cert.with_name("key.pem")),
        "--call", f"sips:4940123456@127.0.0.1:{b.sip_port + 5}", "--srtp", srtp, "--tone-hz", "1000",
        "--record", str(b.workdir / "caller.wav"), *extra]).wait_ready()


def _event(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(e for e in events if e["event"] == name)


def _profiles(events: list[dict[str, Any]]) -> set[str]:
    return {e["proto"] for e in events if e["event"] == "media" and e.get("proto")}


def _audio_m_line(sdp: str) -> str:
    m = re.search(r"^m=audio \d+ (\S+) ", sdp, flags=re.M)
    assert m, sdp
    return m.group(1)


def _srtp_pools(pid: int) -> int:
    """pjmedia's SRTP adapter takes a pool per leg named "srtp<address>"."""
    kinds: list[Kind] = census(pid)
    return sum(k.pools for k in kinds if k.name.startswith("srtp"))


def _census_while_up(b: B2bua, calls: int = 1) -> int:
    assert b.proc is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and b.metric("b2bua_active_calls") < calls:
        time.sleep(0.1)
    time.sleep(0.5)  # both legs' media up
    return _srtp_pools(b.proc.pid)


def test_srtp_call_from_tls_trunk_to_srtp_trunk(node: Start, tmp_path: Path) -> None:
    """SRTP on both legs: our offer to the trunk is RTP/SAVP with keys, both phones negotiate RTP/SAVP, each
    hears the other's tone, and the RTP between B2BUA and trunk does not decode to that tone."""
    cert, _ = self_signed(tmp_path / "pki")
    b = node(cert)
    with capture(b.workdir) as pcap:
        far = _far(b, cert, "mandatory")
        caller = _caller(b, cert, "mandatory", "--hangup-after-s", "4")
        pools = _census_while_up(b)
        ce, fe = caller.wait(30), far.wait(15)
    assert any(e["event"] == "confirmed" for e in ce), ce
    assert _event(ce, "disconnected")["code"] == 200
    offer = _event(fe, "incoming")["invite"]
    assert offer.startswith(f"INVITE sips:4940123456@127.0.0.3:{b.far_port + 1} SIP/2.0"), offer[:200]
    assert _audio_m_line(offer) == "RTP/SAVP"
    assert re.search(rf"^a=crypto:\d+ {SUITE} inline:\S+", offer, flags=re.M), offer
    assert _audio_m_line(_event(fe, "sdp")["local"]) == "RTP/SAVP"  # the trunk's answer
    assert _profiles(ce) == {"RTP/SAVP"} and _profiles(fe) == {"RTP/SAVP"}
    assert pools == 2, "one SRTP adapter per leg"
    share, n = wav.tone_share(b.workdir / "far.wav", 1000.0, start_s=0.5)
    assert n >= 20 and share > 0.8, f"caller's 1000 Hz at far end: {share:.2f} of {n} blocks"
    share, n = wav.tone_share(b.workdir / "caller.wav", 1700.0, start_s=0.5)
    assert n >= 20 and share > 0.8, f"far end's 1700 Hz at caller: {share:.2f} of {n} blocks"
    to_trunk = audio.streams(pcap, "127.0.0.1", "127.0.0.3")
    assert to_trunk and max(len(p) for p in to_trunk.values()) >= 100, "RTP to the trunk"
    for payloads in to_trunk.values():
        heard, why = audio.tone_in(payloads, 1000.0, min_share=0.2)
        assert not heard, f"RTP to the SRTP trunk carries the tone in clear: {why}"
    b.wait_idle()
    assert b.metric("b2bua_calls_total", outcome="completed-a-hangup") == 1


def test_plain_udp_carrier_bridged_to_srtp_trunk(node: Start, tmp_path: Path) -> None:
    """The bridge decrypts and encrypts: a plain RTP caller (SIPp over UDP, 1000 Hz) reaches the SRTP trunk, whose
    phone hears the tone; the caller's leg stays plain RTP/AVP and gets the far end's 1700 Hz in clear."""
    cert, _ = self_signed(tmp_path / "pki")
    b = node(cert)
    far = _far(b, cert, "mandatory", "--max-s", "15")
    with capture(b.workdir) as pcap:
        r = uac(b, "uac_call.xml", called="4940123456", hold_ms=4000).start()
        pools = _census_while_up(b)
        res = r.wait(30)
    fe = far.wait(15)
    assert res.rc == 0, res.out
    answer = next(m for m in res.messages if m.startswith("SIP/2.0 200") and "m=audio" in m)
    assert _audio_m_line(answer) == "RTP/AVP" and "a=crypto" not in answer, answer
    assert _audio_m_line(_event(fe, "incoming")["invite"]) == "RTP/SAVP" and _profiles(fe) == {"RTP/SAVP"}
    assert pools == 1, "an SRTP adapter on the trunk's leg only"
    share, n = wav.tone_share(b.workdir / "far.wav", 1000.0, start_s=0.5)
    assert n >= 20 and share > 0.8, f"caller's 1000 Hz at the SRTP trunk: {share:.2f} of {n} blocks"
    got = audio.streams(pcap, "127.0.0.1", "127.0.0.2")
    assert len(got) == 1, got.keys()
    ok, why = audio.tone_in(next(iter(got.values())), 1700.0)
    assert ok, f"SRTP trunk's 1700 Hz to the plain caller: {why}"
    b.wait_idle()


def test_plain_offer_over_tls_is_refused_where_every_tls_trunk_requires_srtp(node: Start, tmp_path: Path) -> None:
    """The inbound TLS account is mandatory: pjsua answers an offer without crypto 488 before any call exists."""
    cert, _ = self_signed(tmp_path / "pki")
    b = node(cert)
    ce = _caller(b, cert, "off", "--max-s", "10").wait(30)
    assert not any(e["event"] == "confirmed" for e in ce), ce
    assert _event(ce, "disconnected")["code"] == 488
    assert not [e for e in b.log_events() if e.get("event") == "call in"]


def test_srtp_trunk_answering_without_srtp_fails_the_call(node: Start, tmp_path: Path) -> None:
    """A mandatory trunk gets only an RTP/SAVP offer: a far end without SRTP refuses it (its pjsua answers 488
    before its application hears of the call), the caller hears that 488 and is never connected to plain media."""
    cert, _ = self_signed(tmp_path / "pki")
    b = node(cert)
    far = _far(b, cert, "off", "--max-s", "6")
    ce, fe = _caller(b, cert, "mandatory", "--max-s", "10").wait(30), far.wait(15)
    assert not any(e["event"] in ("incoming", "confirmed") for e in fe), fe
    assert not any(e["event"] == "confirmed" for e in ce), ce
    assert _event(ce, "disconnected")["code"] == 488
    ends = [e for e in b.log_events() if e.get("event") == "call end"]
    assert [(e["outcome"], e["code"]) for e in ends] == [("failed", 488)], ends
    b.wait_idle()


def test_plain_trunks_are_unaffected(node: Start, tmp_path: Path) -> None:
    """With an SRTP trunk configured, a call between the plain UDP trunks offers no keys, answers RTP/AVP, carries
    both tones in clear and holds no SRTP adapter."""
    cert, _ = self_signed(tmp_path / "pki")
    b = node(cert)
    with capture(b.workdir) as pcap:
        far = uas(b, "uas_answer.xml")
        r = uac(b, "uac_call.xml", hold_ms=3000).start()
        pools = _census_while_up(b)
        res, f = r.wait(30), far.wait(10)
    assert res.rc == 0 and f.rc == 0, res.out + f.out
    offer = next(m for m in f.messages if m.startswith("INVITE"))
    answer = next(m for m in res.messages if m.startswith("SIP/2.0 200") and "m=audio" in m)
    for sdp in (offer, answer):
        assert _audio_m_line(sdp) == "RTP/AVP" and "a=crypto" not in sdp, sdp
    assert pools == 0, "a plain call holds no SRTP adapter"
    for src, dst, tone in (("127.0.0.1", "127.0.0.3", 1000.0), ("127.0.0.1", "127.0.0.2", 1700.0)):
        got = audio.streams(pcap, src, dst)
        assert len(got) == 1, (dst, got.keys())
        ok, why = audio.tone_in(next(iter(got.values())), tone)
        assert ok, f"to {dst}: {why}"
    b.wait_idle()

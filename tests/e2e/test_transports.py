"""SIP over TCP and TLS, large requests, and the media address in SDP, through the real B2BUA process.

SIPp plays the trunks over TCP (``-t t1``); Debian's SIPp has no TLS, so the TLS calls use pjsua2 test phones
with a throwaway self-signed certificate made here. Media is proven both ways: tones in a loopback capture
(SIPp) or in the phones' recordings."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import audio, wav
from tests.support.pki import self_signed
from tests.support.procs import B2bua, PhoneProc, SippResult, capture, uac, uas

pytestmark = pytest.mark.e2e

TCP = {"B2BUA_SIP__TRANSPORTS": '["udp", "tcp"]'}
Start = Callable[..., B2bua]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Start]:
    """Start B2BUAs whose environment and extra routes depend on their own ports; each must exit with rc 0."""
    made: list[B2bua] = []

    def start(env: Callable[[B2bua], dict[str, str]] | None = None,
              routes: Callable[[B2bua], str] | None = None) -> B2bua:
        b = B2bua(tmp_path / f"b2bua{len(made)}")
        made.append(b)
        b.env = env(b) if env else {}
        b.routes_before = routes(b) if routes else ""
        return b.start()

    yield start
    for b in made:
        rc = b.stop()
        assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"


def _trunk(name: str, transport: str, port: int, pattern: str = "4930.*") -> str:
    """A trunk on 127.0.0.3 with ``transport`` and a route to it, tried before the test config's catch-all."""
    return f"""
[[trunks]]
name = "{name}"
host = "127.0.0.3"
port = {port}
transport = "{transport}"

[[routes]]
pattern = "{pattern}"
trunk = "{name}"
"""


def _raw_transports(workdir: Path, name: str) -> set[str]:
    """The transports SIPp logged its messages on (its message log names each: "TCP message received")."""
    text = (workdir / f"{name}.msg").read_text(errors="replace")
    return set(re.findall(r"^(UDP|TCP) message (?:sent|received)", text, flags=re.M))


def _message(r: SippResult, first_line_prefix: str) -> str:
    return next(m for m in r.messages if m.startswith(first_line_prefix))


def _sdp_addresses(msg: str) -> tuple[str, str]:
    """The SDP's c= and o= addresses."""
    c = re.search(r"^c=IN IP4 (\S+)", msg, flags=re.M)
    o = re.search(r"^o=\S+ \S+ \S+ IN IP4 (\S+)", msg, flags=re.M)
    assert c and o, msg
    return c.group(1), o.group(1)


def _tones_both_ways(pcap: Path) -> None:
    for src, dst, tone in (("127.0.0.1", "127.0.0.3", 1000.0), ("127.0.0.1", "127.0.0.2", 1700.0)):
        got = audio.streams(pcap, src, dst)
        assert len(got) == 1, (dst, got.keys())
        ok, why = audio.tone_in(next(iter(got.values())), tone)
        assert ok, f"to {dst}: {why}"


def test_tcp_trunk_call_both_ways_with_media(node: Start) -> None:
    """The carrier calls us over TCP (admitted by its ACL: the source address is read for TCP too) and the call
    goes out to a TCP trunk; every SIP message of both legs is on TCP, RTP flows both ways."""
    b = node(lambda b: TCP, lambda b: _trunk("carrier-tcp", "tcp", b.far_port))
    with capture(b.workdir) as pcap:
        far = uas(b, "uas_answer.xml", transport="t1")
        r = uac(b, "uac_call.xml", hold_ms=3000, transport="t1").start().wait(30)
        f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    assert r.requests() == ["INVITE", "ACK", "BYE"] and f.requests() == ["INVITE", "ACK", "BYE"]
    assert _raw_transports(b.workdir, "uac") == {"TCP"} and _raw_transports(b.workdir, "uas") == {"TCP"}
    invite_b = _message(f, "INVITE")
    assert invite_b.splitlines()[0].startswith(f"INVITE sip:4930123456@127.0.0.3:{b.far_port};transport=tcp ")
    assert "Via: SIP/2.0/TCP 127.0.0.1:" in invite_b
    ok = next(m for m in r.messages if m.startswith("SIP/2.0 200") and "m=audio" in m)
    # our Contacts name TCP, so the carriers' in-dialog requests come back over TCP to our listener
    assert f"Contact: <sip:b2bua@127.0.0.1:{b.sip_port};transport=tcp>" in ok, ok
    assert f"Contact: <sip:b2bua@127.0.0.1:{b.sip_port};transport=tcp>" in invite_b, invite_b
    assert _sdp_addresses(ok) == ("127.0.0.1", "127.0.0.1")  # no media_public_address: the bound address
    _tones_both_ways(pcap)
    b.wait_idle()
    assert b.metric("b2bua_calls_total", outcome="completed-a-hangup") == 1


def test_tcp_invite_from_outside_the_acl_is_refused(node: Start) -> None:
    b = node(lambda b: TCP)
    r = uac(b, "uac_fail.xml", src_ip="127.0.0.66", transport="t1").start().wait(20)
    assert r.rc == 0, r.out
    assert r.statuses()[-1] == 403
    assert _raw_transports(b.workdir, "uac") == {"TCP"}


def test_large_invite_over_tcp_is_bridged_and_our_large_invite_goes_by_tcp(node: Start) -> None:
    """A 2 kB INVITE arrives over TCP and is bridged. The caller's long display name makes our own INVITE to the
    (UDP) carrier trunk exceed 1300 bytes, so pjsip sends it over TCP (RFC 3261 §18.1.1): the far end listens
    on TCP only, so the call proves the switch."""
    b = node(lambda b: TCP)
    display, padding = "Caller " + "x" * 900, "p" * 700
    with capture(b.workdir) as pcap:
        far = uas(b, "uas_answer.xml", transport="t1")
        r = uac(b, "uac_call_large.xml", hold_ms=3000, transport="t1",
                extra=["-key", "display", display, "-key", "padding", padding]).start().wait(30)
        f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    sent = _message(r, "INVITE")
    assert len(sent.encode()) > 1300 and "X-Padding: " + padding in sent
    # the caller's Contact names TCP, so ours does: its in-dialog requests come back over TCP
    ok = next(m for m in r.messages if m.startswith("SIP/2.0 200") and "m=audio" in m)
    assert f"contact: <sip:b2bua@127.0.0.1:{b.sip_port};transport=tcp>" in ok.lower(), ok
    invite_b = _message(f, "INVITE")
    assert len(invite_b.encode()) > 1300 and display in invite_b
    assert invite_b.splitlines()[0] == f"INVITE sip:4930123456@127.0.0.3:{b.far_port} SIP/2.0"  # a UDP trunk
    assert _raw_transports(b.workdir, "uas") == {"TCP"}
    _tones_both_ways(pcap)
    b.wait_idle()


def test_sdp_names_the_media_public_address(node: Start) -> None:
    """media_public_address goes into SDP c=/o= on both legs (RTP stays bound to listen_ip: 127.0.0.9 stands for
    a NAT's public address); SIP headers keep listen_ip."""
    b = node(lambda b: {"B2BUA_SIP__MEDIA_PUBLIC_ADDRESS": "127.0.0.9"})
    with capture(b.workdir) as pcap:
        far = uas(b, "uas_answer.xml")
        r = uac(b, "uac_call.xml", hold_ms=1500).start().wait(30)
        f = far.wait(10)
    assert r.rc == 0 and f.rc == 0, r.out + f.out
    answer = next(m for m in r.messages if m.startswith("SIP/2.0 200") and "m=audio" in m)
    offer = _message(f, "INVITE")
    assert _sdp_addresses(answer) == ("127.0.0.9", "127.0.0.9")
    assert _sdp_addresses(offer) == ("127.0.0.9", "127.0.0.9")
    assert f"Via: SIP/2.0/UDP 127.0.0.1:{b.sip_port}" in offer
    assert audio.streams(pcap, "127.0.0.1", "127.0.0.3"), "our RTP is sent from the bound address"
    b.wait_idle()


# ---------------------------------------------------------------------------------------------------- TLS
def _tls_env(b: B2bua, cert: Path, key: Path) -> dict[str, str]:
    return {"B2BUA_SIP__TRANSPORTS": '["udp", "tls"]', "B2BUA_SIP__TLS_PORT": str(b.sip_port + 5),
            "B2BUA_SIP__TLS_CERT_FILE": str(cert), "B2BUA_SIP__TLS_KEY_FILE": str(key),
            "B2BUA_SIP__TLS_CA_FILE": str(cert), "B2BUA_SIP__TLS_VERIFY_CLIENT": "true"}


def test_tls_trunk_call_both_ways_with_mutual_tls(node: Start, tmp_path: Path) -> None:
    """A carrier calls sips: over TLS presenting its certificate (mutual TLS), the call goes out to a TLS trunk
    whose certificate we verify; tones reach both phones."""
    cert, key = self_signed(tmp_path / "pki")
    b = node(lambda b: _tls_env(b, cert, key), lambda b: _trunk("carrier-tls", "tls", b.far_port + 1))
    tls_port, far_tls_port = b.sip_port + 5, b.far_port + 1
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    far_wav, caller_wav = b.workdir / "far.wav", b.workdir / "caller.wav"
    far = PhoneProc(b.workdir, "far", ["--ip", "127.0.0.3", "--port", str(b.far_port), "--rtp-port",
                                       str(b.far_port + 3000), "--tls-port", str(far_tls_port), *tls,
                                       "--tone-hz", "1700", "--record", str(far_wav)]).wait_ready()
    caller = PhoneProc(b.workdir, "caller", [
        "--ip", "127.0.0.2", "--port", str(b.sip_port + 1000), "--rtp-port", str(b.sip_port + 4000),
        "--tls-port", str(b.sip_port + 1001), *tls, "--call", f"sips:4930123456@127.0.0.1:{tls_port}",
        "--tone-hz", "1000", "--record", str(caller_wav), "--hangup-after-s", "3"]).wait_ready()
    ce, fe = caller.wait(30), far.wait(15)
    assert any(e["event"] == "confirmed" for e in ce), ce
    assert next(e for e in ce if e["event"] == "disconnected")["code"] == 200
    invite_b = next(e for e in fe if e["event"] == "incoming")["invite"]
    assert invite_b.startswith(f"INVITE sips:4930123456@127.0.0.3:{far_tls_port} SIP/2.0"), invite_b[:200]
    assert "Via: SIP/2.0/TLS 127.0.0.1:" in invite_b
    assert f"Contact: <sips:b2bua@127.0.0.1:{tls_port}>" in invite_b  # a sips: request needs a sips: Contact
    share, n = wav.tone_share(far_wav, 1000.0, start_s=0.5)
    assert n >= 20 and share > 0.8, f"caller's 1000 Hz at far end: {share:.2f} of {n} blocks"
    share, n = wav.tone_share(caller_wav, 1700.0, start_s=0.5)
    assert n >= 20 and share > 0.8, f"far end's 1700 Hz at caller: {share:.2f} of {n} blocks"
    b.wait_idle()
    assert b.metric("b2bua_calls_total", outcome="completed-a-hangup") == 1


def test_mutual_tls_refuses_a_client_certificate_from_another_ca(node: Start, tmp_path: Path) -> None:
    """tls_verify_client: a carrier whose certificate does not verify against tls_ca_file never gets a call in
    (the handshake fails before any SIP is read), even from inside the trunk's ACL."""
    cert, key = self_signed(tmp_path / "pki")
    rogue_cert, rogue_key = self_signed(tmp_path / "rogue", cn="rogue")
    b = node(lambda b: _tls_env(b, cert, key))
    caller = PhoneProc(b.workdir, "caller", [
        "--ip", "127.0.0.2", "--port", str(b.sip_port + 1000), "--rtp-port", str(b.sip_port + 4000),
        "--tls-port", str(b.sip_port + 1001), "--tls-cert", str(rogue_cert), "--tls-key", str(rogue_key),
        "--call", f"sips:4930123456@127.0.0.1:{b.sip_port + 5}", "--max-s", "10"]).wait_ready()
    ce = caller.wait(30)
    assert not any(e["event"] == "confirmed" for e in ce), ce
    assert next(e for e in ce if e["event"] == "disconnected")["code"] >= 400
    assert not [e for e in b.log_events() if e.get("event") == "call in"]
    assert b.metric("b2bua_calls_total", outcome="completed-a-hangup") == 0

"""Symmetric RTP for a carrier behind NAT, through the real B2BUA process. The caller here is a socket pair in
the test: its SDP names an address and port its RTP does not come from (127.0.0.77:40000, where nothing listens:
a NATed SDP), and it sends a 1000 Hz tone from 127.0.0.2. Once its packets arrive, our RTP must latch onto their
real source: the far end's 1700 Hz tone then reaches the caller's socket. (SIPp's pcap play sends from port 0,
so it cannot stand in for the NATed caller.)"""

from __future__ import annotations

import re
import socket
import struct
import time
import uuid

import pytest

from b2bua.media import g711, pcap
from tests.support import audio
from tests.support.procs import B2bua, capture, uas

pytestmark = pytest.mark.e2e

NAT_SDP = ("v=0\r\no=nat 1 1 IN IP4 127.0.0.77\r\ns=-\r\nc=IN IP4 127.0.0.77\r\nt=0 0\r\n"
           "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def _request(method: str, ruri: str, sip: socket.socket, call_id: str, tag: str, cseq: int,
             to: str = "<sip:4930123456@127.0.0.1>", body: str = "") -> bytes:
    host, port = sip.getsockname()
    lines = [f"{method} {ruri} SIP/2.0", f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bK-{uuid.uuid4().hex}",
             "Max-Forwards: 70", f"From: <sip:15551230001@{host}>;tag={tag}", f"To: {to}", f"Call-ID: {call_id}",
             f"CSeq: {cseq} {method}", f"Contact: <sip:15551230001@{host}:{port}>"]
    if body:
        lines += ["Content-Type: application/sdp"]
    return ("\r\n".join([*lines, f"Content-Length: {len(body)}", "", body])).encode()


def _final(sip: socket.socket, method: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = sip.recv(65535).decode()
        if re.match(r"SIP/2\.0 [2-6]\d\d ", text) and f" {method}\r\n" in text:
            return text
    raise AssertionError(f"no final response to {method}")


def _rtp_call(b: B2bua, seconds: float) -> tuple[list[bytes], str]:
    """The NATed caller's call: RTP out from 127.0.0.2, what comes back to that socket, and the 200's To."""
    sip, rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.2", 0))
    rtp.bind(("127.0.0.2", 0))
    sip.settimeout(5)
    rtp.setblocking(False)
    call_id, tag, target = uuid.uuid4().hex, uuid.uuid4().hex[:8], ("127.0.0.1", b.sip_port)
    sip.sendto(_request("INVITE", f"sip:4930123456@127.0.0.1:{b.sip_port}", sip, call_id, tag, 1, body=NAT_SDP),
               target)
    ok = _final(sip, "INVITE")
    assert ok.startswith("SIP/2.0 200"), ok
    to = re.search(r"^To: ([^\r\n]*)", ok, re.MULTILINE)
    addr, port = re.search(r"c=IN IP4 (\S+)", ok), re.search(r"m=audio (\d+)", ok)
    assert to and addr and port, ok
    ruri = f"sip:4930123456@127.0.0.1:{b.sip_port}"
    sip.sendto(_request("ACK", ruri, sip, call_id, tag, 1, to.group(1)), target)
    tone = g711.ulaw_encode(g711.tone(1000.0, seconds))
    got: list[bytes] = []
    start = time.monotonic()
    for n in range(len(tone) // 160):
        header = struct.pack("!BBHII", 0x80, 0, n, n * 160, 0x4E415421)
        rtp.sendto(header + tone[n * 160:(n + 1) * 160], (addr.group(1), int(port.group(1))))
        while True:
            try:
                packet = rtp.recv(2048)
            except BlockingIOError:
                break
            parsed = pcap.parse_rtp(packet)
            if parsed is not None:
                got.append(bytes([parsed.pt]) + parsed.payload)
        time.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
    sip.sendto(_request("BYE", ruri, sip, call_id, tag, 2, to.group(1)), target)
    assert _final(sip, "BYE").startswith("SIP/2.0 200")
    sip.close()
    rtp.close()
    return got, to.group(1)


def test_rtp_latches_onto_the_address_a_natted_caller_sends_from(b2bua: B2bua) -> None:
    with capture(b2bua.workdir) as path:
        far = uas(b2bua, "uas_answer.xml")
        got, _ = _rtp_call(b2bua, 4.0)
        f = far.wait(10)
    assert f.rc == 0, f.out
    assert len(got) > 100, f"only {len(got)} RTP packets came back to the caller's real address"
    ok, why = audio.tone_in(got, 1700.0)
    assert ok, f"far end->NATed caller: {why}"
    to_sdp_address = sum(len(v) for v in audio.streams(path, "127.0.0.1", "127.0.0.77").values())
    assert to_sdp_address <= 25, f"{to_sdp_address} packets kept going to the SDP's address"  # until the latch
    ok, why = audio.tone_in(next(iter(audio.streams(path, "127.0.0.1", "127.0.0.3").values())), 1000.0)
    assert ok, f"NATed caller->far end: {why}"
    b2bua.wait_idle()

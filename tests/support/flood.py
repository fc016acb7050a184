"""A flood of INVITEs from one source over plain UDP, as a hostile scanner sends them: paced, each with its own
Call-ID and an SDP offer; a final response is ACKed (as SIPp would) so that no retransmission skews what is
measured. Shared by ``tests/e2e/test_untrusted_flood.py`` and ``perf/flood.py``."""

from __future__ import annotations

import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SDP = ("v=0\r\no=scan 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\n"
       "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


@dataclass
class FloodResult:
    sent: int
    seconds: float
    finals: Counter[int] = field(default_factory=Counter)  # final status -> INVITEs that got it (first final only)
    datagrams: int = 0  # everything that came back, retransmissions and 100 Trying included


def _invite(src: str, ip: str, port: int, call_id: str, branch: str, called: str) -> bytes:
    body = SDP.format(ip=ip)
    lines = [f"INVITE sip:{called}@127.0.0.1:{port} SIP/2.0", f"Via: SIP/2.0/UDP {src};branch={branch};rport",
             f"From: <sip:scanner@{ip}>;tag={branch[-8:]}", f"To: <sip:{called}@127.0.0.1:{port}>",
             f"Call-ID: {call_id}", "CSeq: 1 INVITE", f"Contact: <sip:scanner@{src}>", "Max-Forwards: 70",
             "Content-Type: application/sdp", f"Content-Length: {len(body)}", "", body]
    return "\r\n".join(lines).encode()


def _ack(src: str, port: int, response: str, called: str) -> bytes | None:
    """The ACK for a non-2xx final response: same branch, the response's To (with its tag)."""
    head = response.split("\r\n\r\n", 1)[0].split("\r\n")
    hdrs: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        hdrs.setdefault(name.strip().lower(), value.strip())
    via, call_id, to, frm = hdrs.get("via", ""), hdrs.get("call-id"), hdrs.get("to"), hdrs.get("from")
    if not (via and call_id and to and frm):
        return None
    lines = [f"ACK sip:{called}@127.0.0.1:{port} SIP/2.0", f"Via: {via}", f"From: {frm}", f"To: {to}",
             f"Call-ID: {call_id}", "CSeq: 1 ACK", "Max-Forwards: 70", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def flood(port: int, src_ip: str, count: int, seconds: float, called: str = "4930123456",
          linger: float = 2.0) -> FloodResult:
    """Send ``count`` INVITEs to 127.0.0.1:``port`` from ``src_ip`` evenly over ``seconds``; then listen for
    ``linger`` seconds more for late answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((src_ip, 0))
    s.setblocking(False)
    src = f"{src_ip}:{s.getsockname()[1]}"
    out = FloodResult(sent=0, seconds=0.0)
    answered: set[str] = set()
    t0 = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            due = min(count, int((now - t0) * count / seconds) + 1)
            while out.sent < due:
                call_id = f"{uuid.uuid4().hex}@{src_ip}"
                s.sendto(_invite(src, src_ip, port, call_id, "z9hG4bK-f" + uuid.uuid4().hex[:12], called),
                         ("127.0.0.1", port))
                out.sent += 1
            _collect(s, port, called, src, out, answered)
            if out.sent >= count and now - t0 >= seconds + linger:
                break
            time.sleep(0.002)
    finally:
        s.close()
    out.seconds = time.monotonic() - t0
    return out


def _collect(s: socket.socket, port: int, called: str, src: str, out: FloodResult, answered: set[str]) -> None:
    while True:
        try:
            data = s.recv(65535).decode("latin-1")
        except BlockingIOError:
            return
        out.datagrams += 1
        if not data.startswith("SIP/2.0 ") or data.startswith("SIP/2.0 1"):
            continue
        ack = _ack(src, port, data, called)
        if ack is not None:
            s.sendto(ack, ("127.0.0.1", port))
        call_id = next((ln.split(":", 1)[1].strip() for ln in data.split("\r\n") if ln.lower().startswith("call-id:")),
                       "")
        if call_id and call_id not in answered:
            answered.add(call_id)
            out.finals[int(data.split(" ", 2)[1])] += 1


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")

"""A SIP user agent driven by hand over UDP, with a G.711 tone on RTP: what pjsua2 phones and SIPp cannot be made to
send (a REFER, an INVITE with Replaces, an offer with text and video), and every response as it came.

One ``RawUa`` holds a SIP socket and an RTP socket. It places a call (``call``) or answers one (``answer``); the
``Dialog`` it returns carries what in-dialog requests need. Requests it did not ask for are recorded and
answered 200 (a BYE ends its RTP). The RTP socket sends ``tone_hz`` in PCMU every 20 ms to where the peer's SDP
says and keeps what arrives, so a test can ask which tone reached it after a given moment.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass

from b2bua.media import g711

COMPACT = {"i": "call-id", "f": "from", "t": "to", "m": "contact", "v": "via", "l": "content-length"}
TEXT_AND_VIDEO = ("m=text {p2} RTP/AVP 100 98\r\na=rtpmap:100 t140/1000\r\na=rtpmap:98 red/1000\r\n"
                  "a=fmtp:98 100/100/100\r\nm=video {p4} RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n")


def _lines(msg: str) -> list[str]:
    return msg.split("\r\n\r\n", 1)[0].split("\r\n")


def headers(msg: str, name: str) -> list[str]:
    """Every value of a header (full or compact name), in order."""
    want = name.lower()
    out = []
    for line in _lines(msg)[1:]:
        n, _, v = line.partition(":")
        n = n.strip().lower()
        if COMPACT.get(n, n) == want:
            out.append(v.strip())
    return out


def header(msg: str, name: str) -> str:
    found = headers(msg, name)
    return found[0] if found else ""


def code(msg: str) -> int:
    return int(msg.split(" ", 2)[1]) if msg.startswith("SIP/2.0 ") else 0


def body(msg: str) -> str:
    return msg.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in msg else ""


def m_lines(sdp: str) -> list[str]:
    return [ln.strip() for ln in sdp.splitlines() if ln.startswith("m=")]


def _tag(value: str) -> str:
    m = re.search(r";\s*tag=([^;>\s]+)", value)
    return m.group(1) if m else ""


def _uri(value: str) -> str:
    m = re.search(r"<([^>]+)>", value)
    return m.group(1) if m else value.split(";", 1)[0].strip()


@dataclass
class Dialog:
    call_id: str
    local: str  # our From (UAC) or To (UAS) value, with our tag
    remote: str  # theirs, with their tag
    target: str  # their Contact: the Request-URI of our in-dialog requests
    cseq: int = 1

    @property
    def local_tag(self) -> str:
        return _tag(self.local)

    @property
    def remote_tag(self) -> str:
        return _tag(self.remote)


class RawUa:
    def __init__(self, ip: str, peer: tuple[str, int], user: str, tone_hz: float, sip_port: int = 0) -> None:
        self.ip, self.peer, self.user = ip, peer, user
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, sip_port))
        self.sock.settimeout(0.1)
        self.addr = f"{ip}:{self.sock.getsockname()[1]}"
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((ip, 0))
        self.rtp.settimeout(0.02)
        self.rtp_port = self.rtp.getsockname()[1]
        self.received: list[str] = []  # requests we did not ask for, in order (retransmissions once)
        self._branches: set[str] = set()
        self.rtp_in: list[tuple[float, int, bytes]] = []  # (arrival, payload type, payload)
        self._rtp_to: tuple[str, int] | None = None
        tone = g711.ulaw_encode(g711.tone(tone_hz, 1.0))  # whole cycles of any whole-Hz tone: loops without a click
        self._tone = tone + tone[:160]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._rtp_loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        self.rtp.close()

    # ------------------------------------------------------------------ SDP and RTP
    def sdp(self, extra_media: bool = False) -> str:
        s = (f"v=0\r\no=raw 1 1 IN IP4 {self.ip}\r\ns=-\r\nc=IN IP4 {self.ip}\r\nt=0 0\r\n"
             f"m=audio {self.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
             "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n")
        return s + (TEXT_AND_VIDEO.format(p2=self.rtp_port + 2, p4=self.rtp_port + 4) if extra_media else "")

    def _media_from(self, sdp: str) -> None:
        c = re.search(r"^c=IN IP4 (\S+)", sdp, re.M)
        m = re.search(r"^m=audio (\d+)", sdp, re.M)
        if c and m:
            self._rtp_to = (c.group(1), int(m.group(1)))

    def _rtp_loop(self) -> None:
        seq, ts, ssrc, nxt = 1, 0, 0x5EED0001, time.monotonic()
        while not self._stop.is_set():
            if self._rtp_to is not None and time.monotonic() >= nxt:
                off = ts % 8000
                frame = self._tone[off:off + 160]
                pkt = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + frame
                try:
                    self.rtp.sendto(pkt, self._rtp_to)
                except OSError:
                    pass
                seq, ts, nxt = seq + 1, ts + 160, nxt + 0.02
            try:
                data = self.rtp.recv(2048)
            except (TimeoutError, OSError):
                continue
            if len(data) > 12 and data[0] >> 6 == 2:
                self.rtp_in.append((time.monotonic(), data[1] & 0x7F, data[12:]))

    def tone_share(self, hz: float, since: float, candidates: tuple[float, ...] = (400.0, 1000.0, 1700.0)
                   ) -> tuple[float, int]:
        """Share of the audible 100 ms blocks that arrived after ``since`` dominated by ``hz``, and their number."""
        samples: list[int] = []
        for t, pt, payload in list(self.rtp_in):
            if t >= since and pt in (0, 8):
                samples += g711.decode(payload, pt)
        blocks = [samples[i:i + 800] for i in range(0, len(samples) - 799, 800)]
        loud = [b for b in blocks if sum(x * x for x in b) / len(b) > 1e5]
        hits = sum(1 for b in loud if (ft := g711.dominant_tone(b, candidates))[0] == hz and ft[1] > 0.5)
        return (hits / len(loud) if loud else 0.0), len(loud)

    # ------------------------------------------------------------------ SIP transport
    def _send(self, msg: str) -> None:
        self.sock.sendto(msg.encode("latin-1"), self.peer)

    def _recv(self) -> str | None:
        try:
            return self.sock.recv(65535).decode("latin-1")
        except TimeoutError:
            return None

    def _reply(self, req: str, status: str, extra: str = "", sdp: str = "", to: str = "") -> None:
        lines = [f"SIP/2.0 {status}", *[f"Via: {v}" for v in headers(req, "via")],
                 f"From: {header(req, 'from')}", f"To: {to or header(req, 'to')}",
                 f"Call-ID: {header(req, 'call-id')}", f"CSeq: {header(req, 'cseq')}"]
        lines += [extra] if extra else []
        self._send(_with_body(lines, sdp))

    def _unasked(self, msg: str) -> None:
        """A request we did not wait for: recorded and answered (never an ACK); a BYE stops our RTP."""
        if msg.startswith("SIP/2.0 ") or msg.startswith("ACK "):
            return
        branch = header(msg, "via").partition("branch=")[2].split(";", 1)[0]
        if branch not in self._branches:
            self._branches.add(branch)
            self.received.append(msg)
        self._reply(msg, "200 OK")
        if msg.startswith("BYE "):
            self._rtp_to = None

    def transaction(self, msg: str, timeout: float = 5.0) -> list[str]:
        """Send a request (again every 0.5 s until something answers) and return its responses up to the final."""
        call_id, cseq = header(msg, "call-id"), header(msg, "cseq")
        out: list[str] = []
        deadline, resend = time.monotonic() + timeout, 0.0
        while time.monotonic() < deadline:
            if not out and time.monotonic() >= resend:
                self._send(msg)
                resend = time.monotonic() + 0.5
            got = self._recv()
            if got is None:
                continue
            if got.startswith("SIP/2.0 ") and header(got, "call-id") == call_id and header(got, "cseq") == cseq:
                out.append(got)
                if code(got) >= 200:
                    return out
            else:
                self._unasked(got)
        return out

    def listen(self, seconds: float) -> None:
        """Answer whatever comes for a while (a BYE, a re-INVITE's retransmission)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got = self._recv()
            if got is not None:
                self._unasked(got)

    # ------------------------------------------------------------------ requests
    def _request(self, method: str, ruri: str, call_id: str, frm: str, to: str, cseq: int, extra: str = "",
                 sdp: str = "", branch: str = "") -> str:
        lines = [f"{method} {ruri} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.addr};branch={branch or 'z9hG4bK-' + uuid.uuid4().hex[:12]};rport",
                 f"From: {frm}", f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {cseq} {method}",
                 f"Contact: <sip:{self.user}@{self.addr}>", "Max-Forwards: 70"]
        lines += [extra] if extra else []
        return _with_body(lines, sdp)

    def invite(self, ruri: str, extra: str = "", extra_media: bool = False, call_id: str = "") -> tuple[
            list[str], Dialog | None]:
        """A new INVITE; the final response is ACKed. Returns the responses and, if answered, the dialog."""
        call_id = call_id or f"{uuid.uuid4().hex}@{self.ip}"
        frm = f"<sip:{self.user}@{self.ip}>;tag={uuid.uuid4().hex[:10]}"
        branch = "z9hG4bK-" + uuid.uuid4().hex[:12]
        msg = self._request("INVITE", ruri, call_id, frm, f"<{ruri}>", 1, extra, self.sdp(extra_media), branch)
        responses = self.transaction(msg, timeout=15.0)
        final = responses[-1] if responses else ""
        if not final or code(final) < 200:
            return responses, None
        to = header(final, "to")
        if code(final) >= 300:  # the ACK of a failure is part of the INVITE transaction: same branch, same URI
            self._send(self._request("ACK", ruri, call_id, frm, to, 1, branch=branch))
            return responses, None
        dlg = Dialog(call_id, frm, to, _uri(header(final, "contact")))
        self._send(self._request("ACK", dlg.target, call_id, frm, to, 1))
        self._media_from(body(final))
        return responses, dlg

    def answer(self, timeout: float = 15.0) -> tuple[str, Dialog]:
        """Wait for an INVITE, answer 200 with our SDP, wait for the ACK; the INVITE and the dialog."""
        deadline = time.monotonic() + timeout
        invite = None
        while invite is None and time.monotonic() < deadline:
            got = self._recv()
            if got is not None and got.startswith("INVITE "):
                invite = got
            elif got is not None:
                self._unasked(got)
        if invite is None:
            raise TimeoutError("no INVITE came")
        to = f"{header(invite, 'to')};tag={uuid.uuid4().hex[:10]}"
        contact = f"Contact: <sip:{self.user}@{self.addr}>"
        self._reply(invite, "100 Trying")
        acked, resend = False, 0.0
        while not acked and time.monotonic() < deadline:
            if time.monotonic() >= resend:
                self._reply(invite, "200 OK", contact, self.sdp(), to=to)
                resend = time.monotonic() + 0.5
            got = self._recv()
            if got is not None and got.startswith("ACK "):
                acked = True
            elif got is not None and not got.startswith("INVITE "):
                self._unasked(got)
        self._media_from(body(invite))
        return invite, Dialog(header(invite, "call-id"), to, header(invite, "from"), _uri(header(invite, "contact")))

    def in_dialog(self, dlg: Dialog, method: str, extra: str = "") -> list[str]:
        """A request inside the dialog (REFER, BYE, ...); its responses up to the final."""
        dlg.cseq += 1
        return self.transaction(self._request(method, dlg.target, dlg.call_id, dlg.local, dlg.remote, dlg.cseq,
                                              extra))


def replaces(dlg: Dialog) -> str:
    """The Replaces value naming ``dlg`` as its other end keeps it: their tag is the to-tag (RFC 3891)."""
    return f"Replaces: {dlg.call_id};to-tag={dlg.remote_tag};from-tag={dlg.local_tag}"


def _with_body(lines: list[str], sdp: str) -> str:
    if sdp:
        lines = [*lines, "Content-Type: application/sdp"]
    return "\r\n".join([*lines, f"Content-Length: {len(sdp.encode('latin-1'))}", "", sdp])

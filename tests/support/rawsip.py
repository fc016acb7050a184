"""Hand-made SIP datagrams for malformed-input tests: what SIPp cannot be made to send."""

from __future__ import annotations

import socket
import uuid


def request(method: str = "INVITE", *, ruri: str = "sip:4930123456@127.0.0.1", cseq: str = "1",
            extra: str = "", drop: tuple[str, ...] = (), body: str = "") -> str:
    tag = uuid.uuid4().hex[:8]
    headers = {
        "Via": "SIP/2.0/UDP {src};branch=z9hG4bK-" + uuid.uuid4().hex[:10] + ";rport",
        "From": f"<sip:15551230001@127.0.0.2>;tag={tag}",
        "To": "<sip:4930123456@127.0.0.1>",
        "Call-ID": uuid.uuid4().hex + "@127.0.0.2",
        "CSeq": f"{cseq} {method}",
        "Contact": "<sip:15551230001@{src}>",
        "Max-Forwards": "70",
    }
    lines = [f"{method} {ruri} SIP/2.0"] + [f"{k}: {v}" for k, v in headers.items() if k not in drop]
    if extra:
        lines.append(extra)
    if body:
        lines += ["Content-Type: application/sdp", f"Content-Length: {len(body)}", "", body]
    else:
        lines += ["Content-Length: 0", "", ""]
    return "\r\n".join(lines)


def exchange(msg: str, port: int, src_ip: str = "127.0.0.2", timeout: float = 1.5) -> list[str]:
    """Send one datagram from src_ip to the B2BUA and collect the status lines that come back."""
    return [m.split("\r\n", 1)[0] for m in exchange_messages(msg, port, src_ip, timeout)]


def exchange_messages(msg: str, port: int, src_ip: str = "127.0.0.2", timeout: float = 1.5) -> list[str]:
    """Send one datagram from src_ip to the B2BUA and collect the whole messages that come back."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((src_ip, 0))
        s.settimeout(timeout)
        src = f"{src_ip}:{s.getsockname()[1]}"
        s.sendto(msg.replace("{src}", src).encode("latin-1"), ("127.0.0.1", port))
        out: list[str] = []
        while True:
            try:
                data = s.recv(65535).decode("latin-1")
            except TimeoutError:
                return out
            out.append(data)
            if not data.startswith("SIP/2.0 1"):
                s.settimeout(0.3)  # a final response: collect retransmissions briefly, then stop
    finally:
        s.close()


def header(msg: str, name: str) -> str:
    """A header's value in a message's text ('' if absent)."""
    for line in msg.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        n, _, v = line.partition(":")
        if n.strip().lower() == name.lower():
            return v.strip()
    return ""


def digest_answer(challenge: str, user: str, password: str, uri: str, method: str = "INVITE",
                  nc: int = 1, cnonce: str = "5eed") -> str:
    """An Authorization value per RFC 2617 (qop=auth), computed here independently of the product."""
    import hashlib
    import re

    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.partition(" ")[2]))

    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    ha1, ha2 = md5(f"{user}:{params['realm']}:{password}"), md5(f"{method}:{uri}")
    resp = md5(f"{ha1}:{params['nonce']}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc:08x}')


def challenged_invite(port: int, src_ip: str, user: str, password: str,
                      ruri: str = "sip:4930123456@127.0.0.1", timeout: float = 2.0) -> tuple[str, list[str]]:
    """INVITE, expect 401, ACK it, INVITE again with credentials; the challenge and the second INVITE's status
    lines. Final responses are ACKed so nothing is left retransmitting."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((src_ip, 0))
        s.settimeout(timeout)
        src = f"{src_ip}:{s.getsockname()[1]}"
        call_id, tag = uuid.uuid4().hex + "@" + src_ip, uuid.uuid4().hex[:8]

        def send(method: str, cseq: int, branch: str, extra: str = "", to: str = "") -> None:
            lines = [f"{method} {ruri} SIP/2.0", f"Via: SIP/2.0/UDP {src};branch={branch};rport",
                     f"From: <sip:15551230001@{src_ip}>;tag={tag}", f"To: {to or '<' + ruri + '>'}",
                     f"Call-ID: {call_id}", f"CSeq: {cseq} {method}", f"Contact: <sip:15551230001@{src}>",
                     "Max-Forwards: 70"]
            lines += [extra] if extra else []
            s.sendto(("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode(), ("127.0.0.1", port))

        def final(method_cseq: int, branch: str) -> tuple[str, list[str]]:
            seen: list[str] = []
            while True:
                data = s.recv(65535).decode("latin-1")
                seen.append(data.split("\r\n", 1)[0])
                if not data.startswith("SIP/2.0 1"):
                    send("ACK", method_cseq, branch, to=header(data, "To"))
                    return data, seen

        b1 = "z9hG4bK-" + uuid.uuid4().hex[:10]
        send("INVITE", 1, b1)
        first, _ = final(1, b1)
        challenge = header(first, "WWW-Authenticate")
        if not first.startswith("SIP/2.0 401") or not challenge:
            return "", [first.split("\r\n", 1)[0]]
        b2 = "z9hG4bK-" + uuid.uuid4().hex[:10]
        send("INVITE", 2, b2, "Authorization: " + digest_answer(challenge, user, password, ruri))
        _, statuses = final(2, b2)
        return challenge, statuses
    finally:
        s.close()


def _raw_header(msg: bytes, name: str) -> bytes:
    """The first value of a header (full name only, as the B2BUA writes them) in a raw response."""
    for line in msg.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        n, _, v = line.partition(b":")
        if n.strip().lower() == name.lower().encode():
            return v.strip()
    return b""


def ack_for(response: bytes, ruri: bytes) -> bytes:
    """The ACK of a non-2xx final response to an INVITE (RFC 3261 17.1.1.3): the request's top Via (as the response
    echoes it), its From, Call-ID and CSeq number, and the response's To (with its tag)."""
    cseq = _raw_header(response, "CSeq").split(b" ", 1)[0]
    lines = [b"ACK " + ruri.strip(b"<>;") + b" SIP/2.0", b"Via: " + _raw_header(response, "Via"),
             b"From: " + _raw_header(response, "From"), b"To: " + _raw_header(response, "To"),
             b"Call-ID: " + _raw_header(response, "Call-ID"), b"CSeq: " + cseq + b" ACK", b"Max-Forwards: 70",
             b"Content-Length: 0", b"", b""]
    return b"\r\n".join(lines)


def exchange_raw(raw: bytes, port: int, src: tuple[str, int], match: bytes, timeout: float = 1.0,
                 settle: float = 0.15) -> list[bytes]:
    """Send ``raw`` byte for byte from ``src`` (bound as given: a message's Via without ``rport`` is answered at the
    source address and the Via's port) and return every datagram that comes back until ``timeout``, or until
    ``settle`` seconds after a final response carrying ``match`` (the request's Call-ID or branch). Final responses
    ≥ 300 to an INVITE are ACKed, so no retransmission of them reaches the next exchange."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(src)
        s.settimeout(timeout)
        s.sendto(raw, ("127.0.0.1", port))
        ruri = raw.split(b"\r\n", 1)[0].split()[1:2] or [b"sip:invalid"]
        out: list[bytes] = []
        while True:
            try:
                data = s.recv(65535)
            except TimeoutError:
                return out
            out.append(data)
            head = data.split(b"\r\n\r\n", 1)[0]
            if not data.startswith(b"SIP/2.0 ") or data.startswith(b"SIP/2.0 1") or match not in head:
                continue
            if data[8:9] != b"2" and _raw_header(data, "CSeq").endswith(b" INVITE") and _raw_header(data, "Call-ID"):
                s.sendto(ack_for(data, ruri[0]), ("127.0.0.1", port))
            s.settimeout(settle)
    finally:
        s.close()


def options_status(port: int, src_ip: str = "127.0.0.2", timeout: float = 2.0) -> int:
    """A plain OPTIONS from ``src_ip``: the status of its first final response, 0 if none came within ``timeout``."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((src_ip, 0))
        s.settimeout(timeout)
        src = f"{src_ip}:{s.getsockname()[1]}"
        s.sendto(request("OPTIONS").replace("{src}", src).encode(), ("127.0.0.1", port))
        while True:
            try:
                data = s.recv(65535)
            except TimeoutError:
                return 0
            if data.startswith(b"SIP/2.0 ") and not data.startswith(b"SIP/2.0 1"):
                return int(data[8:11])
    finally:
        s.close()

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
            out.append(data.split("\r\n", 1)[0])
            if not data.startswith("SIP/2.0 1"):
                s.settimeout(0.3)  # a final response: collect retransmissions briefly, then stop
    finally:
        s.close()

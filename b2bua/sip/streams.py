"""One SIP transaction over a TCP or TLS connection of its own, for the asyncio side's out-of-engine requests
(trunk OPTIONS pings, a restart's BYEs): connecting from the SIP listen address, reading whole messages off the
stream, and closing without hanging on a peer that never answers TLS close_notify (pjsip does not).

The TLS client side is as strict as the engine's: TLS 1.2 or newer, the peer's certificate checked against the
configured CA (and its name or IP) unless verification is off, our own certificate offered for mutual TLS.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Literal

from b2bua.sip import message

Transport = Literal["udp", "tcp", "tls"]
CLOSE_WAIT_S = 0.2
MAX_MESSAGE = 65536  # bytes: more is not a peer's answer to an OPTIONS or a BYE


async def connect(host: str, port: int, *, tls: ssl.SSLContext | None, listen_ip: str
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to ``host:port`` from ``listen_ip`` (an ephemeral port: pjsua owns the SIP port), TLS when
    ``tls`` is given (the handshake and certificate checks happen here)."""
    local = None if listen_ip in ("", "0.0.0.0", "::") else (listen_ip, 0)
    return await asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None,
                                         local_addr=local)


async def close(writer: asyncio.StreamWriter) -> None:
    """Close politely (TLS close_notify) but briefly: a connection must not stay open until asyncio's own SSL
    shutdown timeout because the peer never answers close_notify."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_WAIT_S)
    except (OSError, ssl.SSLError, TimeoutError):
        writer.transport.abort()


async def read_message(reader: asyncio.StreamReader) -> bytes:
    """One SIP message from a stream (headers, then Content-Length bytes of body); CRLF keep-alives skipped."""
    head = (await reader.readuntil(b"\r\n\r\n")).lstrip(b"\r\n")
    if len(head) > MAX_MESSAGE:
        raise ValueError("message too large")
    _, headers = message.request_line_and_headers(head.decode("utf-8", "replace"))
    length = message.header(headers, "Content-Length") or "0"
    if not length.strip().isdigit() or int(length) > MAX_MESSAGE:
        raise ValueError(f"bad Content-Length {length!r}")
    body = await reader.readexactly(int(length))
    return head + body


def tls_client_context(*, cert_file: str = "", key_file: str = "", ca_file: str = "",
                       verify: bool = True) -> ssl.SSLContext:
    """The client side of our own TLS connections: TLS 1.2 or newer, the peer checked against ``ca_file`` (and
    its name) when ``verify``, our certificate offered for mutual TLS."""
    ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file or None)
    return ctx

"""OPTIONS pings over loopback UDP: the status is read, silence is 0 within the timeout, retransmissions follow
T1, and a dead trunk does not delay the others' answers."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from b2bua.sip import message, options, streams
from tests.support.pki import self_signed


class _Carrier(asyncio.DatagramProtocol):
    def __init__(self, code: int | None) -> None:
        self.code = code
        self.received: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode()
        self.received.append(text)
        if self.code is None:
            return
        _, headers = message.request_line_and_headers(text)
        lines = [f"SIP/2.0 {self.code} Whatever"] + [f"{n}: {message.header(headers, n)}"
                                                     for n in ("Via", "From", "To", "Call-ID", "CSeq")]
        self.transport.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), addr)  # type: ignore[attr-defined]


@asynccontextmanager
async def carrier(code: int | None) -> AsyncIterator[tuple[int, _Carrier]]:
    proto = _Carrier(code)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: proto,
                                                                             local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1], proto
    finally:
        transport.close()


async def test_any_final_status_comes_back_and_the_request_is_a_proper_options() -> None:
    async with carrier(405) as (port, far), options.pinger("127.0.0.1", user_agent="b2bua/t") as p:
        assert await p.ping("127.0.0.1", port, 1.0) == 405
    line, headers = message.request_line_and_headers(far.received[0])
    assert line == f"OPTIONS sip:127.0.0.1:{port} SIP/2.0"
    via = message.header(headers, "Via") or ""
    assert via.startswith("SIP/2.0/UDP 127.0.0.1:") and ";rport;branch=z9hG4bK" in via
    assert message.header(headers, "CSeq") == "1 OPTIONS" and message.header(headers, "User-Agent") == "b2bua/t"


async def test_silence_is_0_after_the_timeout_with_retransmissions() -> None:
    async with carrier(None) as (port, far), options.pinger("127.0.0.1") as p:
        started = time.monotonic()
        assert await p.ping("127.0.0.1", port, 1.2) == 0
        took = time.monotonic() - started
    assert 1.1 < took < 1.5, took
    assert len(far.received) == 2  # at 0 and 0.5 s (the next would be at 1.5 s)


async def test_a_dead_trunk_does_not_delay_a_live_one() -> None:
    async with carrier(None) as (dead, _), carrier(200) as (live, _), options.pinger("127.0.0.1") as p:
        started = time.monotonic()
        slow = asyncio.create_task(p.ping("127.0.0.1", dead, 1.0))
        assert await p.ping("127.0.0.1", live, 1.0) == 200
        assert time.monotonic() - started < 0.3
        assert await slow == 0


async def test_an_unresolvable_host_fails_within_the_timeout() -> None:
    async with options.pinger("127.0.0.1") as p:
        started = time.monotonic()
        assert await p.ping("no-such-host.invalid", 5060, 0.5) == 0
        assert time.monotonic() - started < 1.0


def test_read_response_only_takes_options_responses_with_a_branch() -> None:
    ok = b"SIP/2.0 404 Not Found\r\nVia: SIP/2.0/UDP h:1;rport=1;branch=z9hG4bK-x\r\nCSeq: 1 OPTIONS\r\n\r\n"
    assert options.read_response(ok) == (404, "z9hG4bK-x")
    assert options.read_response(ok.replace(b"OPTIONS", b"INVITE")) is None
    assert options.read_response(b"OPTIONS sip:x SIP/2.0\r\n\r\n") is None


# ------------------------------------------------------------------------------------------ TCP and TLS
def _answer(text: str, code: int) -> bytes:
    _, headers = message.request_line_and_headers(text)
    lines = [f"SIP/2.0 {code} Whatever"] + [f"{n}: {message.header(headers, n)}"
                                            for n in ("Via", "From", "To", "Call-ID", "CSeq")]
    return ("\r\n".join(lines) + "\r\nContent-Length: 4\r\n\r\nbody").encode()


@asynccontextmanager
async def stream_carrier(codes: list[int], tls: ssl.SSLContext | None = None
                         ) -> AsyncIterator[tuple[int, list[str]]]:
    """A carrier on a TCP (or TLS) socket: a CRLF keep-alive, then a response per code (provisional first)."""
    received: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        text = (await reader.readuntil(b"\r\n\r\n")).decode()
        received.append(text)
        writer.write(b"\r\n\r\n")
        for code in codes:
            writer.write(_answer(text, code))
        await writer.drain()
        await reader.read()  # until the pinger closes
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1], received
    finally:
        server.close()


async def test_a_tcp_ping_reads_the_final_response_on_its_own_connection() -> None:
    async with stream_carrier([100, 404]) as (port, received), options.pinger("127.0.0.1") as p:
        assert await p.ping("127.0.0.1", port, 1.0, "tcp") == 404
    line, headers = message.request_line_and_headers(received[0])
    assert line == f"OPTIONS sip:127.0.0.1:{port};transport=tcp SIP/2.0"
    assert (message.header(headers, "Via") or "").startswith("SIP/2.0/TCP 127.0.0.1:")


async def test_a_tcp_ping_to_a_closed_port_or_a_silent_carrier_is_0_within_the_timeout() -> None:
    async with stream_carrier([]) as (silent, _), options.pinger("127.0.0.1") as p:
        started = time.monotonic()
        assert await p.ping("127.0.0.1", silent, 0.5, "tcp") == 0
        assert 0.4 < time.monotonic() - started < 0.9
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound, not listening: refused
        async with options.pinger("127.0.0.1") as p:
            assert await p.ping("127.0.0.1", closed, 0.5, "tcp") == 0


async def test_a_tls_ping_verifies_the_carrier_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "pki")
    rogue, _ = self_signed(tmp_path / "rogue", cn="rogue")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    trusted = streams.tls_client_context(ca_file=str(cert))
    async with stream_carrier([200], server_ctx) as (port, received):
        async with options.pinger("127.0.0.1", tls=trusted) as p:
            assert await p.ping("127.0.0.1", port, 2.0, "tls") == 200
        assert (message.header(message.request_line_and_headers(received[0])[1], "Via") or "").startswith(
            "SIP/2.0/TLS 127.0.0.1:")
        untrusting = streams.tls_client_context(ca_file=str(rogue))
        async with options.pinger("127.0.0.1", tls=untrusting) as p:
            assert await p.ping("127.0.0.1", port, 2.0, "tls") == 0, "a certificate from another CA is refused"
        unverified = streams.tls_client_context(ca_file=str(rogue), verify=False)
        async with options.pinger("127.0.0.1", tls=unverified) as p:
            assert await p.ping("127.0.0.1", port, 2.0, "tls") == 200, "tls_verify_server = false"
    assert len(received) == 2

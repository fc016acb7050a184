"""OPTIONS pings over loopback UDP: the status is read, silence is 0 within the timeout, retransmissions follow
T1, and a dead trunk does not delay the others' answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from b2bua.sip import message, options


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

"""Ending left-over dialogs over a plain UDP socket: every dialog gets its BYE from the SIP port, retransmitted on
RFC 3261's Timer E schedule within the budget; 2xx and 481 end it, silence is reported, a taken port is an error."""

from __future__ import annotations

import asyncio
import itertools
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from b2bua.sip import streams, teardown
from b2bua.sip.types import Dialog
from tests.support.pki import self_signed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Peer(asyncio.DatagramProtocol):
    """A far end: ``answer(call_id, nth)`` gives the status to send for the nth copy of a BYE (None: stay silent)."""

    def __init__(self, answer: Callable[[str, int], int | None]) -> None:
        self.answer = answer
        self.got: list[tuple[float, str, tuple[str, int]]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # the selector's is not a subclass in 3.11

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode()
        headers = dict(line.split(": ", 1) for line in text.split("\r\n")[1:] if ": " in line)
        call_id = headers["Call-ID"]
        self.got.append((time.monotonic(), text, addr))
        status = self.answer(call_id, sum(1 for _, t, _ in self.got if f"Call-ID: {call_id}\r\n" in t))
        if status is not None and self.transport is not None:
            reply = (f"SIP/2.0 {status} X\r\nVia: {headers['Via']};received={addr[0]}\r\n"
                     f"From: {headers['From']}\r\nTo: {headers['To']}\r\nCall-ID: {call_id}\r\n"
                     f"CSeq: {headers['CSeq']}\r\nContent-Length: 0\r\n\r\n")
            self.transport.sendto(reply.encode(), addr)

    def byes(self, call_id: str) -> list[float]:
        return [t for t, text, _ in self.got if text.startswith("BYE ") and f"Call-ID: {call_id}\r\n" in text]


async def peer(answer: Callable[[str, int], int | None]) -> tuple[Peer, str]:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_datagram_endpoint(lambda: Peer(answer), local_addr=("127.0.0.3", 0))
    assert proto.transport is not None
    return proto, f"127.0.0.3:{proto.transport.get_extra_info('sockname')[1]}"


def dlg(call_id: str, destination: str) -> Dialog:
    return Dialog(call_id, "sip:b2bua@127.0.0.1", "L-" + call_id, "sip:far@127.0.0.3", "R-" + call_id,
                  f"sip:far@{destination}", (), destination, 1_081_343)


async def test_every_dialog_gets_a_bye_from_the_sip_port_and_200_or_481_end_it() -> None:
    far, where = await peer(lambda call_id, nth: 481 if call_id == "gone" else 200)
    port = free_port()
    started = time.monotonic()
    results = await teardown.end_dialogs([dlg("a", where), dlg("b", where), dlg("gone", where)],
                                         listen_ip="127.0.0.1", listen_port=port, user_agent="b2bua/t")
    assert time.monotonic() - started < 0.5
    assert [(r.dialog.sip_call_id, r.code, r.done) for r in results] == [("a", 200, True), ("b", 200, True),
                                                                         ("gone", 481, True)]
    assert {addr for _, _, addr in far.got} == {("127.0.0.1", port)}  # sent from the SIP listen port
    text = far.got[0][1]
    assert text.startswith("BYE sip:far@") and f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bK-r" in text
    assert 'Reason: SIP;cause=500;text="restart after failure"' in text and "User-Agent: b2bua/t" in text
    assert len({t.split("branch=")[1].split("\r\n")[0] for _, t, _ in far.got}) == 3  # one transaction each


async def test_unanswered_bye_is_retransmitted_on_timer_e_until_answered() -> None:
    far, where = await peer(lambda call_id, nth: 200 if nth >= 3 else None)
    results = await teardown.end_dialogs([dlg("slow", where)], listen_ip="127.0.0.1", listen_port=free_port())
    assert results[0].code == 200
    sent = far.byes("slow")
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(sent)]
    assert gaps == [0.5, 1.0], gaps  # T1, then doubled


async def test_silence_is_reported_after_the_budget_and_the_round_is_bounded() -> None:
    far, where = await peer(lambda call_id, nth: None)
    started = time.monotonic()
    results = await teardown.end_dialogs([dlg("dead", where), dlg("bad", "no-port-here")], listen_ip="127.0.0.1",
                                         listen_port=free_port(), budget_s=0.7)
    took = time.monotonic() - started
    assert 0.65 < took < 1.0, took
    assert [(r.code, r.done) for r in results] == [(0, False), (0, False)]
    assert "no-port-here" in results[1].detail
    assert len(far.byes("dead")) == 2  # at 0 and 0.5 s: none at the deadline


async def test_a_taken_sip_port_is_an_error_not_a_silent_skip() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(OSError):
            await teardown.end_dialogs([dlg("x", "127.0.0.3:9")], listen_ip="127.0.0.1",
                                       listen_port=taken.getsockname()[1])
    assert await teardown.end_dialogs([], listen_ip="127.0.0.1", listen_port=1) == []  # nothing to do: no bind


async def test_first_transmissions_are_paced_so_a_peer_is_not_flooded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(teardown, "SEND_RATE", 100.0)
    far, where = await peer(lambda call_id, nth: 200)
    results = await teardown.end_dialogs([dlg(f"c{i}", where) for i in range(10)], listen_ip="127.0.0.1",
                                         listen_port=free_port())
    assert all(r.code == 200 for r in results)
    sent = sorted(t for t, _, _ in far.got)
    assert len(sent) == 10 and 0.08 < sent[-1] - sent[0] < 0.2  # 10 ms apart, not one burst


# ------------------------------------------------------------------------------------------ TCP and TLS
async def stream_peer(code: int, tls: ssl.SSLContext | None = None) -> tuple[asyncio.Server, list[str], int]:
    """A far end on 127.0.0.3 over TCP (or TLS): a 100 Trying, then ``code`` for each BYE on its connection."""
    got: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        text = (await reader.readuntil(b"\r\n\r\n")).decode()
        got.append(text)
        headers = dict(line.split(": ", 1) for line in text.split("\r\n")[1:] if ": " in line)
        for status in (100, code):
            writer.write((f"SIP/2.0 {status} X\r\nVia: {headers['Via']}\r\nFrom: {headers['From']}\r\n"
                          f"To: {headers['To']}\r\nCall-ID: {headers['Call-ID']}\r\nCSeq: {headers['CSeq']}\r\n"
                          "Content-Length: 0\r\n\r\n").encode())
        await writer.drain()
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.3", 0, ssl=tls)
    return server, got, int(server.sockets[0].getsockname()[1])


def stream_dlg(call_id: str, port: int, transport: str) -> Dialog:
    return Dialog(call_id, "sip:b2bua@127.0.0.1", "L", "sip:far@127.0.0.3", "R",
                  f"sip:far@127.0.0.3:{port};transport={transport}", (), f"127.0.0.3:{port}", 1_081_343)


async def test_a_tcp_dialog_gets_its_bye_on_a_connection_and_a_udp_one_beside_it() -> None:
    server, got, tcp_port = await stream_peer(200)
    far, where = await peer(lambda call_id, nth: 200)
    async with server:
        results = await teardown.end_dialogs([stream_dlg("t", tcp_port, "tcp"), dlg("u", where)],
                                             listen_ip="127.0.0.1", listen_port=free_port(), budget_s=1.0)
    assert [(r.dialog.sip_call_id, r.code) for r in results] == [("t", 200), ("u", 200)]
    assert len(got) == 1 and got[0].startswith(f"BYE sip:far@127.0.0.3:{tcp_port};transport=tcp SIP/2.0\r\n")
    assert "Via: SIP/2.0/TCP 127.0.0.1:" in got[0] and "CSeq: 1081343 BYE" in got[0]
    assert far.byes("u") and not far.byes("t")


async def test_a_tls_dialog_needs_a_verified_peer_and_a_dead_tcp_peer_is_reported(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "pki")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server, got, tls_port = await stream_peer(481, server_ctx)
    async with server:
        ok = await teardown.end_dialogs([stream_dlg("s", tls_port, "tls")], listen_ip="127.0.0.1",
                                        listen_port=free_port(), budget_s=1.0,
                                        tls=streams.tls_client_context(ca_file=str(cert)))
        no_context = await teardown.end_dialogs([stream_dlg("s", tls_port, "tls")], listen_ip="127.0.0.1",
                                                listen_port=free_port(), budget_s=1.0)
    assert (ok[0].code, ok[0].done) == (481, True) and "Via: SIP/2.0/TLS 127.0.0.1:" in got[0]
    assert no_context[0].code == 0 and "no TLS client context" in no_context[0].detail
    dead = await teardown.end_dialogs([stream_dlg("d", free_port(), "tcp")], listen_ip="127.0.0.1",
                                      listen_port=free_port(), budget_s=1.0)
    assert dead[0].code == 0 and not dead[0].done and "tcp to 127.0.0.3" in dead[0].detail

"""Ending the dialogs a dead run left up, before the SIP engine takes the port: one BYE transaction per dialog over
a plain UDP socket bound to the SIP listen address (so the peers see our usual source address), all at once; a
dialog whose target or first Route asks for TCP or TLS gets its BYE on a new connection from the listen address.

Retransmission follows RFC 3261 §17.1.2.2 for UDP (Timer E from T1 = 500 ms, doubling to T2 = 4 s) but each
transaction is bounded (``budget_s``): a start must not wait Timer F's 32 s for a peer that is gone. 2xx and 481
(the peer had already dropped it) both mean the dialog is over. First transmissions are paced (``SEND_RATE``): a
burst of a thousand BYEs overflows a peer's receive buffer, and what it drops then waits for retransmissions. The
whole round takes at most ``len(dialogs) / SEND_RATE + budget_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

from b2bua.sip import dialog as dialogs
from b2bua.sip import streams
from b2bua.sip.streams import Transport
from b2bua.sip.types import Dialog

T1 = 0.5
T2 = 4.0
BUDGET_S = 4.0
SEND_RATE = 1000.0  # first transmissions a second


@dataclass(frozen=True, slots=True)
class ByeResult:
    dialog: Dialog
    code: int  # the final response; 0: none within the budget (or the BYE could not be sent)
    detail: str = ""

    @property
    def done(self) -> bool:
        """The peer no longer holds the dialog."""
        return 200 <= self.code < 300 or self.code == 481


class _Responses(asyncio.DatagramProtocol):
    """Final responses to our BYEs, matched by the Via branch we gave each one; everything else is dropped
    (requests that arrive meanwhile are retransmitted by their senders and met by the engine once it runs)."""

    def __init__(self, waiting: dict[str, asyncio.Future[int]]) -> None:
        self.waiting = waiting

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        found = dialogs.read_response(data)
        if found is None or found[0] < 200:
            return
        fut = self.waiting.get(found[1])
        if fut is not None and not fut.done():
            fut.set_result(found[0])


@dataclass(frozen=True, slots=True)
class _Sender:
    """What every BYE of one round shares: the UDP socket (and its waiting responses), our addresses, TLS."""

    transport: asyncio.DatagramTransport
    waiting: dict[str, asyncio.Future[int]]
    family: int
    listen_ip: str
    via_host: str
    via_port: int
    user_agent: str
    tls: ssl.SSLContext | None


async def end_dialogs(found: Sequence[Dialog], *, listen_ip: str, listen_port: int, via_host: str = "",
                      user_agent: str = "", budget_s: float = BUDGET_S,
                      tls: ssl.SSLContext | None = None) -> list[ByeResult]:
    """Send a BYE in every dialog (paced) and wait for their final responses, each at most ``budget_s`` after its
    first transmission. Raises ``OSError`` if the SIP port cannot be bound (another process holds it). Dialogs
    over TCP or TLS get their BYE on a connection of their own (TLS with ``tls``)."""
    if not found:
        return []
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in listen_ip else socket.AF_INET
    waiting: dict[str, asyncio.Future[int]] = {}
    transport, _ = await loop.create_datagram_endpoint(lambda: _Responses(waiting), local_addr=(listen_ip, listen_port),
                                                       family=family)
    sender = _Sender(transport, waiting, family, listen_ip, via_host or listen_ip, listen_port, user_agent, tls)
    try:
        start = loop.time()
        jobs = [_one(sender, d, start + i / SEND_RATE, budget_s) for i, d in enumerate(found)]
        return list(await asyncio.gather(*jobs))
    finally:
        transport.close()


async def _one(sender: _Sender, dialog: Dialog, at: float, budget_s: float) -> ByeResult:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, at - loop.time()))
    deadline = at + budget_s
    try:
        addr = await asyncio.wait_for(_resolve(dialog.destination, sender.family), max(0.1, deadline - loop.time()))
    except (OSError, TimeoutError, ValueError) as e:
        return ByeResult(dialog, 0, f"destination {dialog.destination!r}: {e!r}")
    over = dialogs.transport_of(dialog)
    if over != "udp":
        try:
            code = await asyncio.wait_for(_over_stream(sender, dialog, addr, over), max(0.1, deadline - loop.time()))
        except (OSError, TimeoutError, ValueError, ssl.SSLError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as e:
            return ByeResult(dialog, 0, f"{over} to {dialog.destination}: {e!r}")
        return ByeResult(dialog, code)
    via_host = _source_toward(addr, sender.family) if _unspecified(sender.via_host) else sender.via_host
    branch = "z9hG4bK-r" + os.urandom(8).hex()
    fut: asyncio.Future[int] = loop.create_future()
    sender.waiting[branch] = fut
    bye = dialogs.build_bye(dialog, via_host=via_host, via_port=sender.via_port, branch=branch,
                            user_agent=sender.user_agent)
    interval = T1
    try:
        while True:
            sender.transport.sendto(bye, addr)
            with contextlib.suppress(TimeoutError):
                wait = max(0.0, min(interval, deadline - loop.time()))
                return ByeResult(dialog, await asyncio.wait_for(asyncio.shield(fut), wait))
            if loop.time() >= deadline - 0.01:  # asyncio's timers may fire a clock tick early
                return ByeResult(dialog, 0, "no final response")
            interval = min(interval * 2, T2)
    finally:
        sender.waiting.pop(branch, None)


async def _over_stream(sender: _Sender, dialog: Dialog, addr: tuple[str, int], over: Transport) -> int:
    """One BYE on a new TCP/TLS connection (the dead process's connections died with it), sent once (a reliable
    transport retransmits nothing), read until its final response."""
    if over == "tls" and sender.tls is None:
        raise ValueError("no TLS client context")
    reader, writer = await streams.connect(addr[0], addr[1], tls=sender.tls if over == "tls" else None,
                                           listen_ip=sender.listen_ip)
    try:
        sock_host, sock_port = writer.get_extra_info("sockname")[:2]
        via_host = str(sock_host) if _unspecified(sender.via_host) else sender.via_host
        branch = "z9hG4bK-r" + os.urandom(8).hex()
        writer.write(dialogs.build_bye(dialog, via_host=via_host, via_port=int(sock_port), branch=branch,
                                       user_agent=sender.user_agent, transport=over))
        await writer.drain()
        while True:
            found = dialogs.read_response(await streams.read_message(reader))
            if found is not None and found[1] == branch and found[0] >= 200:
                return found[0]
    finally:
        await streams.close(writer)


async def _resolve(destination: str, family: int) -> tuple[str, int]:
    """A "host:port" destination as a socket address of the socket's family (a name is looked up: A/AAAA only,
    as the engine itself does for a host with a port)."""
    found = dialogs.split_host_port(destination)
    if found is None:
        raise ValueError("not host:port")
    host, port = found
    if dialogs.is_ip(host):
        return host, port
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"{host} does not resolve")
    sockaddr = infos[0][4]
    return str(sockaddr[0]), int(sockaddr[1])


def _unspecified(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def _source_toward(addr: tuple[str, int], family: int) -> str:
    """Our address toward ``addr`` (for the Via when we listen on every address): what routing picks."""
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1" if family == socket.AF_INET else "::1"

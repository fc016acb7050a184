"""Ending the dialogs a dead run left up, before the SIP engine takes the port: one BYE transaction per dialog over
a plain UDP socket bound to the SIP listen address (so the peers see our usual source address), all at once.

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
from collections.abc import Sequence
from dataclasses import dataclass

from b2bua.sip import dialog as dialogs
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


async def end_dialogs(found: Sequence[Dialog], *, listen_ip: str, listen_port: int, via_host: str = "",
                      user_agent: str = "", budget_s: float = BUDGET_S) -> list[ByeResult]:
    """Send a BYE in every dialog (paced) and wait for their final responses, each at most ``budget_s`` after its
    first transmission. Raises ``OSError`` if the SIP port cannot be bound (another process holds it)."""
    if not found:
        return []
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in listen_ip else socket.AF_INET
    waiting: dict[str, asyncio.Future[int]] = {}
    transport, _ = await loop.create_datagram_endpoint(lambda: _Responses(waiting), local_addr=(listen_ip, listen_port),
                                                       family=family)
    try:
        start = loop.time()
        jobs = [_one(transport, waiting, d, family, via_host or listen_ip, listen_port, user_agent,
                     start + i / SEND_RATE, budget_s) for i, d in enumerate(found)]
        return list(await asyncio.gather(*jobs))
    finally:
        transport.close()


async def _one(transport: asyncio.DatagramTransport, waiting: dict[str, asyncio.Future[int]], dialog: Dialog,
               family: int, via_host: str, via_port: int, user_agent: str, at: float, budget_s: float) -> ByeResult:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, at - loop.time()))
    deadline = at + budget_s
    try:
        addr = await asyncio.wait_for(_resolve(dialog.destination, family), max(0.1, deadline - loop.time()))
    except (OSError, TimeoutError, ValueError) as e:
        return ByeResult(dialog, 0, f"destination {dialog.destination!r}: {e!r}")
    if _unspecified(via_host):
        via_host = _source_toward(addr, family)
    branch = "z9hG4bK-r" + os.urandom(8).hex()
    fut: asyncio.Future[int] = loop.create_future()
    waiting[branch] = fut
    bye = dialogs.build_bye(dialog, via_host=via_host, via_port=via_port, branch=branch, user_agent=user_agent)
    interval = T1
    try:
        while True:
            transport.sendto(bye, addr)
            with contextlib.suppress(TimeoutError):
                wait = max(0.0, min(interval, deadline - loop.time()))
                return ByeResult(dialog, await asyncio.wait_for(asyncio.shield(fut), wait))
            if loop.time() >= deadline - 0.01:  # asyncio's timers may fire a clock tick early
                return ByeResult(dialog, 0, "no final response")
            interval = min(interval * 2, T2)
    finally:
        waiting.pop(branch, None)


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

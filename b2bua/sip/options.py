"""OPTIONS pings to carrier trunks from sockets of their own (asyncio), beside the SIP engine: bound to the SIP
listen address (the carrier sees our usual source address and ACLs keep working) but an ephemeral port, since
pjsua owns the SIP port.

Each ping is one non-INVITE transaction bounded by its timeout, so a dead trunk costs its own ping's timeout and
nothing else: pings run concurrently, a name that does not resolve fails within the same bound. Over UDP it is
retransmitted from T1 = 500 ms, doubling to T2 = 4 s (RFC 3261 §17.1.2.2) and matched by its Via branch; over TCP
and TLS it goes on a connection of its own (a TLS-only carrier answers nothing on UDP, and a ping must exercise
the handshake and certificate the calls depend on), sent once and read until its final response.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from collections.abc import AsyncIterator

from b2bua.sip import message, streams
from b2bua.sip.dialog import is_ip, join_host_port
from b2bua.sip.streams import Transport

T1 = 0.5
T2 = 4.0



def build_options(host: str, port: int, *, via_host: str, via_port: int, branch: str, user_agent: str = "",
                  transport: Transport = "udp") -> bytes:
    """An out-of-dialog OPTIONS to ``host:port`` with ``rport``, so the response comes back to this socket."""
    target = join_host_port(host, port) + ("" if transport == "udp" else f";transport={transport}")
    tag = os.urandom(4).hex()
    lines = [
        f"OPTIONS sip:{target} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {join_host_port(via_host, via_port)};rport;branch={branch}",
        "Max-Forwards: 70",
        f"From: <sip:ping@{join_host_port(via_host, via_port)}>;tag={tag}",
        f"To: <sip:{join_host_port(host, port)}>",
        f"Call-ID: {branch}@{via_host}",
        "CSeq: 1 OPTIONS",
        "Accept: application/sdp",
        *([f"User-Agent: {user_agent}"] if user_agent else []),
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def read_response(data: bytes) -> tuple[int, str] | None:
    """A final or provisional response to an OPTIONS as (status, Via branch); None for anything else."""
    text = data.decode("utf-8", "replace")
    parts = text.partition("\r\n")[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit():
        return None
    _, headers = message.request_line_and_headers(text)
    if not (message.header(headers, "CSeq") or "").upper().endswith(" OPTIONS"):
        return None
    via = message.header(headers, "Via") or ""
    for param in via.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "branch":
            return int(parts[1]), value.strip()
    return None


class _Responses(asyncio.DatagramProtocol):
    def __init__(self, waiting: dict[str, asyncio.Future[int]]) -> None:
        self.waiting = waiting

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        found = read_response(data)
        if found is None or found[0] < 200:
            return
        fut = self.waiting.get(found[1])
        if fut is not None and not fut.done():
            fut.set_result(found[0])

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable: the ping times out as usual
        pass


class OptionsPinger:
    """Pings over one socket; :meth:`ping` may be awaited for many trunks at once."""

    def __init__(self, transport: asyncio.DatagramTransport, waiting: dict[str, asyncio.Future[int]], family: int,
                 via_host: str, user_agent: str, tls: ssl.SSLContext | None = None) -> None:
        self._transport = transport
        self._waiting = waiting
        self._family = family
        self._listen_ip = str(transport.get_extra_info("sockname")[0])
        self._via_host = via_host
        self._via_port = int(transport.get_extra_info("sockname")[1])
        self._user_agent = user_agent
        self._tls = tls

    async def ping(self, host: str, port: int, timeout_s: float, transport: Transport = "udp") -> int:
        """The final response's status, or 0 if none came within ``timeout_s`` (or it could not be sent)."""
        if transport != "udp":
            try:
                return await asyncio.wait_for(self._ping_stream(host, port, transport), timeout_s)
            except (OSError, TimeoutError, ValueError, ssl.SSLError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError):
                return 0
        return await self._ping_datagram(host, port, timeout_s)

    async def _ping_stream(self, host: str, port: int, transport: Transport) -> int:
        """One OPTIONS on a connection of its own: the connection (and the TLS handshake, with the certificate
        checks calls get) is part of what is tested."""
        reader, writer = await streams.connect(host, port, tls=self._tls if transport == "tls" else None,
                                               listen_ip=self._listen_ip)
        try:
            sock_host, sock_port = writer.get_extra_info("sockname")[:2]
            via = sock_host if self._via_host in ("", "0.0.0.0", "::") else self._via_host
            branch = "z9hG4bK-o" + os.urandom(8).hex()
            writer.write(build_options(host, port, via_host=via, via_port=int(sock_port), branch=branch,
                                       user_agent=self._user_agent, transport=transport))
            await writer.drain()
            while True:
                found = read_response(await streams.read_message(reader))
                if found is not None and found[1] == branch and found[0] >= 200:
                    return found[0]
        finally:
            await streams.close(writer)

    async def _ping_datagram(self, host: str, port: int, timeout_s: float) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            addr = await asyncio.wait_for(self._resolve(host, port), timeout_s)
        except (OSError, TimeoutError, ValueError):
            return 0
        branch = "z9hG4bK-o" + os.urandom(8).hex()
        fut: asyncio.Future[int] = loop.create_future()
        self._waiting[branch] = fut
        via = _source_toward(addr, self._family) if self._via_host in ("", "0.0.0.0", "::") else self._via_host
        request = build_options(host, port, via_host=via, via_port=self._via_port, branch=branch,
                                user_agent=self._user_agent)
        interval = T1
        try:
            while True:
                with contextlib.suppress(OSError):
                    self._transport.sendto(request, addr)
                wait = max(0.0, min(interval, deadline - loop.time()))
                with contextlib.suppress(TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(fut), wait)
                if loop.time() >= deadline - 0.01:
                    return 0
                interval = min(interval * 2, T2)
        finally:
            self._waiting.pop(branch, None)

    async def _resolve(self, host: str, port: int) -> tuple[str, int]:
        if is_ip(host):
            return host, port
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=self._family, type=socket.SOCK_DGRAM)
        if not infos:
            raise OSError(f"{host} does not resolve")
        return str(infos[0][4][0]), int(infos[0][4][1])


@contextlib.asynccontextmanager
async def pinger(listen_ip: str, *, via_host: str = "", user_agent: str = "",
                 tls: ssl.SSLContext | None = None) -> AsyncIterator[OptionsPinger]:
    """A pinger whose UDP socket is bound to ``listen_ip`` on an ephemeral port, closed at the end of the block;
    TCP and TLS pings open connections from the same address."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in listen_ip else socket.AF_INET
    waiting: dict[str, asyncio.Future[int]] = {}
    transport, _ = await loop.create_datagram_endpoint(lambda: _Responses(waiting), local_addr=(listen_ip, 0),
                                                       family=family)
    try:
        yield OptionsPinger(transport, waiting, family, via_host or listen_ip, user_agent, tls)
    finally:
        transport.close()


def _source_toward(addr: tuple[str, int], family: int) -> str:
    """Our address toward ``addr`` (for the Via when we listen on every address)."""
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1" if family == socket.AF_INET else "::1"

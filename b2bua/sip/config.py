"""What the SIP engine is started with, and which pjsua account each leg uses. Plain data: importing it does not
load pjsua2."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

SrtpMode = Literal["off", "optional", "mandatory"]
# RFC 4568's mandatory suite first, then its short-tag sibling: what carriers' SBCs offer and accept
DEFAULT_SRTP_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """The TLS listener (``port``) and what it presents and verifies; the same for connections we open."""

    port: int
    cert_file: str
    key_file: str
    ca_file: str = ""
    verify_server: bool = True  # carriers we connect to must verify against ca_file
    verify_client: bool = False  # mutual TLS: connecting carriers must present a certificate that verifies


@dataclass(frozen=True, slots=True)
class TrunkMedia:
    """A trunk as the engine sees it: where its calls go (an outgoing leg finds the trunk's account by its target
    URI) and its SRTP (SDES, RFC 4568)."""

    transport: str  # "udp", "tcp" or "tls": how calls to it go, and how it is expected to send us calls
    host: str = ""  # empty: the trunk only sends us calls
    port: int = 5060
    srtp: SrtpMode = "off"
    srtp_secure_signaling: bool = True  # keys only in SDP over TLS (pjsua's srtp_secure_signaling = 1)
    srtp_suites: tuple[str, ...] = DEFAULT_SRTP_SUITES


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    """Who may open requests (patch 0009): out-of-dialog requests from any other source are refused statelessly,
    before pjsua makes a call, dialog or media transport for them."""

    trusted: tuple[str, ...] = ()  # CIDRs or addresses: the trunks' ACLs and hosts, sip.trusted_sources
    drop: bool = False  # untrusted requests get nothing; False: 403
    pass_invites: bool = False  # INVITEs from anywhere still reach screening (a trunk authenticates by digest)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    listen_ip: str
    listen_port: int
    public_host: str
    rtp_port_start: int
    rtp_port_count: int
    codecs: tuple[str, ...]
    user_agent: str
    poll_ms: int
    log_level: int
    media_threads: int
    media_nice: int = 0
    ptime_ms: int = 20  # packetisation of what we send and the conference bridge's frame
    credentials: tuple[tuple[str, str, str], ...] = ()  # (realm, username, password) for challenges to our INVITEs
    tcp: bool = False  # a TCP listener on listen_port beside UDP
    tls: TlsConfig | None = None  # a TLS listener, if configured
    media_public_address: str = ""  # SDP c=/o= address; empty: the bound RTP address
    trunks: tuple[TrunkMedia, ...] = ()  # their SRTP decides the accounts (AccountPlan)
    edge: EdgeConfig | None = None  # the source filter; None: off (every source's requests reach pjsua)

    @property
    def ipv6(self) -> bool:
        """Whether the node listens, and binds RTP, on IPv6 (one family per node: see ``sip.listen_ip``)."""
        return ":" in self.listen_ip


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One pjsua account. pjsua takes SRTP use per account (and per call only from it), so there is one account
    per (transport, SRTP use) in play."""

    name: str
    transport: str
    srtp: SrtpMode = "off"
    secure_signaling: bool = False  # SRTP only when the INVITE went over TLS: keys never in clear text
    suites: tuple[str, ...] = ()
    inbound: bool = False  # the account pjsua picks for INVITEs arriving over this transport


class AccountPlan:
    """The accounts to open and the one each outgoing leg uses.

    pjsua picks an incoming INVITE's account itself, before any of our code runs: the first account (by
    priority, then creation) bound to the transport it came over (an unbound one, like our UDP account, matches
    any transport). So each listener's *inbound* account comes first, with higher priority; it accepts SRTP offers
    if a trunk on that transport uses SRTP (optional; mandatory when every trunk on it is mandatory) and is plain
    otherwise. An outgoing leg to a trunk uses an account with that trunk's SRTP; every other leg a plain account
    of its transport, so plain calls never offer keys and never carry pjsua's SRTP adapter (patch 0008)."""

    def __init__(self, c: EngineConfig) -> None:
        listeners = (["tls"] if c.tls is not None else []) + (["tcp"] if c.tcp else []) + ["udp"]
        specs = [_inbound(t, c.trunks) for t in listeners]
        self._plain = {t: _plain(t, specs) for t in listeners}
        specs += [s for s in self._plain.values() if s not in specs]
        self._targets: dict[tuple[str, str, int], AccountSpec] = {}
        for tr in c.trunks:
            if not tr.host or tr.transport not in listeners:
                continue
            spec = self._plain[tr.transport] if tr.srtp == "off" else _trunk_spec(tr, specs)
            if spec not in specs:
                specs.append(spec)
            self._targets[(tr.transport, _host_key(tr.host), tr.port)] = spec
        self.accounts = tuple(specs)

    def for_uri(self, uri: str) -> AccountSpec:
        """The account for a leg to ``uri``: its trunk's (matched by transport, host and port), else the plain
        account of the transport the URI asks for (UDP if we have no listener for it)."""
        transport, host, port = target_of(uri)
        found = self._targets.get((transport, host, port))
        return found or self._plain.get(transport) or self._plain["udp"]


def _inbound(transport: str, trunks: tuple[TrunkMedia, ...]) -> AccountSpec:
    here = [t for t in trunks if t.transport == transport]
    srtp = [t for t in here if t.srtp != "off"]
    if not srtp:
        return AccountSpec(transport, transport, inbound=True)
    mode: SrtpMode = "mandatory" if all(t.srtp == "mandatory" for t in here) else "optional"
    return AccountSpec(transport, transport, mode, any(t.srtp_secure_signaling for t in srtp),
                       _union(t.srtp_suites for t in srtp), inbound=True)


def _plain(transport: str, specs: list[AccountSpec]) -> AccountSpec:
    inbound = next(s for s in specs if s.transport == transport)
    return inbound if inbound.srtp == "off" else AccountSpec(f"{transport}-plain", transport)


def _trunk_spec(tr: TrunkMedia, specs: list[AccountSpec]) -> AccountSpec:
    """The trunk's account: an existing one with the same SRTP settings (the inbound one, say), or a new one."""
    for s in specs:
        if (s.transport, s.srtp, s.secure_signaling, s.suites) == (
                tr.transport, tr.srtp, tr.srtp_secure_signaling, tr.srtp_suites):
            return s
    base = f"{tr.transport}-srtp-{tr.srtp}"
    taken = {s.name for s in specs}
    name = next(n for n in (base, *(f"{base}-{i}" for i in range(2, 100))) if n not in taken)
    return AccountSpec(name, tr.transport, tr.srtp, tr.srtp_secure_signaling, tr.srtp_suites)


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """The inbound account answers with any suite one of its trunks uses, in the order first named."""
    out: list[str] = []
    for g in groups:
        out += [x for x in g if x not in out]
    return tuple(out)


_URI = re.compile(r"^\s*<?(sips?):(?:[^@;?>]*@)?(\[[^\]]+\]|[^:;?>]+)(?::(\d+))?([^?>]*)", re.IGNORECASE)


def target_of(uri: str) -> tuple[str, str, int]:
    """(transport, host, port) of a target URI as pjsip reads it: ``sips:`` or ``;transport=tls`` is TLS,
    ``;transport=tcp`` TCP, else UDP; no port is 5061 for TLS, 5060 otherwise."""
    m = _URI.match(uri)
    if m is None:
        return "udp", "", 5060
    scheme, host, port, params = m.groups()
    p = params.lower()
    transport = "tls" if scheme.lower() == "sips" or ";transport=tls" in p else (
        "tcp" if ";transport=tcp" in p else "udp")
    return transport, _host_key(host), int(port) if port else (5061 if transport == "tls" else 5060)


def uri_host(host: str) -> str:
    """``host`` as a SIP URI writes it: an IPv6 address in brackets (RFC 3261 §25.1, RFC 5118)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _host_key(host: str) -> str:
    return host.strip().strip("[]").lower()

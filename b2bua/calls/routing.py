"""Inbound screening (trunk ACL) and routing of a called number to its outbound trunks, in order; pure functions
apart from the trunk health they read (a snapshot swapped whole: safe on the SIP thread without a lock)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from b2bua.calls.trunkhealth import TrunkHealth
from b2bua.ops.settings import RouteSettings, TrunkSettings
from b2bua.sip.types import Target


@dataclass(frozen=True, slots=True)
class Route:
    trunk: str  # the first candidate's
    uri: str
    number: str
    targets: tuple[Target, ...] = ()  # every candidate, in the order to try them


class Router:
    def __init__(self, trunks: list[TrunkSettings], routes: list[RouteSettings],
                 health: TrunkHealth | None = None) -> None:
        self._trunks = {t.name: t for t in trunks}
        self._health = health or TrunkHealth()
        self._acl = [
            (ipaddress.ip_network(net, strict=False), t.name) for t in trunks for net in t.inbound_acl
        ]
        self._routes = [(re.compile(r.pattern), r) for r in routes]

    def trunk_for_source(self, ip: str) -> str | None:
        """The trunk whose ACL admits this source address, or None (untrusted)."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for net, name in self._acl:
            if addr in net:
                return name
        return None

    def route(self, number: str, from_trunk: str | None) -> Route | None:
        for rx, r in self._routes:
            if r.from_trunks and from_trunk not in r.from_trunks:
                continue
            if rx.fullmatch(number):
                out = r.prepend + number[r.strip :]
                targets = self._targets(r.targets, out)
                return Route(targets[0].trunk, targets[0].uri, out, targets)
        return None

    def _targets(self, names: list[str], number: str) -> tuple[Target, ...]:
        """The route's trunks in order, those down left out; if every one is down, all of them in order (a ping
        may be wrong, and a call tried is better than one refused)."""
        trunks = [self._trunks[n] for n in names]
        up = [t for t in trunks if self._health.is_up(t.name)] or trunks
        return tuple(Target(t.name, trunk_uri(number, t), t.failover_timeout_s) for t in up)


def trunk_uri(number: str, t: TrunkSettings) -> str:
    """Where a call to ``number`` over trunk ``t`` goes: pjsip picks the transport from the URI, so TCP is named
    (``;transport=tcp``) and TLS is a ``sips:`` URI (RFC 3261 §19.1: TLS on every hop)."""
    scheme = "sips" if t.transport == "tls" else "sip"
    params = ";transport=tcp" if t.transport == "tcp" else ""
    return f"{scheme}:{number}@{_host(t.host)}:{t.port}{params}"


def _host(h: str) -> str:
    return f"[{h}]" if ":" in h and not h.startswith("[") else h

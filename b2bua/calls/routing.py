"""Inbound screening (trunk ACL) and routing of a called number to an outbound trunk; pure functions."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from b2bua.ops.settings import RouteSettings, TrunkSettings


@dataclass(frozen=True, slots=True)
class Route:
    trunk: str
    uri: str
    number: str


class Router:
    def __init__(self, trunks: list[TrunkSettings], routes: list[RouteSettings]) -> None:
        self._trunks = {t.name: t for t in trunks}
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
                t = self._trunks[r.trunk]
                return Route(t.name, f"sip:{out}@{_host(t.host)}:{t.port}", out)
        return None


def _host(h: str) -> str:
    return f"[{h}]" if ":" in h and not h.startswith("[") else h

"""Which trunk an INVITE comes from: by source address (ACL), by SIP digest credentials, or by both.

A trunk with an ACL and no credentials is trusted by address, as before. A trunk with credentials must answer a
digest challenge; with an ACL as well it must do so from inside the ACL, without one from any address (a PBX or
SBC whose address changes). Nobody else gets a challenge: an unknown source is refused outright unless some trunk
accepts calls from anywhere.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from b2bua.calls.routing import Router
from b2bua.ops.settings import TrunkSettings
from b2bua.sip import digest
from b2bua.sip.types import Headers, Reject


@dataclass(frozen=True, slots=True)
class _Secret:
    trunk: str
    ha1: str


class TrunkAuthenticator:
    def __init__(self, router: Router, trunks: list[TrunkSettings], realm: str, nonce_secret: str = "",
                 nonce_ttl_s: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self._router = router
        self.digest = digest.DigestAuth(realm, nonce_secret.encode() or secrets.token_bytes(32), nonce_ttl_s,
                                        clock=clock)
        self._by_trunk: dict[str, tuple[str, _Secret]] = {}
        self._anywhere: dict[str, _Secret] = {}  # username -> trunk that accepts from any address
        for t in trunks:
            if not t.auth_username:
                continue
            ha1 = t.auth_ha1.lower() or digest.ha1_md5(t.auth_username, realm, t.auth_password.get_secret_value())
            s = _Secret(t.name, ha1)
            self._by_trunk[t.name] = (t.auth_username, s)
            if not t.inbound_acl:
                self._anywhere[t.auth_username] = s

    @property
    def challenges_anyone(self) -> bool:
        return bool(self._anywhere)

    def identify(self, src_ip: str, method: str, request_uri: str, headers: Headers) -> str | Reject:
        """The trunk's name, or the refusal to send (a 401 challenge, or 403)."""
        trunk = self._router.trunk_for_source(src_ip)
        if trunk is not None:
            entry = self._by_trunk.get(trunk)
            if entry is None:
                return trunk  # trusted by address alone
            candidates = {entry[0]: entry[1]}
        elif self._anywhere:
            candidates = self._anywhere
        else:
            return Reject(403, "untrusted-source")
        out = self.digest.check(self._our_credentials(headers), method, request_uri, src_ip,
                                lambda user: s.ha1 if (s := candidates.get(user)) else None)
        match out.verdict:
            case digest.Verdict.OK:
                return candidates[out.username].trunk
            case digest.Verdict.MISSING | digest.Verdict.STALE:
                stale = out.verdict is digest.Verdict.STALE
                return Reject(401, "auth-challenge",
                              (("WWW-Authenticate", self.digest.challenge(src_ip, stale=stale)),),
                              detail=out.why)
            case _:
                return Reject(403, "auth-failed", detail=f"user {out.username!r}: {out.why}")

    def _our_credentials(self, headers: Headers) -> str | None:
        """The Authorization header for our realm (a request may carry several, for proxies on its path)."""
        mine = f'realm="{self.digest.realm}"'
        found = None
        for name, value in headers:
            if name.lower() == "authorization":
                if mine in value:
                    return value
                found = found or value
        return found

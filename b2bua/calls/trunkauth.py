"""Which trunk an INVITE comes from: by source address (ACL), by SIP digest credentials, or by both.

A trunk with an ACL and no credentials is trusted by address, as before. A trunk with credentials must answer a
digest challenge; with an ACL as well it must do so from inside the ACL, without one from any address (a PBX or
SBC whose address changes). Nobody else gets a challenge: an unknown source is refused outright unless some trunk
accepts calls from anywhere.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
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
                 nonce_ttl_s: float = 300.0, clock: Callable[[], float] = time.time, *,
                 max_failures: int = 10, failure_window_s: float = 60.0, block_s: float = 300.0) -> None:
        self._router = router
        self._clock = clock
        self._max_failures = max_failures
        self._window_s = failure_window_s
        self._block_s = block_s
        self._failures: dict[str, deque[float]] = {}  # source -> recent failure times
        self._blocked: dict[str, float] = {}  # source -> until
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
        now = self._clock()
        until = self._blocked.get(src_ip)
        if until is not None:
            if now < until:
                return Reject(403, "auth-blocked", detail=f"{len(self._failures.get(src_ip, ()))} failures; "
                                                          f"blocked for another {until - now:.0f} s")
            del self._blocked[src_ip]
            self._failures.pop(src_ip, None)
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
                blocked = self._failed(src_ip, now)
                note = f"; source blocked for {self._block_s:.0f} s" if blocked else ""
                return Reject(403, "auth-failed", detail=f"user {out.username!r}: {out.why}{note}")

    def _failed(self, src_ip: str, now: float) -> bool:
        """Password guessing: a source with too many failures in the window is refused unheard for a while."""
        recent = self._failures.setdefault(src_ip, deque())
        recent.append(now)
        while recent and now - recent[0] > self._window_s:
            recent.popleft()
        if len(self._failures) > 10_000:  # bounded: forget the sources with the oldest latest failure
            for ip in sorted(self._failures, key=lambda k: self._failures[k][-1])[:1000]:
                if ip not in self._blocked and ip != src_ip:
                    del self._failures[ip]
        if len(recent) >= self._max_failures:
            self._blocked[src_ip] = now + self._block_s
            return True
        return False

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

"""SIP digest authentication of inbound requests (RFC 3261 §22.4, RFC 2617 with qop=auth).

Nonces are stateless: a timestamp and the source address signed with a secret. Any node that shares the secret
can therefore check a challenge another node issued. Replays are refused: each (nonce, cnonce) must count its
nc upwards, remembered for the nonce's lifetime.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')
_NONCE_BYTES = 8 + 16  # big-endian ms timestamp + truncated HMAC-SHA256


def ha1_md5(username: str, realm: str, password: str) -> str:
    """What a trunk's ``auth_ha1`` holds, so that the password itself need not be stored in the config."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def parse_params(value: str) -> dict[str, str] | None:
    """The parameters of a ``Digest`` credential, or None if it is not a well-formed Digest header value."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    out: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            return None
        quoted = m.group(2)
        out[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else m.group(3)
        pos = m.end()
    return out


def _same_resource(uri: str, request_uri: str) -> bool:
    """The Request-URI itself (RFC 2617 §3.2.2.5), or the host it addresses without the user part, which is what
    SIPp sends by default (sip:remote_ip:remote_port)."""
    if uri == request_uri:
        return True
    scheme, _, rest = request_uri.partition(":")
    host = rest.rpartition("@")[2].split(";", 1)[0]
    return bool(host) and uri == f"{scheme}:{host}"


class Verdict(Enum):
    OK = "ok"
    MISSING = "missing"  # no usable credentials: challenge
    STALE = "stale"  # a good response to a nonce that has expired: challenge again with stale=true
    FAILED = "failed"  # wrong password, unknown user, replay, foreign nonce, mismatched URI


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    username: str = ""
    why: str = ""


class DigestAuth:
    """Issues challenges and checks answers to them. Runs in one thread (the SIP thread); not thread-safe."""

    def __init__(self, realm: str, secret: bytes, nonce_ttl_s: float = 300.0, *,
                 clock: Callable[[], float] = time.time, max_tracked: int = 100_000) -> None:
        self.realm = realm
        self._secret = secret
        self._ttl_ms = int(nonce_ttl_s * 1000)
        self._clock = clock
        self._max_tracked = max_tracked
        self._last_nc: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()  # -> (nc, issued ms)
        self._floor_ms = -1  # nonces issued up to here are treated as expired: their nc history was dropped

    def challenge(self, source: str, *, stale: bool = False) -> str:
        """A ``WWW-Authenticate`` value for a request from ``source`` (its IP address)."""
        nonce = self._nonce(int(self._clock() * 1000), source)
        value = f'Digest realm="{self.realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'
        return value + (", stale=true" if stale else "")

    def check(self, authorization: str | None, method: str, request_uri: str, source: str,
              ha1_for: Callable[[str], str | None]) -> Outcome:
        """``ha1_for(username)`` gives the user's HA1 (hex MD5 of user:realm:password), None if unknown."""
        if not authorization:
            return Outcome(Verdict.MISSING)
        p = parse_params(authorization)
        if p is None:
            return Outcome(Verdict.FAILED, why="not a Digest credential")
        user = p.get("username", "")
        if p.get("realm") != self.realm:
            return Outcome(Verdict.MISSING, user, "credentials for another realm")
        if p.get("algorithm", "MD5").upper() != "MD5":
            return Outcome(Verdict.FAILED, user, f"algorithm {p.get('algorithm')!r} not offered")
        if p.get("qop") != "auth":
            return Outcome(Verdict.FAILED, user, "qop=auth is required")
        if not (user and p.get("nonce") and p.get("response") and p.get("cnonce") and p.get("uri")):
            return Outcome(Verdict.FAILED, user, "missing parameter")
        if not _same_resource(p["uri"], request_uri):
            return Outcome(Verdict.FAILED, user, "digest uri names neither the Request-URI nor its host")
        try:
            nc = int(p.get("nc", ""), 16)
        except ValueError:
            return Outcome(Verdict.FAILED, user, "bad nc")
        issued = self._issued_ms(p["nonce"], source)
        if issued is None:
            return Outcome(Verdict.FAILED, user, "nonce not ours or not for this source")
        ha1 = ha1_for(user)
        if ha1 is None:
            return Outcome(Verdict.FAILED, user, "unknown username")
        ha2 = hashlib.md5(f"{method}:{p['uri']}".encode()).hexdigest()
        want = hashlib.md5(f"{ha1}:{p['nonce']}:{p.get('nc')}:{p['cnonce']}:auth:{ha2}".encode()).hexdigest()
        if not hmac.compare_digest(want, p["response"].lower()):
            return Outcome(Verdict.FAILED, user, "wrong response (password)")
        now_ms = int(self._clock() * 1000)
        if now_ms - issued > self._ttl_ms or issued <= self._floor_ms:
            return Outcome(Verdict.STALE, user, "nonce expired")
        key = (p["nonce"], p["cnonce"])
        last = self._last_nc.get(key)
        if last is not None and nc <= last[0]:
            return Outcome(Verdict.FAILED, user, "replayed (nonce count did not increase)")
        self._remember(key, nc, issued, now_ms)
        return Outcome(Verdict.OK, user)

    # ------------------------------------------------------------------------------------------ nonces
    def _mac(self, issued_ms: int, source: str) -> bytes:
        return hmac.new(self._secret, struct.pack(">Q", issued_ms) + source.encode(), hashlib.sha256).digest()[:16]

    def _nonce(self, issued_ms: int, source: str) -> str:
        raw = struct.pack(">Q", issued_ms) + self._mac(issued_ms, source)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _issued_ms(self, nonce: str, source: str) -> int | None:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != _NONCE_BYTES:
            return None
        (issued,) = struct.unpack(">Q", raw[:8])
        if not hmac.compare_digest(raw[8:], self._mac(issued, source)):
            return None
        return int(issued)

    def _remember(self, key: tuple[str, str], nc: int, issued_ms: int, now_ms: int) -> None:
        self._last_nc[key] = (nc, issued_ms)
        self._last_nc.move_to_end(key)
        # forget nonces past their lifetime (they are refused as stale anyway), and cap the table
        while self._last_nc:
            old_key, (_, old_issued) = next(iter(self._last_nc.items()))
            if now_ms - old_issued <= self._ttl_ms and len(self._last_nc) <= self._max_tracked:
                break
            del self._last_nc[old_key]
            self._floor_ms = max(self._floor_ms, old_issued)

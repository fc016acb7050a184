"""Token guessing on the API: each source (client address) may fail authentication ``max_failures`` times within
a minute; then it gets 429 for ``block_s`` seconds, whatever token it sends (answering a right token then would
tell the guesser it found one). Other sources are unaffected, so the admin is never locked out from elsewhere.

The client address is the socket peer, unless the peer is a trusted reverse proxy: then the nearest address in
``X-Forwarded-For`` that is not a trusted proxy itself (anything further left could be made up by the client).

The operator sees, per source: the first failed authentication, one line when the source is blocked, and once a
minute a summary counting what was left out (failures, refused requests); the log never grows with the flood.
Metrics: ``b2bua_api_auth_failures_total{reason}`` (missing-token, invalid-token, blocked) and
``b2bua_api_auth_blocked_sources``. Summaries are written by the next request after the minute.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable
from typing import Literal

from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.ops.ratelimited_log import RateLimitedLog
from b2bua.ops.throttle import FailureThrottle
from b2bua.telecommuter.errors import Refused

Reason = Literal["missing-token", "invalid-token"]
WINDOW_S = 60.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AuthGuard:
    def __init__(self, max_failures: int, block_s: float, trusted_proxies: Iterable[str] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.throttle = FailureThrottle(max_failures, WINDOW_S, block_s, clock=clock)
        self._proxies: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)
        self._log = get_logger("api")
        self._lines = RateLimitedLog(self._log, lines=1, interval_s=WINDOW_S, clock=clock)

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The address a request comes from (see the module docstring)."""
        if peer is None:
            return "unknown"
        if not forwarded_for or not self._trusted(peer):
            return peer
        client = peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            try:
                client = str(ipaddress.ip_address(hop))
            except ValueError:
                break  # garbage: believe no further
            if not self._trusted(client):
                break
        return client

    def refuse_if_blocked(self, source: str, metrics: Metrics) -> None:
        """Before any token is looked at: a blocked source gets 429 with how long it has left."""
        left = self.throttle.blocked_for(source)
        self._lines.flush()
        metrics.api_auth_blocked_sources.set(self.throttle.blocked)
        if left <= 0:
            return
        metrics.api_auth_failures.labels("blocked").inc()
        self._note(self._lines.log("warning", (source, "blocked"), "api request refused: source blocked",
                                   src=source, retry_after_s=math.ceil(left)), metrics)
        raise Refused(429, "auth-blocked", "too many failed authentications from this address; try again later",
                      retry_after=max(1, math.ceil(left)))

    def failed(self, source: str, reason: Reason, path: str, metrics: Metrics) -> None:
        """Count one failed authentication; the one that reaches the limit blocks the source."""
        metrics.api_auth_failures.labels(reason).inc()
        if self.throttle.failed(source):
            # the first line of the block's key: the refusals that follow it are summarised once a minute
            self._note(self._lines.log("warning", (source, "blocked"), "api source blocked: too many failed "
                                       "authentications", src=source, failures=self.throttle.max_failures,
                                       window_s=WINDOW_S, blocked_s=self.throttle.block_s), metrics)
        else:
            self._note(self._lines.log("warning", (source, "failed"), "api authentication failed", src=source,
                                       reason=reason, path=path), metrics)
        metrics.api_auth_blocked_sources.set(self.throttle.blocked)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._proxies)

    @staticmethod
    def _note(written: bool, metrics: Metrics) -> None:
        if not written:
            metrics.log_lines_suppressed.labels("api-auth").inc()

"""The API's limits on abuse, one set per running API: token guessing per source, and open event streams."""

from __future__ import annotations

from dataclasses import dataclass

from b2bua.api.authguard import AuthGuard
from b2bua.api.streamslots import StreamSlots
from b2bua.ops.settings import HttpSettings


@dataclass(frozen=True)
class ApiLimits:
    auth: AuthGuard
    streams: StreamSlots

    @classmethod
    def from_settings(cls, http: HttpSettings | None = None) -> ApiLimits:
        """The configured limits (the defaults without ``http``)."""
        http = http or HttpSettings()
        return cls(AuthGuard(http.auth_max_failures, http.auth_block_s, http.trusted_proxies),
                   StreamSlots(http.max_event_streams_per_user, http.max_event_streams))

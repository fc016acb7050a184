"""ApiLimits: built from the [http] settings, and never absent (an ApiContext made without them has defaults)."""

from __future__ import annotations

from b2bua.api.context import ApiContext
from b2bua.api.limits import ApiLimits
from b2bua.ops.settings import HttpSettings
from tests.support.inprocess import ADMIN, InProcess
from tests.unit.api.conftest import health


def test_limits_come_from_the_http_settings() -> None:
    limits = ApiLimits.from_settings(HttpSettings(max_event_streams_per_user=2, max_event_streams=7,
                                                  auth_max_failures=4, auth_block_s=9,
                                                  trusted_proxies=["10.0.0.0/8"]))
    assert (limits.streams.per_user, limits.streams.total) == (2, 7)
    assert (limits.auth.throttle.max_failures, limits.auth.throttle.block_s) == (4, 9)
    assert limits.auth.client("10.9.9.9", "192.0.2.1") == "192.0.2.1"


async def test_a_context_without_limits_gets_the_defaults_not_none(t: InProcess) -> None:
    ctx = ApiContext(ADMIN, t.domain, t.runner, t.node.metrics, health)
    assert (ctx.limits.streams.per_user, ctx.limits.streams.total) == (8, 500)
    assert ctx.limits.auth.throttle.max_failures == 20
    assert ctx.limits.auth.client("10.9.9.9", "192.0.2.1") == "10.9.9.9", "no proxy is trusted by default"
    other = ApiContext(ADMIN, t.domain, t.runner, t.node.metrics, health)
    assert other.limits is not ctx.limits, "each API has limits of its own"

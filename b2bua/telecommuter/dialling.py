"""The dialling rules applied before anything is dialled: which numbers a user may reach (class of service),
how fast, and what counts as a public number or an extension. Every refusal is counted and logged by rule."""

from __future__ import annotations

import time
from collections.abc import Callable

from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.telecommuter.dialplan import ClassOfService, Dialplan, Number, RateLimiter, Refusal
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.users import User


class DiallingRules:
    def __init__(self, dialplan: Dialplan, classes: dict[str, ClassOfService], metrics: Metrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.dialplan = dialplan
        self.classes = classes
        self.metrics = metrics
        self.clock = clock
        self.limiter = RateLimiter()
        self._log = get_logger("telecommuter")

    def require_class(self, name: str) -> str:
        if name not in self.classes:
            raise Refused(422, "unknown-class-of-service", f"no class of service {name!r}")
        return name

    def check_target(self, user: User, target: str) -> Number:
        """A number this user wants to reach (or to be reached at): 403 naming the rule, 422 if not a number."""
        res = self.dialplan.check(target, self.classes[user.class_of_service])
        if isinstance(res, Refusal):
            status = 422 if res.rule == "invalid-number" else 403
            raise self.refuse(user, Refused(status, res.rule, res.message))
        return res

    def check_limits(self, user: User, concurrent_callbacks: int | None = None) -> None:
        """Concurrent callback calls (when counted) and call attempts per minute, both 429 naming the limit."""
        cos = self.classes[user.class_of_service]
        if concurrent_callbacks is not None and concurrent_callbacks >= cos.max_concurrent_calls:
            raise self.refuse(user, Refused(429, "concurrent-limit",
                                            f"at most {cos.max_concurrent_calls} callback calls at once"))
        if not self.limiter.allow(user.id, cos.max_calls_per_minute, self.clock()):
            raise self.refuse(user, Refused(429, "rate-limit", f"at most {cos.max_calls_per_minute} calls a minute"))

    def transit_refusal(self, class_of_service: str, called: str) -> tuple[str, str] | None:
        """For trunk calls routed out again: the trunk's class of service applies (None: allowed)."""
        res = self.dialplan.check(called, self.classes[class_of_service])
        return (res.rule, res.message) if isinstance(res, Refusal) else None

    def public_number(self, number: str, field_name: str) -> str:
        n = self.dialplan.classify(number)
        if isinstance(n, Refusal) or n.category in ("internal", "emergency"):
            raise Refused(422, "invalid-number", f"{field_name}: {number!r} is not a public phone number")
        return n.normalised

    def extension(self, extension: str, what: str = "extension") -> str:
        n = self.dialplan.classify(extension)
        if not isinstance(n, Number) or n.category != "internal":
            raise Refused(422, "invalid-extension", f"{what} {extension!r} does not match the internal pattern")
        return n.normalised

    def caller_number(self, from_user: str) -> str:
        """A caller's number as we show it (E.164 where it parses, else as sent)."""
        n = self.dialplan.classify(from_user)
        return n.normalised if isinstance(n, Number) else from_user

    def refuse(self, user: User, refused: Refused) -> Refused:
        self.metrics.dialling_refused.labels(refused.rule.split(":")[0], refused.rule).inc()
        self._log.warning("call refused", user_id=user.id, rule=refused.rule, reason=refused.message,
                          status=refused.status)
        return refused

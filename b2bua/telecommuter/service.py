"""The telecommuter application: users, modes, callback calls and test calls, with the dialling rules applied
before anything is dialled. No pjsua2: calls run through CallControl's state-machine runner."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from b2bua.callcontrol import ActiveCall, AdmissionGate, CallControl
from b2bua.calls.callback import CallbackCall, CallbackPlan
from b2bua.calls.routing import Router
from b2bua.calls.testcall import TestCall
from b2bua.ops import logging as blog
from b2bua.ops.metrics import Metrics
from b2bua.ops.settings import TelecommuterSettings
from b2bua.telecommuter.dialplan import ClassOfService, Dialplan, Number, RateLimiter, Refusal
from b2bua.telecommuter.users import Mode, User, UserRepository, new_token


class Refused(Exception):
    """A request the rules turn down; ``status`` is the HTTP status, ``rule`` says which rule."""

    def __init__(self, status: int, rule: str, message: str) -> None:
        super().__init__(message)
        self.status, self.rule, self.message = status, rule, message


@dataclass(frozen=True, slots=True)
class Presentation:
    host: str
    callback_number: str  # "" = the user's business number

    def toward_user(self, user: User, target: str) -> str:
        number = self.callback_number or user.business_number
        return f'"{target}" <sip:{number}@{self.host}>'

    def toward_target(self, user: User) -> tuple[str, tuple[tuple[str, str], ...]]:
        pai = ("P-Asserted-Identity", f'"{user.name}" <sip:{user.business_number}@{self.host}>')
        if user.privacy:
            return '"Anonymous" <sip:anonymous@anonymous.invalid>', (pai, ("Privacy", "id"))
        return f'"{user.name}" <sip:{user.business_number}@{self.host}>', (pai,)


class TelecommuterService:
    def __init__(
        self,
        settings: TelecommuterSettings,
        classes: dict[str, ClassOfService],
        users: UserRepository,
        calls: CallControl,
        gate: AdmissionGate,
        router: Router,
        metrics: Metrics,
        presentation: Presentation,
        target_answer_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = settings
        self.classes = classes
        self.users = users
        self.calls = calls
        self.gate = gate
        self.router = router
        self.metrics = metrics
        self.presentation = presentation
        self.target_answer_timeout_s = target_answer_timeout_s
        self.dialplan = Dialplan(settings.home_country, settings.internal_pattern)
        self.limiter = RateLimiter()
        self.clock = clock
        self.log = blog.get("telecommuter")

    # ------------------------------------------------------------------------------------------ users
    def create_user(self, *, name: str, extension: str, business_number: str, class_of_service: str | None = None,
                    confirm_digit: str = "", privacy: bool = False, telecommuter_number: str = "") -> tuple[User, str]:
        cos = class_of_service or self.cfg.default_class_of_service
        if cos not in self.classes:
            raise Refused(422, "unknown-class-of-service", f"no class of service {cos!r}")
        business = self._public_number(business_number, "business_number")
        n = self.dialplan.classify(extension)
        if not isinstance(n, Number) or n.category != "internal":
            raise Refused(422, "invalid-extension", f"extension {extension!r} does not match the internal pattern")
        user = User(id=uuid.uuid4().hex[:12], name=name, extension=n.normalised, business_number=business,
                    telecommuter_number="", mode=Mode.OFF, class_of_service=cos, confirm_digit=confirm_digit,
                    privacy=privacy, created_at=time.time())
        if telecommuter_number:
            user = replace(user, telecommuter_number=self._allowed_number(user, telecommuter_number).normalised)
        token, token_hash = new_token()
        try:
            self.users.add_user(user, token_hash)
        except sqlite3.IntegrityError as e:
            raise Refused(409, "conflict", f"extension or business number already in use ({e})") from None
        self.log.info("user created", user_id=user.id, extension=user.extension, cos=cos)
        return user, token

    def update_user(self, user: User, **fields: Any) -> User:
        if "class_of_service" in fields and fields["class_of_service"] not in self.classes:
            raise Refused(422, "unknown-class-of-service", f"no class of service {fields['class_of_service']!r}")
        if "business_number" in fields:
            fields["business_number"] = self._public_number(fields["business_number"], "business_number")
        if "extension" in fields:
            n = self.dialplan.classify(fields["extension"])
            if not isinstance(n, Number) or n.category != "internal":
                raise Refused(422, "invalid-extension", f"extension {fields['extension']!r} is not internal")
        try:
            updated = self.users.update_user(user.id, **fields)
        except sqlite3.IntegrityError as e:
            raise Refused(409, "conflict", f"extension or business number already in use ({e})") from None
        assert updated is not None
        return updated

    def rotate_token(self, user: User) -> str:
        token, token_hash = new_token()
        self.users.set_token_hash(user.id, token_hash)
        return token

    def delete_user(self, user: User) -> None:
        for call in self.calls.calls_of(user.id):
            self.calls.terminate(call.id, "user deleted")
        self.users.delete_user(user.id)

    # ------------------------------------------------------------------------------------------ modes
    def set_telecommuter(self, user: User, mode: Mode, number: str | None, test_call: bool) -> tuple[User, str | None]:
        if mode is Mode.KEEP_CONNECTED:
            raise Refused(422, "mode-unavailable", "keep-connected mode is not available yet; use on-demand")
        fields: dict[str, Any] = {"mode": mode}
        if number:
            fields["telecommuter_number"] = self._allowed_number(user, number).normalised
        effective = fields.get("telecommuter_number", user.telecommuter_number)
        if mode is not Mode.OFF and not effective:
            raise Refused(422, "number-required", "a telecommuter number is needed to turn telecommuter mode on")
        updated = self.users.update_user(user.id, **fields)
        assert updated is not None
        self.log.info("telecommuter mode", user_id=user.id, mode=mode.value, number=updated.telecommuter_number)
        test_id = None
        if test_call and mode is not Mode.OFF:
            test_id = self.start_test_call(updated).id
        return updated, test_id

    def start_test_call(self, user: User) -> ActiveCall:
        route = self.router.route(user.telecommuter_number, None)
        if route is None:
            raise Refused(503, "no-route", f"no route to {user.telecommuter_number}")
        if not self.gate.try_admit():
            raise Refused(503, "over-capacity", "the B2BUA is at its call ceiling; try again shortly")
        number = self.presentation.callback_number or user.business_number
        machine = TestCall(route.uri, f'"Test call" <sip:{number}@{self.presentation.host}>',
                           user.telecommuter_number, self.cfg.user_answer_timeout_s, self.cfg.test_call_confirmation_s)
        return self.calls.start_machine("test", machine, user_id=user.id,
                                        info={"user_number": user.telecommuter_number})

    def record_test_result(self, user_id: str, result: str) -> None:
        self.users.update_user(user_id, last_test_result=result, last_test_at=time.time())

    # ------------------------------------------------------------------------------------------ callbacks
    def start_callback(self, user: User, target: str) -> ActiveCall:
        if user.mode is not Mode.ON_DEMAND or not user.telecommuter_number:
            raise Refused(409, "telecommuter-mode-off", "turn telecommuter mode on (on-demand) with a number first")
        cos = self.classes[user.class_of_service]
        number = self.check_target(user, target)
        if len(self.calls.calls_of(user.id, "callback")) >= cos.max_concurrent_calls:
            raise self._refuse(user, Refused(429, "concurrent-limit",
                                             f"at most {cos.max_concurrent_calls} callback calls at once"))
        if not self.limiter.allow(user.id, cos.max_calls_per_minute, self.clock()):
            raise self._refuse(user, Refused(429, "rate-limit", f"at most {cos.max_calls_per_minute} calls a minute"))
        user_route = self.router.route(user.telecommuter_number, None)
        target_route = self.router.route(number.normalised, None)
        if user_route is None or target_route is None:
            missing = user.telecommuter_number if user_route is None else number.normalised
            raise self._refuse(user, Refused(503, "no-route", f"no route to {missing}"))
        if not self.gate.try_admit():
            raise self._refuse(user, Refused(503, "over-capacity", "at the call ceiling; try again shortly"))
        target_from, target_headers = self.presentation.toward_target(user)
        plan = CallbackPlan(
            user_uri=user_route.uri, user_from=self.presentation.toward_user(user, number.normalised),
            target_uri=target_route.uri, target_from=target_from, target_number=number.normalised,
            target_headers=target_headers, confirm_digit=user.confirm_digit,
            user_answer_timeout_s=self.cfg.user_answer_timeout_s, confirm_timeout_s=self.cfg.confirm_timeout_s,
            target_answer_timeout_s=self.target_answer_timeout_s, failure_tone_s=self.cfg.failure_tone_s,
        )
        return self.calls.start_machine("callback", CallbackCall(plan), user_id=user.id, info={
            "target": number.normalised, "target_category": number.category, "dialled": target,
            "user_number": user.telecommuter_number})

    def check_target(self, user: User, target: str) -> Number:
        """The dialling rules for a number this user wants to reach (raises Refused: 403 naming the rule)."""
        res = self.dialplan.check(target, self.classes[user.class_of_service])
        if isinstance(res, Refusal):
            status = 422 if res.rule == "invalid-number" else 403
            raise self._refuse(user, Refused(status, res.rule, res.message))
        return res

    def transit_refusal(self, cos_name: str, called: str) -> tuple[str, str] | None:
        """For trunk calls routed out again: the trunk's class of service applies (None: allowed)."""
        res = self.dialplan.check(called, self.classes[cos_name])
        return (res.rule, res.message) if isinstance(res, Refusal) else None

    # ------------------------------------------------------------------------------------------ helpers
    def _refuse(self, user: User, r: Refused) -> Refused:
        self.metrics.dialling_refused.labels(r.rule.split(":")[0], r.rule).inc()
        self.log.warning("call refused", user_id=user.id, rule=r.rule, reason=r.message, status=r.status)
        return r

    def _allowed_number(self, user: User, number: str) -> Number:
        """The telecommuter number gets the same rules as a target: a premium number is not a home office."""
        return self.check_target(user, number)

    def _public_number(self, number: str, field_name: str) -> str:
        n = self.dialplan.classify(number)
        if isinstance(n, Refusal) or n.category in ("internal", "emergency"):
            raise Refused(422, "invalid-number", f"{field_name}: {number!r} is not a public phone number")
        return n.normalised

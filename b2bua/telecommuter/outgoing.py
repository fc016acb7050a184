"""Calls the product places for a user on request: callbacks (the user's phone first, then the target, bridged
under the business number) and the activation test call. The dialling rules and admission come first: nothing
is dialled that the user's class of service refuses or that the node has no room for."""

from __future__ import annotations

import contextlib

from b2bua.calls.callback import CallbackCall, CallbackPlan
from b2bua.calls.machine import CallKind
from b2bua.calls.routing import Router
from b2bua.calls.testcall import TestCall
from b2bua.control.active import ActiveCall
from b2bua.control.admission import AdmissionGate
from b2bua.control.runner import CallRunner
from b2bua.ops.settings import TelecommuterSettings
from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.errors import Refused, Reservation
from b2bua.telecommuter.presentation import Presentation
from b2bua.telecommuter.users import Mode, User


class OutgoingCalls:
    def __init__(self, runner: CallRunner, gate: AdmissionGate, router: Router, rules: DiallingRules,
                 presentation: Presentation, settings: TelecommuterSettings, *,
                 target_answer_timeout_s: float) -> None:
        self.runner = runner
        self.gate = gate
        self.router = router
        self.rules = rules
        self.presentation = presentation
        self.cfg = settings
        self.target_answer_timeout_s = target_answer_timeout_s

    def start_callback(self, user: User, target: str) -> ActiveCall:
        if user.mode is not Mode.ON_DEMAND or not user.telecommuter_number:
            raise Refused(409, "telecommuter-mode-off", "turn telecommuter mode on (on-demand) with a number first")
        number = self.rules.check_target(user, target)
        self.rules.check_limits(user, concurrent_callbacks=len(self.runner.calls_of(user.id, CallKind.CALLBACK)))
        user_route = self.router.route(user.telecommuter_number, None)
        target_route = self.router.route(number.normalised, None)
        if user_route is None or target_route is None:
            missing = user.telecommuter_number if user_route is None else number.normalised
            raise self.rules.refuse(user, Refused(503, "no-route", f"no route to {missing}"))
        try:
            reservation = Reservation(self.gate)
        except Refused as e:
            raise self.rules.refuse(user, e) from None
        target_from, target_headers = self.presentation.toward_target(user)
        plan = CallbackPlan(
            user_uri=user_route.uri, user_from=self.presentation.toward_user(user, number.normalised),
            target_uri=target_route.uri, target_from=target_from, target_number=number.normalised,
            target_headers=target_headers, confirm_digit=user.confirm_digit,
            user_answer_timeout_s=self.cfg.user_answer_timeout_s, confirm_timeout_s=self.cfg.confirm_timeout_s,
            target_answer_timeout_s=self.target_answer_timeout_s, failure_tone_s=self.cfg.failure_tone_s,
        )
        info = {"target": number.normalised, "target_category": number.category, "dialled": target,
                "user_number": user.telecommuter_number}
        with reservation:
            call = self.runner.start(CallKind.CALLBACK, CallbackCall(plan), user_id=user.id, info=info,
                                     log_context={"user_id": user.id})
            reservation.hand_over()
        call.log.info("call start", **info)
        return call

    def start_test_call(self, user: User, reservation: Reservation | None = None) -> ActiveCall:
        """Ring the telecommuter number and ask for a key press: proves the number reaches the user.
        ``reservation``: an admission taken earlier, which the test call takes over (or gives back)."""
        with contextlib.ExitStack() as stack:
            if reservation is not None:
                stack.enter_context(reservation)
            route = self.router.route(user.telecommuter_number, None)
            if route is None:
                raise Refused(503, "no-route", f"no route to {user.telecommuter_number}")
            held = reservation or stack.enter_context(Reservation(self.gate))
            machine = TestCall(route.uri, self.presentation.test_call_from(user), user.telecommuter_number,
                               self.cfg.user_answer_timeout_s, self.cfg.test_call_confirmation_s)
            info = {"user_number": user.telecommuter_number}
            call = self.runner.start(CallKind.TEST, machine, user_id=user.id, info=info,
                                     log_context={"user_id": user.id})
            held.hand_over()
        call.log.info("call start", **info)
        return call

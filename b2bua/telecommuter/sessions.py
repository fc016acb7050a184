"""Keep-connected sessions: one persistent-leg machine per user, started when the mode is turned on (and at
start-up for users already in it), fed by the API, the keypad and incoming calls."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

from b2bua.calls.keepconnected import Dial, KeepConnectedSession, Offer, SessionPlan, UserAction
from b2bua.calls.machine import CallKind
from b2bua.calls.routing import Router
from b2bua.control.active import ActiveCall
from b2bua.control.admission import AdmissionGate
from b2bua.control.interfaces import Attach
from b2bua.control.runner import CallRunner
from b2bua.media.sounds import MUSIC, write_notes
from b2bua.ops.logging import get_logger
from b2bua.ops.settings import KeepConnectedSettings, TelecommuterSettings
from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.errors import Refused, Reservation
from b2bua.telecommuter.presentation import Presentation
from b2bua.telecommuter.users import Mode, User, UserRepository

RESUME_ATTEMPTS = 600  # x 50 ms: how long one user's resumption may wait for the call-rate limit at start-up


class Sessions:
    def __init__(self, runner: CallRunner, gate: AdmissionGate, router: Router, rules: DiallingRules,
                 presentation: Presentation, repository: UserRepository, settings: KeepConnectedSettings,
                 telecommuter: TelecommuterSettings, *, target_answer_timeout_s: float, media_dir: Path) -> None:
        self.runner = runner
        self.gate = gate
        self.router = router
        self.rules = rules
        self.presentation = presentation
        self.repository = repository
        self.cfg = settings
        self.telecommuter = telecommuter
        self.target_answer_timeout_s = target_answer_timeout_s
        if settings.music_wav:
            self.music = settings.music_wav
        else:
            path = media_dir / "music-on-hold.wav"
            write_notes(path, MUSIC, level=0.3)
            self.music = str(path)
        self._ids = itertools.count(1)
        self._log = get_logger("telecommuter")

    def of(self, user_id: str) -> ActiveCall | None:
        """The user's session, unless it is ending: a stopped session stays in the runner until its legs are
        gone, and a new one (a changed number) must not be mistaken for it meanwhile."""
        found = [c for c in self.runner.calls_of(user_id, CallKind.SESSION) if not self.machine(c).ending]
        return found[0] if found else None

    def require(self, user: User) -> ActiveCall:
        call = self.of(user.id)
        if call is None:
            raise Refused(409, "no-session", "keep-connected mode is not on")
        return call

    @staticmethod
    def machine(call: ActiveCall) -> KeepConnectedSession:
        m = call.machine
        assert isinstance(m, KeepConnectedSession), "a session call runs a KeepConnectedSession"
        return m

    def start(self, user: User, reservation: Reservation | None = None) -> ActiveCall:
        """The user's session (started now if there is none); ``reservation``: an admission taken earlier, which
        the new session takes over (or which is given back if none is needed)."""
        with contextlib.ExitStack() as stack:
            if reservation is not None:
                stack.enter_context(reservation)
            existing = self.of(user.id)
            if existing is not None:
                return existing
            route = self.router.route(user.telecommuter_number, None)
            if route is None:
                raise Refused(503, "no-route", f"no route to {user.telecommuter_number}")
            held = reservation or stack.enter_context(Reservation(self.gate))
            call = self.runner.start(CallKind.SESSION, KeepConnectedSession(self._plan(user, route.uri)),
                                     user_id=user.id, info={"user_number": user.telecommuter_number},
                                     log_context={"user_id": user.id})
            held.hand_over()
        call.log.info("call start", user_number=user.telecommuter_number)
        return call

    def _plan(self, user: User, line_uri: str) -> SessionPlan:
        c, t = self.cfg, self.telecommuter
        return SessionPlan(
            line_uri=line_uri, line_from=self.presentation.line_from(user),
            number=user.telecommuter_number, confirm_digit=user.confirm_digit,
            line_answer_timeout_s=t.user_answer_timeout_s, confirm_timeout_s=t.confirm_timeout_s,
            target_answer_timeout_s=self.target_answer_timeout_s, reconnect_timeout_s=c.reconnect_timeout_s,
            redial_on_drop=c.redial_on_drop, redial_interval_s=c.redial_interval_s, park_slots=c.park_slots,
            park_timeout_s=c.park_timeout_s, auto_answer=c.auto_answer, offer_timeout_s=c.offer_timeout_s,
            call_waiting=user.call_waiting, music=self.music, keypad=dict(c.keypad),
            fallback_code=c.fallback_code, rtp_timeout_s=c.rtp_timeout_s,
        )

    def stop(self, user_id: str, cause: str) -> None:
        call = self.of(user_id)
        if call is not None:
            self.runner.terminate(call.id, cause)

    async def resume_all(self) -> int:
        """At start-up: users left in keep-connected mode get their line back, paced by the call-rate limit so
        that a restart with many sessions neither floods the trunk nor is refused by its own admission."""
        n = 0
        for user in self.repository.list_users():
            if user.mode is Mode.KEEP_CONNECTED and user.telecommuter_number and await self._resume(user):
                n += 1
        return n

    async def _resume(self, user: User) -> bool:
        for _ in range(RESUME_ATTEMPTS):
            try:
                self.start(user)
                return True
            except Refused as e:
                if e.rule != "over-rate":
                    self._log.warning("session not resumed", user_id=user.id, error=str(e))
                    return False
                await asyncio.sleep(0.05)
            except Exception as e:  # one unreachable user must not stop the others
                self._log.warning("session not resumed", user_id=user.id, error=str(e))
                return False
        self._log.warning("session not resumed", user_id=user.id, error="call rate limit")
        return False

    # ------------------------------------------------------------------------------------------ calls
    def offer(self, user: User, leg_id: str, details: dict[str, Any]) -> Attach | None:
        """An incoming call rides the session if it can take one more; None: the normal fallback applies."""
        call = self.of(user.id) or self.start(user)
        session = self.machine(call)
        if not session.can_offer():
            return None
        role = f"in-{leg_id}"
        offer = Offer(role, details)
        return Attach(call.id, role, lambda now: session.handle(offer, now))

    def dial(self, user: User, target: str) -> dict[str, Any]:
        call = self.require(user)
        number = self.rules.check_target(user, target)
        self.rules.check_limits(user)
        route = self.router.route(number.normalised, None)
        if route is None:
            raise Refused(503, "no-route", f"no route to {number.normalised}")
        from_uri, headers = self.presentation.toward_target(user)
        role = f"out-{next(self._ids)}"
        session = self.machine(call)
        dial = Dial(role, route.uri, from_uri, number.normalised, headers)
        with Reservation(self.gate) as held:
            self.runner.drive(call.id, lambda now: session.handle(dial, now), admitted_role=role)
            held.hand_over()  # the runner owns it now (and gave it back already if the session was gone)
        self._refused_if_error(call, role)
        return {"call": role, "number": number.normalised, "session": self.view(call)}

    def action(self, user: User, name: str, call_role: str = "", slot: int = 0) -> dict[str, Any]:
        call = self.require(user)
        session = self.machine(call)
        action = UserAction(name, call_role, slot)
        self.runner.drive(call.id, lambda now: session.handle(action, now))
        self._refused_if_error(call, "")
        return self.view(call)

    def _refused_if_error(self, call: ActiveCall, role: str) -> None:
        err = self.machine(call).last_error
        if not err:
            return
        if role:
            self.runner.release_unplaced(call.id, role)
        raise Refused(409, err, f"not possible now: {err}")

    def view(self, call: ActiveCall) -> dict[str, Any]:
        return {"id": call.id, **self.machine(call).snapshot()}

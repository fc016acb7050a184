"""Keep-connected sessions: one persistent-leg machine per user, started when the mode is turned on (and at
start-up for users already in it), fed by the API, the keypad and incoming calls."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from b2bua.callcontrol import ActiveCall, Attach
from b2bua.calls.keepconnected import Dial, KeepConnectedSession, Offer, SessionPlan, UserAction
from b2bua.media.sounds import MUSIC, write_notes
from b2bua.ops.settings import KeepConnectedSettings
from b2bua.telecommuter.users import Mode, User

if TYPE_CHECKING:
    from b2bua.telecommuter.service import TelecommuterService

KIND = "session"


class Sessions:
    def __init__(self, service: TelecommuterService, settings: KeepConnectedSettings, media_dir: Path) -> None:
        self.svc = service
        self.cfg = settings
        if settings.music_wav:
            self.music = settings.music_wav
        else:
            path = media_dir / "music-on-hold.wav"
            write_notes(path, MUSIC, level=0.3)
            self.music = str(path)
        self._ids = itertools.count(1)

    def of(self, user_id: str) -> ActiveCall | None:
        found = self.svc.calls.calls_of(user_id, KIND)
        return found[0] if found else None

    def machine(self, call: ActiveCall) -> KeepConnectedSession:
        m = call.machine
        assert isinstance(m, KeepConnectedSession)
        return m

    def start(self, user: User) -> ActiveCall:
        from b2bua.telecommuter.service import Refused, admission

        existing = self.of(user.id)
        if existing is not None:
            return existing
        route = self.svc.router.route(user.telecommuter_number, None)
        if route is None:
            raise Refused(503, "no-route", f"no route to {user.telecommuter_number}")
        admission(self.svc.gate)
        p = self.svc.presentation
        number = p.callback_number or user.business_number
        c, t = self.cfg, self.svc.cfg
        plan = SessionPlan(
            line_uri=route.uri, line_from=f'"{user.name} (line)" <sip:{number}@{p.host}>',
            number=user.telecommuter_number, confirm_digit=user.confirm_digit,
            line_answer_timeout_s=t.user_answer_timeout_s, confirm_timeout_s=t.confirm_timeout_s,
            target_answer_timeout_s=self.svc.target_answer_timeout_s, reconnect_timeout_s=c.reconnect_timeout_s,
            redial_on_drop=c.redial_on_drop, redial_interval_s=c.redial_interval_s, park_slots=c.park_slots,
            park_timeout_s=c.park_timeout_s, auto_answer=c.auto_answer, offer_timeout_s=c.offer_timeout_s,
            call_waiting=user.call_waiting, music=self.music, keypad=dict(c.keypad),
            fallback_code=c.fallback_code, rtp_timeout_s=c.rtp_timeout_s,
        )
        return self.svc.calls.start_machine(KIND, KeepConnectedSession(plan), user_id=user.id,
                                            info={"user_number": user.telecommuter_number})

    def stop(self, user_id: str, cause: str) -> None:
        call = self.of(user_id)
        if call is not None:
            self.svc.calls.terminate(call.id, cause)

    async def resume_all(self) -> int:
        """At start-up: users left in keep-connected mode get their line back, paced by the call-rate limit so
        that a restart with many sessions neither floods the trunk nor is refused by its own admission."""
        from b2bua.telecommuter.service import Refused

        n = 0
        for user in self.svc.users.list_users():
            if user.mode is not Mode.KEEP_CONNECTED or not user.telecommuter_number:
                continue
            for _ in range(600):
                try:
                    self.start(user)
                    n += 1
                except Refused as e:
                    if e.rule == "over-rate":
                        await asyncio.sleep(0.05)
                        continue
                    self.svc.log.warning("session not resumed", user_id=user.id, error=str(e))
                except Exception as e:  # one unreachable user must not stop the others
                    self.svc.log.warning("session not resumed", user_id=user.id, error=str(e))
                break
        return n

    # ------------------------------------------------------------------------------------------ calls
    def offer(self, user: User, leg_id: str, details: dict[str, Any]) -> Attach | None:
        """An incoming call rides the session if it can take one more; None: the normal fallback applies."""
        call = self.of(user.id) or self.start(user)
        if not self.machine(call).can_offer():
            return None
        role = f"in-{leg_id}"
        return Attach(call.id, role, Offer(role, details))

    def dial(self, user: User, target: str) -> dict[str, Any]:
        from b2bua.telecommuter.service import Refused, admission

        call = self.of(user.id)
        if call is None:
            raise Refused(409, "no-session", "keep-connected mode is not on")
        number = self.svc.check_target(user, target)
        self.svc.check_limits(user, "session")
        route = self.svc.router.route(number.normalised, None)
        if route is None:
            raise Refused(503, "no-route", f"no route to {number.normalised}")
        admission(self.svc.gate)
        from_uri, headers = self.svc.presentation.toward_target(user)
        role = f"out-{next(self._ids)}"
        self.svc.calls.send(call.id, Dial(role, route.uri, from_uri, number.normalised, headers), admitted_role=role)
        self._refused_if_error(call, role)
        return {"call": role, "number": number.normalised, "session": self.view(call)}

    def action(self, user: User, name: str, call_role: str = "", slot: int = 0) -> dict[str, Any]:
        from b2bua.telecommuter.service import Refused

        call = self.of(user.id)
        if call is None:
            raise Refused(409, "no-session", "keep-connected mode is not on")
        self.svc.calls.send(call.id, UserAction(name, call_role, slot))
        self._refused_if_error(call, "")
        return self.view(call)

    def _refused_if_error(self, call: ActiveCall, role: str) -> None:
        from b2bua.telecommuter.service import Refused

        err = self.machine(call).last_error
        if not err:
            return
        if role and role not in call.legs and role in call.admitted_roles:
            call.admitted_roles.discard(role)
            self.svc.gate.release()
        raise Refused(409, err, f"not possible now: {err}")

    def view(self, call: ActiveCall) -> dict[str, Any]:
        return {"id": call.id, **self.machine(call).snapshot()}

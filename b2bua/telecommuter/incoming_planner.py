"""Where a call to one of our users goes: the telecommuter phone (on-demand), the keep-connected session, or the
desk they are logged in at; else voicemail, else busy/unavailable. Paging calls only ever ring a desk."""

from __future__ import annotations

from typing import Any

from b2bua.calls.incoming import IncomingCall, IncomingPlan, Ring
from b2bua.calls.routing import Router
from b2bua.control.interfaces import Attach, PlannedCall
from b2bua.control.runner import CallRunner
from b2bua.ops.logging import get_logger
from b2bua.ops.settings import TelecommuterSettings
from b2bua.sip import message
from b2bua.sip.types import Admit, InboundInvite
from b2bua.telecommuter.dialling import DiallingRules
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.mailbox import Mailbox
from b2bua.telecommuter.presentation import Presentation
from b2bua.telecommuter.sessions import Sessions
from b2bua.telecommuter.users import Mode, User, UserRepository


class IncomingPlanner:
    def __init__(self, repository: UserRepository, rules: DiallingRules, sessions: Sessions,
                 mailbox: Mailbox, runner: CallRunner, router: Router, presentation: Presentation,
                 settings: TelecommuterSettings) -> None:
        self.repository = repository
        self.rules = rules
        self.sessions = sessions
        self.mailbox = mailbox
        self.runner = runner
        self.router = router
        self.presentation = presentation
        self.cfg = settings
        self._log = get_logger("telecommuter")

    def plan(self, inv: InboundInvite, admit: Admit) -> PlannedCall | Attach:
        user = self.repository.get_user(admit.user_id)
        caller = self.rules.caller_number(inv.from_user)
        details: dict[str, Any] = {"direction": "in", "caller": caller, "caller_name": inv.from_display,
                                   "called": inv.called, "trunk": admit.trunk}
        if user is None:  # deleted between the SIP thread's lookup and now
            return PlannedCall(IncomingCall(IncomingPlan(None, 0, None, "unreachable", details)), details)
        paging = message.is_paging(inv.headers, inv.sdp)
        if user.mode is Mode.KEEP_CONNECTED and not paging:
            return self._to_session(user, inv, details, admit)
        ring, why = self._where_to_ring(user, caller, inv, paging)
        voicemail = None if paging else self.mailbox.plan_for(user, caller)
        plan = IncomingPlan(ring, self.cfg.ring_timeout_s, voicemail, why, details)
        self._log.info("incoming for user", user_id=user.id, rings=ring.where if ring else None,
                       fallback=why or None, voicemail=voicemail is not None, paging=paging)
        return PlannedCall(IncomingCall(plan), {**details, "trunk_in": admit.trunk,
                                                "ringing": ring.where if ring else None})

    def _to_session(self, user: User, inv: InboundInvite, details: dict[str, Any],
                    admit: Admit) -> PlannedCall | Attach:
        try:
            attach = self.sessions.offer(user, inv.leg_id, details)
        except Refused as e:
            self._log.warning("keep-connected session unavailable", user_id=user.id, reason=e.message)
            attach = None
        if attach is not None:
            return attach
        plan = IncomingPlan(None, 0, self.mailbox.plan_for(user, str(details["caller"])), "line-busy", details)
        return PlannedCall(IncomingCall(plan), {**details, "trunk_in": admit.trunk})

    def _where_to_ring(self, user: User, caller: str, inv: InboundInvite, paging: bool) -> tuple[Ring | None, str]:
        if user.mode is Mode.ON_DEMAND and user.telecommuter_number:
            if paging:
                return None, "paging"  # a page is for a desk phone's speaker, not a mobile
            busy = sum(1 for c in self.runner.calls_of(user.id) if c.machine.holds_user_line)
            if busy >= (2 if user.call_waiting else 1):
                return None, "line-busy"
            route = self.router.route(user.telecommuter_number, None)
            if route is None:
                self._log.warning("no route to telecommuter number", user_id=user.id,
                                  number=user.telecommuter_number)
                return None, "unreachable"
            from_uri, headers = self.presentation.redirected(user, caller, inv.from_display, inv.headers,
                                                             self.cfg.diversion_reason,
                                                             list(self.cfg.redirect_headers))
            return Ring(route.uri, from_uri, headers, "telecommuter"), ""
        desk = self.repository.desk_of(user.id)
        if desk is None:
            return None, "paging" if paging else "logged-out"
        return Ring(desk.contact, self.presentation.caller(caller, inv.from_display), (), "desk"), ""

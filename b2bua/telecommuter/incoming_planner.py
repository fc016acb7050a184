"""Where a call to one of our users goes, read from their live routing settings when the INVITE arrives:
do-not-disturb (voicemail, else busy), an unconditional forward, the telecommuter phone (on-demand), the
keep-connected session, or the desk they are logged in at, with the twinned number ringing beside it; then
forwarding on busy or no answer, voicemail, else busy/unavailable. Paging calls only ever ring a desk."""

from __future__ import annotations

from typing import Any

from b2bua.calls.incoming import Forwards, IncomingCall, IncomingPlan, Ring
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
from b2bua.telecommuter.presence import Presence
from b2bua.telecommuter.presentation import Presentation
from b2bua.telecommuter.profiles import ProfileBook
from b2bua.telecommuter.sessions import Sessions
from b2bua.telecommuter.users import Mode, RoutingSettings, User, UserRepository


class IncomingPlanner:
    def __init__(self, repository: UserRepository, rules: DiallingRules, sessions: Sessions,
                 mailbox: Mailbox, runner: CallRunner, router: Router, presentation: Presentation,
                 settings: TelecommuterSettings, profiles: ProfileBook, presence: Presence) -> None:
        self.repository = repository
        self.rules = rules
        self.sessions = sessions
        self.mailbox = mailbox
        self.runner = runner
        self.router = router
        self.presentation = presentation
        self.cfg = settings
        self.profiles = profiles
        self.presence = presence
        self._log = get_logger("telecommuter")

    def plan(self, inv: InboundInvite, admit: Admit) -> PlannedCall | Attach:
        user = self.repository.get_user(admit.user_id)
        caller = self.rules.caller_number(inv.from_user)
        details: dict[str, Any] = {"direction": "in", "caller": caller, "caller_name": inv.from_display,
                                   "called": inv.called, "trunk": admit.trunk}
        if user is None:  # deleted between the SIP thread's lookup and now
            return PlannedCall(IncomingCall(IncomingPlan(None, 0, None, "unreachable", details)), details)
        paging = message.is_paging(inv.headers, inv.sdp)
        settings = self.profiles.live(user).settings
        if not paging and self.presence.dnd(user.id):
            plan = IncomingPlan(None, 0, self.mailbox.plan_for(user, caller), "dnd", details)
        elif not paging and settings.forwarding.unconditional:
            ring = self._forward(user, caller, inv, settings.forwarding.unconditional, "unconditional")
            plan = IncomingPlan(ring, self.cfg.ring_timeout_s, None, "" if ring else "unreachable", details)
        elif user.mode is Mode.KEEP_CONNECTED and not paging:
            return self._to_session(user, inv, details, admit)
        else:
            plan = self._ring_plan(user, settings, caller, inv, paging, details)
        ringing = plan.ring.where if plan.ring else plan.twin.where if plan.twin else None
        self._log.info("incoming for user", user_id=user.id, rings=ringing, twin=plan.twin is not None,
                       fallback=plan.no_ring_reason or None, voicemail=plan.voicemail is not None, paging=paging)
        return PlannedCall(IncomingCall(plan), {**details, "trunk_in": admit.trunk, "ringing": ringing})

    def _ring_plan(self, user: User, s: RoutingSettings, caller: str, inv: InboundInvite, paging: bool,
                   details: dict[str, Any]) -> IncomingPlan:
        ring, why = self._where_to_ring(user, s, caller, inv, paging)
        if paging:
            return IncomingPlan(ring, self.cfg.ring_timeout_s, None, why, details)
        twin = None
        if s.mobility.twinning and s.mobility.twin_number and why in ("", "logged-out") \
                and not (ring and ring.where == "telecommuter" and s.mobility.twin_number == user.telecommuter_number):
            twin = self._twin(user, caller, inv, s.mobility.twin_number)
        f = s.forwarding
        forwards = Forwards(self._forward(user, caller, inv, f.busy, "user-busy") if f.busy else None,
                            self._forward(user, caller, inv, f.no_answer, "no-answer") if f.no_answer else None,
                            self.cfg.ring_timeout_s)
        # the ring time is the user's when it hands the call to a forward number, else the configured one
        timeout = float(f.ring_time_s) if forwards.no_answer else self.cfg.ring_timeout_s
        return IncomingPlan(ring, timeout, self.mailbox.plan_for(user, caller), why, details, twin, forwards,
                            self.cfg.confirm_timeout_s)

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

    def _line_busy(self, user: User) -> bool:
        busy = sum(1 for c in self.runner.calls_of(user.id) if c.machine.holds_user_line)
        return busy >= (2 if user.call_waiting else 1)

    def _where_to_ring(self, user: User, s: RoutingSettings, caller: str, inv: InboundInvite,
                       paging: bool) -> tuple[Ring | None, str]:
        if user.mode is Mode.ON_DEMAND and user.telecommuter_number:
            if paging:
                return None, "paging"  # a page is for a desk phone's speaker, not a mobile
            if self._line_busy(user):
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
        if not paging and s.forwarding.busy and (self._line_busy(user) or self.presence.on_call(user.id)):
            return None, "line-busy"  # only with busy forwarding: a desk phone otherwise has its own call waiting
        return Ring(desk.contact, self.presentation.caller(caller, inv.from_display), (), "desk"), ""

    def _twin(self, user: User, caller: str, inv: InboundInvite, number: str) -> Ring | None:
        """The twinned number, with the caller's identity as the telecommuter leg has it; it must press the
        confirmation digit (when the user has one) so a mobile's voicemail cannot take the call."""
        ring = self._routed(user, caller, inv, number, self.cfg.diversion_reason, "twin")
        return Ring(ring.uri, ring.from_uri, ring.headers, "twin", user.confirm_digit) if ring else None

    def _forward(self, user: User, caller: str, inv: InboundInvite, number: str, reason: str) -> Ring | None:
        return self._routed(user, caller, inv, number, reason, "forward")

    def _routed(self, user: User, caller: str, inv: InboundInvite, number: str, reason: str,
                where: str) -> Ring | None:
        route = self.router.route(number, None)
        if route is None:
            self._log.warning("no route", user_id=user.id, number=number, leg=where)
            return None
        from_uri, headers = self.presentation.redirected(user, caller, inv.from_display, inv.headers, reason,
                                                         list(self.cfg.redirect_headers), target=number)
        return Ring(route.uri, from_uri, headers, where)

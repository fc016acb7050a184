"""New inbound calls (asyncio thread): a screened INVITE becomes a bridged trunk call, a call for one of our
users (planned by the domain), or a party joining a running session; refused INVITEs are counted and logged."""

from __future__ import annotations

from b2bua.calls.bridge import BridgeCall
from b2bua.calls.events import Role, reason_header
from b2bua.calls.machine import CallKind
from b2bua.control.interfaces import Attach, CallPolicy
from b2bua.control.runner import CallRunner
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.ops.ratelimited_log import Level, RateLimitedLog
from b2bua.sip import message
from b2bua.sip.types import Admit, InboundInvite, IncomingCall, InviteRejected

# headers from a trusted trunk that carry the caller's identity onward
PASSED_HEADERS = ("P-Asserted-Identity", "Privacy")

# a challenge precedes every authenticated call, and a blocked source may flood: not worth a log line each (the
# metric counts them); a failed password is a warning
_REJECT_LOG_LEVEL: dict[str, Level] = {"auth-challenge": "debug", "auth-blocked": "debug", "auth-failed": "warning"}
# a flood of refused INVITEs from one source writes a few lines and then a count, never one line per INVITE
REJECT_LOG_LINES, REJECT_LOG_INTERVAL_S = 5, 10.0


class InboundCalls:
    def __init__(self, runner: CallRunner, policy: CallPolicy, metrics: Metrics, *, our_host: str,
                 no_answer_timeout_s: float) -> None:
        self.runner = runner
        self.policy = policy
        self.metrics = metrics
        self.our_host = our_host
        self.no_answer_timeout_s = no_answer_timeout_s
        self._log = get_logger("calls")
        self._rejects = RateLimitedLog(self._log, lines=REJECT_LOG_LINES, interval_s=REJECT_LOG_INTERVAL_S,
                                       suppressed=metrics.log_lines_suppressed.labels("invite-rejected"))

    def accept(self, event: IncomingCall) -> None:
        """The INVITE arrives holding one admission: it goes to a call, or back to the gate with a 500."""
        self.runner.gate.claim()
        try:
            if event.admit.user_id:
                self._user_call(event.invite, event.admit)
            else:
                self._trunk_call(event.invite, event.admit)
        except Exception:
            self.metrics.call_faults.labels("plan").inc()
            self._log.exception("inbound call failed", sip_call_id=event.invite.sip_call_id)
            if not self.runner.owns_leg(event.invite.leg_id):  # no call took it over: the caller and slot are ours
                self.runner.gate.release()
                self.runner.engine.respond(event.invite.leg_id, 500, reason_header(500, "internal error (plan)"))

    def rejected(self, event: InviteRejected) -> None:
        self.metrics.rejected.labels(str(event.code), event.reason).inc()
        inv = event.invite
        self._rejects.log(_REJECT_LOG_LEVEL.get(event.reason, "info"), (event.reason, inv.src_ip), "invite rejected",
                          code=event.code, reason=event.reason, src=inv.src_ip, called=inv.called,
                          sip_call_id=inv.sip_call_id, **({"detail": event.detail} if event.detail else {}))

    def _trunk_call(self, inv: InboundInvite, admit: Admit) -> None:
        """Route a carrier's call onwards: the B leg presents the caller (and their asserted identity)."""
        b_leg = self.runner.new_leg_id()
        display = inv.from_display.replace('"', "")
        user = inv.from_user or "anonymous"
        from_uri = f'"{display}" <sip:{user}@{self.our_host}>' if display else f"<sip:{user}@{self.our_host}>"
        headers = tuple((n, v) for n in PASSED_HEADERS if (v := message.header(inv.headers, n)) is not None)
        machine = BridgeCall(admit.target_uri, from_uri, self.no_answer_timeout_s, headers, targets=admit.targets)
        info = {"caller": inv.from_user, "called": inv.called, "trunk_in": admit.trunk,
                "trunk_out": admit.target_trunk, "sip_call_id": inv.sip_call_id}
        call = self.runner.start(CallKind.TRUNK, machine, legs={Role.A: inv.leg_id, Role.B: b_leg}, info=info,
                                 invite=inv, log_context={"sip_call_id": inv.sip_call_id, "a_leg": inv.leg_id,
                                                          "b_leg": b_leg})
        call.log.info("call in", caller=inv.from_user, called=inv.called, trunk=admit.trunk, src=inv.src_ip,
                      target=admit.target_uri)

    def _user_call(self, inv: InboundInvite, admit: Admit) -> None:
        planned = self.policy.plan_user_call(inv, admit)
        if isinstance(planned, Attach):
            self._attach(inv, planned)
            return
        call = self.runner.start(CallKind.INCOMING, planned.machine, user_id=admit.user_id,
                                 legs={Role.CALLER: inv.leg_id}, invite=inv,
                                 info={**planned.info, "sip_call_id": inv.sip_call_id},
                                 log_context={"sip_call_id": inv.sip_call_id, "caller_leg": inv.leg_id,
                                              "user_id": admit.user_id})
        call.log.info("call in for user", caller=inv.from_user, called=inv.called, trunk=admit.trunk,
                      src=inv.src_ip)

    def _attach(self, inv: InboundInvite, attach: Attach) -> None:
        call = self.runner.get(attach.call_id)
        if call is not None:
            call.log.info("call joins session", role=attach.role, caller=inv.from_user, called=inv.called,
                          sip_call_id=inv.sip_call_id)
        if not self.runner.attach(attach.call_id, attach.role, inv.leg_id, attach.feed):
            # the session ended in between: refuse the leg and give its admission back
            self._log.warning("session gone before the call joined", call_id=attach.call_id)
            self.runner.gate.release()
            self.runner.engine.respond(inv.leg_id, 480)

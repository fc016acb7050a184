"""INVITE screening. **Runs on the SIP thread**, for every new INVITE, before any call exists, so that a refusal
costs no thread hop and an admitted call already holds its admission when asyncio first hears of it.

What it may touch: the trunk authenticator (its own lock), the router (immutable after start; the trunk health it
reads is a snapshot swapped whole), the domain's
``CallPolicy.lookup``/``transit_refusal`` (immutable snapshots; no store, no I/O) and the thread-safe admission
gate. Nothing here may block or await; the set-up latency benchmark in ``perf/`` measures what it costs.
"""

from __future__ import annotations

from b2bua.calls.routing import Router
from b2bua.calls.trunkauth import TrunkAuthenticator
from b2bua.control.admission import AdmissionGate
from b2bua.control.interfaces import CallPolicy
from b2bua.sip.types import Admit, InboundInvite, Reject, ScreenResult


class InviteScreen:
    def __init__(self, trunk_auth: TrunkAuthenticator, router: Router, policy: CallPolicy,
                 gate: AdmissionGate, srtp_required: frozenset[str] = frozenset()) -> None:
        self.trunk_auth = trunk_auth
        self.router = router
        self.policy = policy
        self.gate = gate
        self.srtp_required = srtp_required  # trunks whose media must be SRTP (srtp = "mandatory")

    def screen(self, inv: InboundInvite) -> ScreenResult:
        """Who sent it (trunk ACL or digest), whether the number is ours, where it goes, and whether there is
        room: an ``Admit`` holding one admission, or the ``Reject`` to answer with."""
        trunk = self.trunk_auth.identify(inv.src_ip, "INVITE", inv.request_uri, inv.headers)
        if isinstance(trunk, Reject):
            return trunk
        if trunk in self.srtp_required and inv.sdp and not offers_srtp(inv.sdp):
            # pjsua refuses a plain offer itself only on a listener where every trunk is mandatory; a late offer
            # (no SDP) is left to the listener's account, whose own offer carries the keys
            return Reject(488, "srtp-required", (("Warning", '399 b2bua "SRTP (RTP/SAVP) required on this trunk"'),))
        local = self.policy.lookup(inv.called, trunk)
        if local is not None:
            if not local.user_id:
                return Reject(local.code, local.reason)
            return self._admitted(Admit(trunk, "", "", user_id=local.user_id))
        route = self.router.route(inv.called, trunk)
        if route is None:
            return Reject(404, "no-route")
        refused = self.policy.transit_refusal(trunk, inv.called)
        if refused is not None:
            rule, text = refused
            return Reject(403, f"dialling-rule:{rule}", (("Reason", f'SIP;cause=403;text="{text}"'),))
        return self._admitted(Admit(trunk, route.uri, route.trunk, targets=route.targets))

    def _admitted(self, admit: Admit) -> ScreenResult:
        overload = self.gate.admit(in_flight=True)
        if overload is None:
            return admit
        return Reject(503, overload, (("Retry-After", str(self.gate.retry_after(overload))),))


def offers_srtp(sdp: str) -> bool:
    """An offer whose audio is SRTP with SDES keys (RTP/SAVP and a=crypto)."""
    low = sdp.lower()
    return "rtp/savp" in low and "a=crypto:" in low

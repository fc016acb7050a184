"""Signalling on the SIP thread: pjsua2's callbacks become ``EngineEvent``s, call commands become pjsua2 calls.

Legs rejected at screening are ``silent``: the app never heard of them, so none of their later events is emitted.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from b2bua.sip import dialog, message
from b2bua.sip.legs import REFER_REFUSAL, REPLACES_REFUSAL, Leg, LegTable, SipAccount, call_op
from b2bua.sip.media_ops import MediaOps
from b2bua.sip.types import (
    Admit,
    Dialog,
    EngineEvent,
    EngineFault,
    Headers,
    InboundInvite,
    IncomingCall,
    InviteRejected,
    LegAnswered,
    LegDtmf,
    LegEnded,
    LegMedia,
    LegProgress,
    Reject,
    ScreenResult,
)


class CallOps:
    """The ``LegListener`` of every leg and of the account, and the bodies of the call commands."""

    def __init__(
        self,
        legs: LegTable,
        media: MediaOps,
        screen: Callable[[InboundInvite], ScreenResult],
        emit: Callable[[EngineEvent], None],
        log: Callable[[int, str], None],
        defer: Callable[[Callable[[], object]], concurrent.futures.Future[object]],
    ) -> None:
        self._legs = legs
        self._media = media
        self._screen = screen
        self._emit = emit
        self._log = log
        self._defer = defer  # runs a function on a later loop turn (the engine's command queue)
        self._accs: dict[str, SipAccount] = {}  # by name (AccountPlan): "udp" always, one per transport and SRTP
        self._account_for: Callable[[str], str] = lambda uri: "udp"
        self.transfers_refused = {"refer": 0, "replaces": 0}  # read from other threads: plain ints, like a gauge

    # ---------------------------------------------------------------------------------- the account
    def open_accounts(self, cfgs: dict[str, pj.AccountConfig], account_for: Callable[[str], str]) -> None:
        """The accounts, created in the given order (the UDP one is the default); ``account_for`` names the one
        an outgoing leg to a URI uses (its trunk's SRTP, its transport's Contact)."""
        for name, acfg in cfgs.items():
            acc = SipAccount(self)
            acc.create(acfg, name == "udp")
            self._accs[name] = acc
        self._account_for = account_for

    def close_accounts(self) -> None:
        """Shut the accounts down and drop their wrappers here, in the SIP thread, before ``libDestroy``."""
        for acc in self._accs.values():
            acc.shutdown()
        self._accs.clear()

    # ---------------------------------------------------------------------------------- callbacks
    def guard(self, where: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:
            self._log(1, f"error in {where}: {e!r}")
            with contextlib.suppress(Exception):
                self._emit(EngineFault(where, repr(e)))

    def on_incoming(self, acc: SipAccount, prm: Any) -> None:
        now = time.monotonic()
        leg = Leg(self, acc, self._legs.new_id(), prm.callId)
        self._legs.add(leg)
        invite = _read_invite(leg.leg_id, prm, now)
        leg.invite_headers = invite.headers
        decision = self._screen(invite)
        if isinstance(decision, Reject):
            leg.silent = True
            # not inside the callback: pjsua defers such a hangup and drops its headers (Retry-After)
            self._defer(lambda: leg.ended or leg.hangup(call_op(decision.code, decision.headers)))
            self._emit(InviteRejected(invite, decision.code, decision.reason, decision.detail))
            return
        assert isinstance(decision, Admit)
        self._emit(IncomingCall(invite, decision))

    def on_state(self, leg: Leg, prm: Any) -> None:
        ci = leg.getInfo()
        st = ci.state
        if st == pj.PJSIP_INV_STATE_EARLY and leg.outbound:
            if not leg.silent:
                self._emit(LegProgress(leg.leg_id, int(ci.lastStatusCode)))
        elif st == pj.PJSIP_INV_STATE_CONFIRMED:
            if not leg.silent:
                self._emit(LegAnswered(leg.leg_id, self._dialog(leg, ci, prm)))
        elif st == pj.PJSIP_INV_STATE_DISCONNECTED and not leg.ended:
            self._legs.retire(leg)
            self._media.release(leg)  # before LegEnded: a recording is complete when the app hears the leg ended
            if not leg.silent:
                self._emit(LegEnded(leg.leg_id, int(ci.lastStatusCode), str(ci.lastReason)))

    def _dialog(self, leg: Leg, ci: Any, prm: Any) -> Dialog | None:
        """The dialog as the ACK that confirmed it shows it (we sent it on an outbound leg, received it on an
        inbound one); None if it cannot be read: the leg then goes unjournaled, never unanswered."""
        try:
            text, address = _confirming_message(prm.e)
            if leg.outbound:
                found = dialog.from_sent_ack(text, address)
            else:
                found = dialog.from_received_ack(text, leg.invite_headers, str(ci.remoteContact), address)
        except Exception as e:
            found, text = None, f"{e!r}"
        if found is None:
            self._log(2, f"{leg.leg_id}: dialog not journaled, confirming message unreadable: {text[:200]!r}")
        return found

    def on_media(self, leg: Leg) -> None:
        ci = leg.getInfo()
        active = remote_hold = False
        leg.audio = None
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD) and (
                mi.audioConfSlot >= 0
            ):
                leg.audio = leg.getAudioMedia(mi.index)
                leg.audio_idx = int(mi.index)
                active = True
                remote_hold = mi.status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
            break  # the first audio stream is the call's audio
        leg.remote_hold = remote_hold
        self._media.attach(leg)
        seen = (active, remote_hold)
        if seen != leg.media_seen and not leg.silent:
            leg.media_seen = seen
            early = ci.state in (pj.PJSIP_INV_STATE_EARLY, pj.PJSIP_INV_STATE_CALLING)
            self._emit(LegMedia(leg.leg_id, active, remote_hold, early))

    def on_dtmf(self, leg: Leg, digit: str, duration_ms: int) -> None:
        if not leg.silent:
            self._emit(LegDtmf(leg.leg_id, digit, duration_ms))

    def on_transfer_refused(self, leg: Leg, kind: str, detail: str) -> None:
        """A REFER (to ``detail``) or a Replaces INVITE (from ``detail``) the leg already refused: the call goes on
        as it was, so the app hears nothing; the log says who tried."""
        self.transfers_refused[kind] += 1
        code = REFER_REFUSAL if kind == "refer" else REPLACES_REFUSAL
        what = f"REFER to {detail[:200]!r}" if kind == "refer" else f"INVITE with Replaces from {detail}"
        self._log(2, f"{leg.leg_id}: {what} refused with {code}: this release performs no transfers")

    # ---------------------------------------------------------------------------------- command bodies
    def make_call(self, leg_id: str, uri: str, from_uri: str, headers: Headers) -> None:
        """Per-call caller ID: the From goes in this call's ``localUri``, not in an account per caller."""
        acc = self._accs.get(self._account_for(uri)) or self._accs.get("udp")
        if acc is None:  # before start or after stop
            raise RuntimeError("SIP engine has no account")
        leg = Leg(self, acc, leg_id)
        self._legs.add(leg)
        op = call_op(0, headers)
        op.txOption.localUri = from_uri
        try:
            leg.makeCall(uri, op)
        except pj.Error as e:
            self._legs.retire(leg)
            self._emit(LegEnded(leg_id, 500, f"makeCall failed: {e.info()}"))

    def respond(self, leg_id: str, code: int, headers: Headers) -> None:
        leg = self._legs.live(leg_id)
        if leg is None:
            return
        op = call_op(code, headers)
        if code < 300:
            leg.answer(op)
        else:
            leg.hangup(op)

    def hangup(self, leg_id: str, headers: Headers) -> None:
        leg = self._legs.live(leg_id)
        if leg is not None:
            leg.hangup(call_op(0, headers))

    def set_hold(self, leg_id: str, held: bool) -> None:
        leg = self._legs.live(leg_id)
        if leg is None:
            return
        op = call_op(0, ())  # audio only: an unhold re-INVITE would otherwise add pjsua's default m=text
        if held:
            leg.setHold(op)
        else:
            op.opt.flag = pj.PJSUA_CALL_UNHOLD
            leg.reinvite(op)

    def send_dtmf(self, leg_id: str, digits: str, duration_ms: int) -> None:
        leg = self._legs.live(leg_id)
        if leg is None:
            return
        p = pj.CallSendDtmfParam()
        p.method = pj.PJSUA_DTMF_METHOD_RFC2833
        p.digits = digits
        p.duration = duration_ms
        leg.sendDtmf(p)


def _confirming_message(e: Any) -> tuple[str, str]:
    """The text of the message in a call-state event (pjsua2's ``SipEvent``) and where it went or came from."""
    if e.type == pj.PJSIP_EVENT_TX_MSG:
        return str(e.body.txMsg.tdata.wholeMsg), str(e.body.txMsg.tdata.dstAddress)
    if e.type == pj.PJSIP_EVENT_RX_MSG:
        return str(e.body.rxMsg.rdata.wholeMsg), str(e.body.rxMsg.rdata.srcAddress)
    if e.type == pj.PJSIP_EVENT_TSX_STATE:
        src = e.body.tsxState.src
        if e.body.tsxState.type == pj.PJSIP_EVENT_RX_MSG:
            return str(src.rdata.wholeMsg), str(src.rdata.srcAddress)
        if e.body.tsxState.type == pj.PJSIP_EVENT_TX_MSG:
            return str(src.tdata.wholeMsg), str(src.tdata.dstAddress)
    return "", ""


def _read_invite(leg_id: str, prm: Any, now: float) -> InboundInvite:
    """The INVITE of ``onIncomingCall`` as plain data: pjsua2's ``rdata`` must not leave the SIP thread."""
    rd = prm.rdata
    whole = str(rd.wholeMsg)
    req_line, headers = message.request_line_and_headers(whole)
    ruri = message.request_uri(req_line)
    host, _, port = str(rd.srcAddress).rpartition(":")
    from_hdr = message.header(headers, "From") or ""
    return InboundInvite(
        leg_id=leg_id,
        src_ip=host.strip("[]"),
        src_port=int(port) if port.isdigit() else 0,
        request_uri=ruri,
        called=message.called_number(ruri),
        from_uri=from_hdr,
        from_user=message.uri_user(from_hdr),
        from_display=message.display_name(from_hdr),
        to_uri=message.header(headers, "To") or "",
        sip_call_id=message.header(headers, "Call-ID") or "",
        headers=headers,
        received_at=now,
        sdp=message.body(whole),
    )

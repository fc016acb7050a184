"""Our subclasses of pjsua2's callback classes, the table that owns them, and the call-operation parameter.

Only the SIP thread touches these. A ``Call`` hangs up when its wrapper is destroyed and
destroying one on a foreign thread can abort the process, so ``LegTable`` holds the only strong references and
drops them on the loop turn after DISCONNECTED, never inside the callback.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Protocol

import pjsua2 as pj

from b2bua.sip.types import Headers

# This release performs no transfers (issue 23). RFC 3515 leaves a REFER its recipient does not act on to RFC 3261:
# 405, the method is not allowed here (pjsip's dialog layer adds the Allow header a 405 must carry). A Replaces
# the UAS does not authorise gets 403 (RFC 3891 section 3); the dialog it names goes on.
REFER_REFUSAL = 405
REPLACES_REFUSAL = 403


class LegListener(Protocol):
    """Where a leg's and the account's callbacks go. ``guard`` runs a body and turns an exception into a log line
    and an event: pjsua2 callbacks swallow exceptions (SWIG only prints them)."""

    def guard(self, where: str, fn: Callable[..., None], *args: Any) -> None: ...
    def on_incoming(self, acc: SipAccount, prm: Any) -> None: ...
    def on_state(self, leg: Leg, prm: Any) -> None: ...
    def on_media(self, leg: Leg) -> None: ...
    def on_dtmf(self, leg: Leg, digit: str, duration_ms: int) -> None: ...
    def on_transfer_refused(self, leg: Leg, kind: str, detail: str) -> None: ...


class PjLogWriter(pj.LogWriter):  # type: ignore[misc]
    """pjsip's log lines into our logger (level, message)."""

    def __init__(self, sink: Callable[[int, str], None]) -> None:
        super().__init__()
        self._sink = sink

    def write(self, entry: Any) -> None:
        try:
            self._sink(int(entry.level), str(entry.msg).rstrip())
        except Exception:  # logging must never take the engine down
            pass


class Leg(pj.Call):  # type: ignore[misc]
    """One SIP dialog. Only the SIP thread touches it."""

    def __init__(self, listener: LegListener, acc: pj.Account, leg_id: str,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.listener = listener
        self.leg_id = leg_id
        self.outbound = call_id == pj.PJSUA_INVALID_ID
        self.peer: str | None = None
        self.audio: pj.AudioMedia | None = None
        self.silent = False  # rejected at screening: the app never heard of it
        self.ended = False
        self.media_seen: tuple[bool, bool] | None = None
        self.tone: pj.ToneGenerator | None = None
        self.tone_name = ""  # wanted tone; started once the leg has audio
        self.player: pj.AudioMediaPlayer | None = None
        self.play_path = ""  # wanted file; started once the leg has audio
        self.recorder: pj.AudioMediaRecorder | None = None
        self.record_path = ""
        self.play_loop = False
        self.audio_idx = -1
        self.remote_hold = False
        self.rtp_timeout_s = 0.0  # > 0: hang up when no RTP arrives for this long (see MediaOps.check_rtp)
        self.rx_pkts = -1
        self.rx_changed = 0.0
        self.invite_headers: Headers = ()  # an inbound leg's INVITE: its Contact and Record-Route make the dialog

    def onCallState(self, prm: Any) -> None:
        self.listener.guard("onCallState", self.listener.on_state, self, prm)

    def onCallMediaState(self, prm: Any) -> None:
        self.listener.guard("onCallMediaState", self.listener.on_media, self)

    def onDtmfDigit(self, prm: Any) -> None:
        self.listener.guard("onDtmfDigit", self.listener.on_dtmf, self, str(prm.digit), int(prm.duration))

    def onCallTransferRequest(self, prm: Any) -> None:
        """A REFER in this leg's dialog. Left alone, pjsua answers 202 and itself places a new call to the
        Refer-To target (bound to this wrapper): a toll-fraud hole. Refused first, so nothing below can undo it."""
        prm.statusCode = REFER_REFUSAL
        self.listener.guard("onCallTransferRequest", self.listener.on_transfer_refused, self, "refer",
                            str(prm.dstUri))

    def onCallReplaceRequest(self, prm: Any) -> None:
        """An INVITE whose Replaces names this leg's dialog. Left alone, pjsua answers it and hangs this leg up
        behind our call machines' backs. ``prm.reason`` stays as it is: pjsua2 hands pjsua a pointer into this
        parameter, which is gone when the callback returns (its "OK" makes pjsua use the code's own text)."""
        prm.statusCode = REPLACES_REFUSAL
        self.listener.guard("onCallReplaceRequest", self.listener.on_transfer_refused, self, "replaces",
                            str(prm.rdata.srcAddress))


class SipAccount(pj.Account):  # type: ignore[misc]
    """The one account every leg uses; per-call caller ID goes in each call's From, not in more accounts."""

    def __init__(self, listener: LegListener) -> None:
        super().__init__()
        self.listener = listener

    def onIncomingCall(self, prm: Any) -> None:
        self.listener.guard("onIncomingCall", self.listener.on_incoming, self, prm)


class LegTable:
    """The SIP thread's strong references to every leg wrapper, and the ids it hands out.

    A leg that ended is retired: it stays reachable (a late command finds it ended) until ``reap`` drops it
    after the callbacks of the turn have returned.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._legs: dict[str, Leg] = {}
        self._reap: list[str] = []
        self.count = 0  # read from other threads: a plain int is atomic enough for a gauge

    def new_id(self) -> str:
        """Safe from any thread: ``itertools.count`` advances under the GIL."""
        return f"L{next(self._ids)}"

    def add(self, leg: Leg) -> None:
        self._legs[leg.leg_id] = leg
        self.count = len(self._legs)

    def get(self, leg_id: str | None) -> Leg | None:
        """The leg even if it ended (links and media are cleaned up on ended legs too)."""
        return self._legs.get(leg_id) if leg_id else None

    def live(self, leg_id: str) -> Leg | None:
        """The leg if it has not ended: commands on an ended leg do nothing."""
        leg = self._legs.get(leg_id)
        return None if leg is None or leg.ended else leg

    def all(self) -> list[Leg]:
        return list(self._legs.values())

    def retire(self, leg: Leg) -> None:
        """Mark the leg ended; its wrapper is dropped by the next ``reap``, outside any callback."""
        leg.ended = True
        self._reap.append(leg.leg_id)

    def reap(self) -> None:
        if self._reap:
            for leg_id in self._reap:
                self._legs.pop(leg_id, None)
            self._reap.clear()
            self.count = len(self._legs)

    def clear(self) -> None:
        """Drop every wrapper (before ``libDestroy``)."""
        self._legs.clear()
        self._reap.clear()
        self.count = 0


def audio_only(op: pj.CallOpParam) -> pj.CallOpParam:
    """One audio stream and nothing else in every offer and answer this call setting makes. pjsua's default
    also offers a T.140 ``m=text`` (RTP and RTCP sockets per leg that no call uses, an m-line some carriers
    reject) and accepts one offered to it; video is compiled out. The setting sticks to the call, so pjsua's
    own later offers (hold, session refresh) and answers to re-INVITEs keep to it."""
    op.opt.audioCount = 1
    op.opt.videoCount = 0
    op.opt.textCount = 0
    return op


def call_op(code: int, headers: Headers) -> pj.CallOpParam:
    """Parameters for answer/hangup/makeCall/re-INVITE: a status code (0: pjsua's default), extra headers and an
    audio-only call setting."""
    op = audio_only(pj.CallOpParam(True))
    if code:
        op.statusCode = code
    if headers:
        vec = pj.SipHeaderVector()
        for name, value in headers:
            h = pj.SipHeader()
            h.hName = name
            h.hValue = value
            vec.append(h)
        op.txOption.headers = vec
    return op

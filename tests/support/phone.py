"""A pjsua2 test phone, run as its own process (one Endpoint per process).

It either calls a URI or answers the first incoming call, plays a steady tone, records what it hears to a
WAV file, can send RFC 4733 digits and put the call on hold, and prints JSON events on stdout:
``{"event": "confirmed"}``, ``{"event": "dtmf", "digit": "5"}``, ``{"event": "media", "status": ...}``,
``{"event": "disconnected", "code": 200}``. It exits when its call is over or after ``--max-s``.
With ``--srtp`` its account offers/accepts SDES-SRTP; ``media`` events then name the stream's profile
(``"proto": "RTP/SAVP"``) and ``sdp`` events carry the SDP it made and, answering, the offer it got.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import pjsua2 as pj


def start_endpoint(ip: str | None = None, port: int = 0) -> pj.Endpoint:
    """A single-threaded 8 kHz endpoint with a null sound device (its clock drives the bridge); a UDP transport
    on ``ip:port`` when ``ip`` is given."""
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    cfg.medConfig.clockRate = 8000
    cfg.medConfig.sndClockRate = 8000
    cfg.medConfig.noVad = True
    cfg.medConfig.ecTailLen = 0
    ep.libInit(cfg)
    if ip is not None:
        tcfg = pj.TransportConfig()
        tcfg.port = port
        tcfg.boundAddress = ip
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    return ep


def add_tls_transport(ep: pj.Endpoint, ip: str, port: int, cert: str, key: str) -> None:
    """A TLS listener on ``ip:port`` presenting ``cert``; calls to ``sips:`` URIs go out through it. The phone
    verifies nobody (the B2BUA under test does the verifying)."""
    tcfg = pj.TransportConfig()
    tcfg.port = port
    tcfg.boundAddress = ip
    tcfg.tlsConfig.certFile = cert
    tcfg.tlsConfig.privKeyFile = key
    tcfg.tlsConfig.proto = pj.PJ_SSL_SOCK_PROTO_TLS1_2 | pj.PJ_SSL_SOCK_PROTO_TLS1_3
    ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tcfg)


def emit(event: str, **kw: Any) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic(), 3), **kw}), flush=True)


class Phone:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.call: PhoneCall | None = None
        self.done = False
        self.confirmed_at: float | None = None
        self.tone: pj.ToneGenerator | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.sent_dtmf = False
        self.held = False
        self.unheld = False
        self.answer_at = 0.0
        self.script: list[tuple[float, str]] = []


class PhoneCall(pj.Call):  # type: ignore[misc]
    def __init__(self, phone: Phone, acc: pj.Account, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.phone = phone

    def onCallState(self, prm: Any) -> None:
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED and self.phone.confirmed_at is None:
            self.phone.confirmed_at = time.monotonic()
            emit("confirmed", remote=ci.remoteUri)
        elif ci.state == pj.PJSIP_INV_STATE_EARLY:
            emit("early", code=ci.lastStatusCode)
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            emit("disconnected", code=ci.lastStatusCode, reason=ci.lastReason)
            self.phone.done = True

    def onCallMediaState(self, prm: Any) -> None:
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            emit("media", status=int(mi.status), proto=_profile(self, mi))
            if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                am = self.getAudioMedia(mi.index)
                if self.phone.tone is not None:
                    self.phone.tone.startTransmit(am)
                if self.phone.recorder is not None:
                    am.startTransmit(self.phone.recorder)

    def onDtmfDigit(self, prm: Any) -> None:
        emit("dtmf", digit=prm.digit)

    def onCallSdpCreated(self, prm: Any) -> None:
        emit("sdp", local=str(prm.sdp.wholeSdp), remote=str(prm.remSdp.wholeSdp))


_PROFILES = {pj.PJMEDIA_TP_PROTO_RTP_AVP: "RTP/AVP", pj.PJMEDIA_TP_PROTO_RTP_SAVP: "RTP/SAVP"}


def _profile(call: pj.Call, mi: Any) -> str:
    """The negotiated media profile of an active stream ("" while there is none)."""
    if mi.status not in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
        return ""
    proto = int(call.getStreamInfo(mi.index).proto)
    return _PROFILES.get(proto, str(proto))


class PhoneAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, phone: Phone) -> None:
        super().__init__()
        self.phone = phone

    def onIncomingCall(self, prm: Any) -> None:
        call = PhoneCall(self.phone, self, prm.callId)
        self.phone.call = call
        ci = call.getInfo()
        emit("incoming", remote=ci.remoteUri, invite=str(prm.rdata.wholeMsg))
        op = pj.CallOpParam()
        op.statusCode = 180
        call.answer(op)
        self.phone.answer_at = time.monotonic() + self.phone.args.answer_after_s


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ip", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rtp-port", type=int, default=40000)
    ap.add_argument("--call", help="URI to call; without it the phone answers")
    ap.add_argument("--answer-after-s", type=float, default=0.2)
    ap.add_argument("--tone-hz", type=float, default=0.0)
    ap.add_argument("--record", default="")
    ap.add_argument("--dtmf", default="", help="digits to send 1 s after the call is up")
    ap.add_argument("--hold-at-s", type=float, default=0.0, help="put the call on hold this long after answer")
    ap.add_argument("--unhold-at-s", type=float, default=0.0)
    ap.add_argument("--hangup-after-s", type=float, default=0.0, help="hang up this long after answer")
    ap.add_argument("--max-s", type=float, default=30.0)
    ap.add_argument("--caller", default="15551230001", help="user part of From on calls this phone makes")
    ap.add_argument("--dtmf-script", default="", help="'secs:digits;secs:digits' after answer (keypad codes)")
    ap.add_argument("--dtmf-method", choices=("rfc2833", "info"), default="rfc2833")
    ap.add_argument("--tls-port", type=int, default=0, help="also listen (and call) over TLS on this port")
    ap.add_argument("--tls-cert", default="", help="PEM certificate for --tls-port (also our client certificate)")
    ap.add_argument("--tls-key", default="")
    ap.add_argument("--srtp", choices=("off", "optional", "mandatory"), default="off",
                    help="SDES-SRTP on the phone's calls (keys sent over any transport: a test phone)")
    args = ap.parse_args()

    ep = start_endpoint(args.ip, args.port)
    if args.tls_port:
        add_tls_transport(ep, args.ip, args.tls_port, args.tls_cert, args.tls_key)
    for ci in ep.codecEnum2():
        ep.codecSetPriority(ci.codecId, 200 if ci.codecId.startswith("PCMU/") else 0)

    phone = Phone(args)
    phone.script = sorted((float(t), d) for t, d in (x.split(":", 1) for x in args.dtmf_script.split(";") if x))
    acfg = pj.AccountConfig()
    # a sips: identity gives TLS dialogs the sips: Contact that a sips: request requires (RFC 5630)
    acfg.idUri = f"sips:phone@{args.ip}:{args.tls_port}" if args.tls_port else f"sip:phone@{args.ip}:{args.port}"
    if args.tls_port:  # pjsua would write the interface address toward the peer into a TLS Contact
        acfg.sipConfig.contactForced = f"<{acfg.idUri}>"
    acfg.mediaConfig.transportConfig.port = args.rtp_port
    acfg.mediaConfig.transportConfig.boundAddress = args.ip
    acfg.mediaConfig.srtpUse = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
                                "mandatory": pj.PJMEDIA_SRTP_MANDATORY}[args.srtp]
    acfg.mediaConfig.srtpSecureSignaling = 0
    acc = PhoneAccount(phone)
    acc.create(acfg, True)

    if args.tone_hz:
        phone.tone = pj.ToneGenerator()
        phone.tone.createToneGenerator(8000, 1)
        td = pj.ToneDesc()
        td.freq1 = int(args.tone_hz)
        td.freq2 = 0
        td.on_msec = 1000
        td.off_msec = 0
        td.volume = 0
        tv = pj.ToneDescVector()
        tv.append(td)
        phone.tone.play(tv, True)
    if args.record:
        phone.recorder = pj.AudioMediaRecorder()
        phone.recorder.createRecorder(args.record)

    if args.call:
        phone.call = PhoneCall(phone, acc)
        op = pj.CallOpParam(True)
        op.txOption.localUri = f'"Phone Caller" <sip:{args.caller}@{args.ip}:{args.port}>'
        phone.call.makeCall(args.call, op)
        emit("calling", uri=args.call)
    emit("ready")

    deadline = time.monotonic() + args.max_s
    while not phone.done and time.monotonic() < deadline:
        ep.libHandleEvents(10)
        now = time.monotonic()
        call = phone.call
        if call is None:
            continue
        answer_at = phone.answer_at
        if not args.call and answer_at and now >= answer_at:
            phone.answer_at = 0.0
            op = pj.CallOpParam()
            op.statusCode = 200
            call.answer(op)
        up = phone.confirmed_at
        if up is None:
            continue
        if args.dtmf and not phone.sent_dtmf and now - up >= 1.0:
            phone.sent_dtmf = True
            p = pj.CallSendDtmfParam()
            p.method = pj.PJSUA_DTMF_METHOD_RFC2833
            p.digits = args.dtmf
            call.sendDtmf(p)
            emit("sent-dtmf", digits=args.dtmf)
        while phone.script and now - up >= phone.script[0][0]:
            _, digits = phone.script.pop(0)
            p = pj.CallSendDtmfParam()
            p.method = pj.PJSUA_DTMF_METHOD_SIP_INFO if args.dtmf_method == "info" else pj.PJSUA_DTMF_METHOD_RFC2833
            p.digits = digits
            call.sendDtmf(p)
            emit("sent-dtmf", digits=digits, method=args.dtmf_method)
        if args.hold_at_s and not phone.held and now - up >= args.hold_at_s:
            phone.held = True
            call.setHold(pj.CallOpParam(True))
            emit("hold")
        if args.unhold_at_s and not phone.unheld and now - up >= args.unhold_at_s:
            phone.unheld = True
            op = pj.CallOpParam(True)
            op.opt.flag = pj.PJSUA_CALL_UNHOLD
            call.reinvite(op)
            emit("unhold")
        if args.hangup_after_s and now - up >= args.hangup_after_s:
            args.hangup_after_s = 0.0
            call.hangup(pj.CallOpParam())
            emit("hangup")
    if not phone.done and phone.call is not None:
        phone.call.hangup(pj.CallOpParam())
        for _ in range(50):
            ep.libHandleEvents(10)
    phone.call = None
    phone.recorder = None  # closes the WAV file
    phone.tone = None
    for _ in range(5):
        ep.libHandleEvents(10)
    ep.libDestroy()
    emit("exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())

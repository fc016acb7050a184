"""The SIP engine: one thread that owns every pjsua2 object.

Rules (shared/README §2): the thread creates the Endpoint and makes every pjsua2 call; it runs
``libHandleEvents`` then drains a command queue. asyncio talks to it only through the typed methods below,
which return ``concurrent.futures.Future``; events leave as frozen dataclasses through
``loop.call_soon_threadsafe``. Call wrappers are dropped on the turn after DISCONNECTED, never inside a
callback, and all of them before ``libDestroy``. Callback bodies are wrapped: pjsua2 would swallow errors.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import itertools
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pjsua2 as pj

from b2bua.media.tones import TONES
from b2bua.sip import message
from b2bua.sip.types import (
    Admit,
    BuildLimits,
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

T = TypeVar("T")

# PyPI wheels (no marker of ours) are compiled with these; see shared/README §1
_PYPI_ACC, _PYPI_HANDLES = 8, 64


@dataclass(frozen=True, slots=True)
class EngineConfig:
    listen_ip: str
    listen_port: int
    public_host: str
    rtp_port_start: int
    rtp_port_count: int
    codecs: tuple[str, ...]
    user_agent: str
    poll_ms: int
    log_level: int
    media_threads: int
    media_nice: int = 0
    ptime_ms: int = 20  # packetisation of what we send and the conference bridge's frame
    credentials: tuple[tuple[str, str, str], ...] = ()  # (realm, username, password) for challenges to our INVITEs


def _thread_ids() -> set[int]:
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:  # not Linux: nothing to renice
        return set()


def read_build_limits() -> BuildLimits:
    """Limits of the pjsua2 module actually importable, without starting an endpoint.

    ``maxCalls``/``maxMediaPorts`` default to the compiled PJSUA_MAX_CALLS/PJSUA_MAX_CONF_PORTS, so they are
    read from the library itself; the rest comes from the marker our build script writes into the module.
    """
    cfg = pj.EpConfig()
    marker: dict[str, int] = getattr(pj, "__b2bua_limits__", {})
    build = getattr(pj, "__b2bua_build__", "pypi-wheel")
    return BuildLimits(
        max_calls=int(cfg.uaConfig.maxCalls),
        max_conf_ports=int(cfg.medConfig.maxMediaPorts),
        max_accounts=int(marker.get("PJSUA_MAX_ACC", _PYPI_ACC)),
        ioqueue_max_handles=int(marker.get("PJ_IOQUEUE_MAX_HANDLES", _PYPI_HANDLES)),
        pjsip_version=_pj_version(),
        build=str(build),
    )


def _pj_version() -> str:
    from importlib import metadata

    for dist in ("pjsua2", "pjsua2-python"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


class EngineCommandError(RuntimeError):
    """A pjsua2 call made for a command failed."""

    def __init__(self, status: int, reason: str, title: str) -> None:
        super().__init__(f"{title}: {reason} (status {status})")
        self.status = status


class _LogWriter(pj.LogWriter):  # type: ignore[misc]
    def __init__(self, sink: Callable[[int, str], None]) -> None:
        super().__init__()
        self._sink = sink

    def write(self, entry: Any) -> None:
        try:
            self._sink(int(entry.level), str(entry.msg).rstrip())
        except Exception:  # logging must never take the engine down
            pass


class _Leg(pj.Call):  # type: ignore[misc]
    """One SIP dialog. Only the SIP thread touches it."""

    def __init__(self, eng: SipEngine, acc: pj.Account, leg_id: str, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.eng = eng
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
        self.rtp_timeout_s = 0.0  # > 0: hang up when no RTP arrives for this long (see _watch_media)
        self.rx_pkts = -1
        self.rx_changed = 0.0

    def onCallState(self, prm: Any) -> None:
        self.eng._guard("onCallState", self.eng._on_state, self)

    def onCallMediaState(self, prm: Any) -> None:
        self.eng._guard("onCallMediaState", self.eng._on_media, self)

    def onDtmfDigit(self, prm: Any) -> None:
        self.eng._guard("onDtmfDigit", self.eng._on_dtmf, self, str(prm.digit), int(prm.duration))


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, eng: SipEngine) -> None:
        super().__init__()
        self.eng = eng

    def onIncomingCall(self, prm: Any) -> None:
        self.eng._guard("onIncomingCall", self.eng._on_incoming, self, prm)


class SipEngine:
    """Owns the pjsua2 Endpoint in its own thread. Methods are safe to call from any thread."""

    def __init__(
        self,
        config: EngineConfig,
        screen: Callable[[InboundInvite], ScreenResult],
        emit: Callable[[EngineEvent], None],
        log: Callable[[int, str], None],
    ) -> None:
        self._cfg = config
        self._screen = screen
        self._emit = emit
        self._log = log
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="sip-engine", daemon=True)
        self._ready: concurrent.futures.Future[BuildLimits] = concurrent.futures.Future()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._legs: dict[str, _Leg] = {}
        self._reap: list[str] = []
        self._watched: set[str] = set()  # legs with an RTP timeout (persistent lines: few)
        # Waking the thread: it sleeps in epoll inside libHandleEvents, which pjsua2 gives no way to interrupt.
        # A datagram of bare CRLF to our own SIP socket (a keep-alive, which pjsip consumes without a trace)
        # ends the wait, so a command runs at once instead of after up to poll_ms.
        self._sleeping = False
        self._wake_sent = False
        self._wake_sock = socket.socket(socket.AF_INET6 if ":" in config.listen_ip else socket.AF_INET,
                                        socket.SOCK_DGRAM)
        self._wake_sock.setblocking(False)
        wake_ip = config.listen_ip
        if ipaddress.ip_address(wake_ip).is_unspecified:
            wake_ip = "::1" if ":" in wake_ip else "127.0.0.1"
        self._wake_addr = (wake_ip, config.listen_port)
        self.wakes = 0
        self.last_turn = time.monotonic()
        self.turns = 0
        self.leg_count = 0  # read from other threads: a plain int is atomic enough for a gauge

    # ---------------------------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 15.0) -> BuildLimits:
        self._thread.start()
        return self._ready.result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake()
        self._thread.join(timeout)
        self._wake_sock.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping.is_set()

    def new_leg_id(self) -> str:
        return f"L{next(self._ids)}"

    # ---------------------------------------------------------------------------------- commands
    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        if not self._thread.is_alive():
            fut.set_exception(RuntimeError("SIP engine is not running"))
            return fut
        self._commands.put((fn, fut))
        if self._sleeping and not self._wake_sent:
            self._wake()
        return fut

    def _wake(self) -> None:
        self._wake_sent = True
        self.wakes += 1
        with contextlib.suppress(OSError):  # a full socket buffer means the thread is busy anyway
            self._wake_sock.sendto(b"\r\n\r\n", self._wake_addr)

    def make_call(self, leg_id: str, uri: str, from_uri: str, headers: Headers = ()) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._make_call(leg_id, uri, from_uri, headers))

    def respond(self, leg_id: str, code: int, headers: Headers = ()) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._respond(leg_id, code, headers))

    def hangup(self, leg_id: str, headers: Headers = ()) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._hangup(leg_id, headers))

    def link(self, a: str, b: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._link(a, b))

    def set_hold(self, leg_id: str, held: bool) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._set_hold(leg_id, held))

    def send_dtmf(self, leg_id: str, digits: str, duration_ms: int = 160) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._send_dtmf(leg_id, digits, duration_ms))

    def play_tone(self, leg_id: str, name: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._play_tone(leg_id, name))

    def stop_tone(self, leg_id: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._stop_tone(leg_id))

    def play_file(self, leg_id: str, path: str, loop: bool = False) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._play_file(leg_id, path, loop))

    def stop_file(self, leg_id: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._stop_file(leg_id))

    def unlink(self, leg_id: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._unlink_leg(leg_id))

    def watch_media(self, leg_id: str, timeout_s: float) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._set_watch(leg_id, timeout_s))

    def record(self, leg_id: str, path: str) -> concurrent.futures.Future[None]:
        return self.submit(lambda: self._record(leg_id, path))

    # ---------------------------------------------------------------------------------- the thread
    def _run(self) -> None:
        try:
            ep = self._init()
        except BaseException as e:
            self._ready.set_exception(_readable(e))
            return
        self._ready.set_result(read_build_limits())
        poll = self._cfg.poll_ms
        next_watch = 0.0
        try:
            while not self._stopping.is_set():
                self._sleeping = True  # before looking at the queue: a command put after the look wakes us
                ep.libHandleEvents(0 if not self._commands.empty() else poll)
                self._sleeping = False
                self._wake_sent = False
                self._drain()
                self._do_reap()
                if self._watched and time.monotonic() >= next_watch:
                    next_watch = time.monotonic() + 0.5
                    self._watch_media()
                self.turns += 1
                self.last_turn = time.monotonic()
            self._shutdown(ep)
        except BaseException as e:  # the engine dying must be visible
            self._log(1, f"SIP engine thread died: {e!r}")
            self._emit(EngineFault("engine-thread", repr(e)))
            raise

    def _init(self) -> pj.Endpoint:
        c = self._cfg
        before = _thread_ids()
        ep = pj.Endpoint()
        ep.libCreate()
        self._ep = ep
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = cfg.uaConfig.maxCalls  # the compiled maximum
        cfg.uaConfig.userAgent = c.user_agent
        cfg.logConfig.level = c.log_level
        cfg.logConfig.consoleLevel = 0
        self._writer = _LogWriter(self._log)
        cfg.logConfig.writer = self._writer
        cfg.logConfig.decor = 0
        cfg.medConfig.threadCnt = c.media_threads
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.channelCount = 1
        # The bridge's work is per frame and per port: a 40 ms frame halves it (and a 40 ms packet halves the
        # sends), for 20 ms more mouth-to-ear delay.
        cfg.medConfig.audioFramePtime = c.ptime_ms
        ep.libInit(cfg)

        tcfg = pj.TransportConfig()
        tcfg.port = c.listen_port
        tcfg.boundAddress = c.listen_ip
        if c.public_host:
            tcfg.publicAddress = c.public_host
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        ep.libStart()
        # no sound device, but a clock for the conference bridge
        ep.audDevManager().setNullDev()
        if c.media_nice:
            self._deprioritise(_thread_ids() - before, c.media_nice)

        wanted = {x.lower() for x in c.codecs}
        for ci in ep.codecEnum2():
            cid = str(ci.codecId)
            name = cid.rsplit("/", 1)[0] if cid.count("/") >= 2 else cid
            ep.codecSetPriority(cid, 200 if name.lower() in wanted else 0)
            if name.lower() in wanted and c.ptime_ms != 20:
                self._set_ptime(ep, cid, c.ptime_ms)

        acfg = pj.AccountConfig()
        host = c.public_host or c.listen_ip
        acfg.idUri = f"sip:b2bua@{host}:{c.listen_port}"
        acfg.mediaConfig.transportConfig.port = c.rtp_port_start
        acfg.mediaConfig.transportConfig.portRange = c.rtp_port_count
        acfg.mediaConfig.transportConfig.boundAddress = c.listen_ip
        acfg.mediaConfig.lockCodecEnabled = False
        acfg.sipConfig.contactForced = f"<sip:b2bua@{host}:{c.listen_port}>"
        for realm, user, password in c.credentials:  # pjsua answers 401/407 itself; never with a wildcard realm
            acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", realm, user, 0, password))
        self._acc = _Account(self)
        self._acc.create(acfg, True)
        return ep

    def _set_ptime(self, ep: pj.Endpoint, cid: str, ptime_ms: int) -> None:
        """Packets of ``ptime_ms`` (whole codec frames; G.711 frames are 10 ms). pjmedia's SDP names no a=ptime,
        so peers keep sending their own packetisation, which the jitter buffer takes as it comes."""
        param = ep.codecGetParam(cid)
        frame_ms = max(1, int(param.info.frameLen))
        param.setting.frmPerPkt = max(1, ptime_ms // frame_ms)
        ep.codecSetParam(cid, param)
        self._log(4, f"{cid}: {param.setting.frmPerPkt} frames of {frame_ms} ms per packet")

    def _deprioritise(self, tids: set[int], nice: int) -> None:
        """Lower the threads pjmedia started (RTP ioqueue, conference clock): under heavy media load they must
        not starve the SIP thread and asyncio, which would turn into slow call set-up and retransmissions."""
        for tid in tids:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
            except OSError as e:
                self._log(2, f"cannot renice media thread {tid}: {e}")
        self._log(4, f"media threads {sorted(tids)} at nice {nice}")

    def _drain(self) -> None:
        while True:
            try:
                fn, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except pj.Error as e:  # SWIG's proxy says nothing useful: keep the status and reason
                fut.set_exception(EngineCommandError(int(e.status), str(e.reason), str(e.title)))
            except BaseException as e:
                fut.set_exception(e)

    def _do_reap(self) -> None:
        if self._reap:
            for leg_id in self._reap:
                self._legs.pop(leg_id, None)
            self._reap.clear()
            self.leg_count = len(self._legs)

    def _shutdown(self, ep: pj.Endpoint) -> None:
        self._drain()
        for leg in list(self._legs.values()):
            if not leg.ended:
                with contextlib.suppress(Exception):
                    leg.hangup(pj.CallOpParam())
        deadline = time.monotonic() + 3.0
        while any(not leg.ended for leg in self._legs.values()) and time.monotonic() < deadline:
            ep.libHandleEvents(20)
        for _ in range(10):
            ep.libHandleEvents(10)
        self._legs.clear()
        self._reap.clear()
        self._acc.shutdown()
        del self._acc
        ep.libDestroy()
        self._drain()  # fail whatever arrived meanwhile
        while True:
            try:
                _, fut = self._commands.get_nowait()
            except queue.Empty:
                break
            fut.set_exception(RuntimeError("SIP engine stopped"))

    def _guard(self, where: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:
            self._log(1, f"error in {where}: {e!r}")
            with contextlib.suppress(Exception):
                self._emit(EngineFault(where, repr(e)))

    # ---------------------------------------------------------------------------------- callbacks
    def _on_incoming(self, acc: _Account, prm: Any) -> None:
        now = time.monotonic()
        leg_id = self.new_leg_id()
        leg = _Leg(self, acc, leg_id, prm.callId)
        self._legs[leg_id] = leg
        self.leg_count = len(self._legs)
        rd = prm.rdata
        whole = str(rd.wholeMsg)
        req_line, headers = message.request_line_and_headers(whole)
        ruri = message.request_uri(req_line)
        src = str(rd.srcAddress)
        host, _, port = src.rpartition(":")
        from_hdr = message.header(headers, "From") or ""
        invite = InboundInvite(
            leg_id=leg_id,
            src_ip=host.strip("[]"),
            src_port=int(port) if port.isdigit() else 0,
            request_uri=ruri,
            called=message.uri_user(ruri),
            from_uri=from_hdr,
            from_user=message.uri_user(from_hdr),
            from_display=message.display_name(from_hdr),
            to_uri=message.header(headers, "To") or "",
            sip_call_id=message.header(headers, "Call-ID") or "",
            headers=headers,
            received_at=now,
            sdp=message.body(whole),
        )
        decision = self._screen(invite)
        if isinstance(decision, Reject):
            leg.silent = True
            # not inside the callback: pjsua defers such a hangup and drops its headers (Retry-After)
            self.submit(lambda: leg.ended or leg.hangup(_op(decision.code, decision.headers)))
            self._emit(InviteRejected(invite, decision.code, decision.reason, decision.detail))
            return
        assert isinstance(decision, Admit)
        self._emit(IncomingCall(invite, decision))

    def _on_state(self, leg: _Leg) -> None:
        ci = leg.getInfo()
        st = ci.state
        if st == pj.PJSIP_INV_STATE_EARLY and leg.outbound:
            if not leg.silent:
                self._emit(LegProgress(leg.leg_id, int(ci.lastStatusCode)))
        elif st == pj.PJSIP_INV_STATE_CONFIRMED:
            if not leg.silent:
                self._emit(LegAnswered(leg.leg_id))
        elif st == pj.PJSIP_INV_STATE_DISCONNECTED and not leg.ended:
            leg.ended = True
            self._unlink(leg)
            self._drop_tone(leg)
            self._drop_files(leg)  # before LegEnded: a recording is complete when the app hears the leg ended
            self._watched.discard(leg.leg_id)
            self._reap.append(leg.leg_id)
            if not leg.silent:
                self._emit(LegEnded(leg.leg_id, int(ci.lastStatusCode), str(ci.lastReason)))

    def _on_media(self, leg: _Leg) -> None:
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
            break
        leg.remote_hold = remote_hold
        self._connect(leg)
        if leg.audio is not None:
            if leg.tone_name:
                self._start_tone(leg)
            if leg.play_path and leg.player is None:
                self._start_player(leg)
            if leg.record_path:
                self._start_recorder(leg)
        seen = (active, remote_hold)
        if seen != leg.media_seen and not leg.silent:
            leg.media_seen = seen
            early = ci.state in (pj.PJSIP_INV_STATE_EARLY, pj.PJSIP_INV_STATE_CALLING)
            self._emit(LegMedia(leg.leg_id, active, remote_hold, early))

    def _on_dtmf(self, leg: _Leg, digit: str, duration: int) -> None:
        if not leg.silent:
            self._emit(LegDtmf(leg.leg_id, digit, duration))

    # ---------------------------------------------------------------------------------- command bodies
    def _leg(self, leg_id: str) -> _Leg | None:
        leg = self._legs.get(leg_id)
        return None if leg is None or leg.ended else leg

    def _make_call(self, leg_id: str, uri: str, from_uri: str, headers: Headers) -> None:
        leg = _Leg(self, self._acc, leg_id)
        self._legs[leg_id] = leg
        self.leg_count = len(self._legs)
        op = _op(0, headers)
        op.txOption.localUri = from_uri
        try:
            leg.makeCall(uri, op)
        except pj.Error as e:
            leg.ended = True
            self._reap.append(leg_id)
            self._emit(LegEnded(leg_id, 500, f"makeCall failed: {e.info()}"))

    def _respond(self, leg_id: str, code: int, headers: Headers) -> None:
        leg = self._leg(leg_id)
        if leg is None:
            return
        op = _op(code, headers)
        if code < 300:
            leg.answer(op)
        else:
            leg.hangup(op)

    def _hangup(self, leg_id: str, headers: Headers) -> None:
        leg = self._leg(leg_id)
        if leg is not None:
            leg.hangup(_op(0, headers))

    def _link(self, a: str, b: str) -> None:
        la, lb = self._legs.get(a), self._legs.get(b)
        if la is None or lb is None:
            return
        if la.peer != b:
            self._unlink_leg(a)
        if lb.peer != a:
            self._unlink_leg(b)
        la.peer, lb.peer = b, a
        self._connect(la)

    def _unlink_leg(self, leg_id: str) -> None:
        """Break a leg's link both ways (a persistent line moving from one call to another)."""
        leg = self._legs.get(leg_id)
        if leg is None or leg.peer is None:
            return
        peer = self._legs.get(leg.peer)
        if peer is not None:
            if leg.audio is not None and peer.audio is not None:
                with contextlib.suppress(pj.Error):
                    leg.audio.stopTransmit(peer.audio)
                    peer.audio.stopTransmit(leg.audio)
            if peer.peer == leg_id:
                peer.peer = None
        leg.peer = None

    def _set_watch(self, leg_id: str, timeout_s: float) -> None:
        leg = self._leg(leg_id)
        if leg is None:
            return
        leg.rtp_timeout_s = timeout_s
        leg.rx_pkts, leg.rx_changed = -1, time.monotonic()
        self._watched.add(leg_id)

    def _watch_media(self) -> None:
        """RTP timeout for watched legs: a phone that died without a BYE stops sending audio."""
        now = time.monotonic()
        for leg_id in list(self._watched):
            leg = self._leg(leg_id)
            if leg is None:
                self._watched.discard(leg_id)
                continue
            pkts = leg.rx_pkts
            if leg.audio_idx >= 0:
                with contextlib.suppress(pj.Error):
                    pkts = int(leg.getStreamStat(leg.audio_idx).rtcp.rxStat.pkt)
            if pkts != leg.rx_pkts or leg.remote_hold:
                leg.rx_pkts, leg.rx_changed = pkts, now
            elif now - leg.rx_changed >= leg.rtp_timeout_s:
                self._watched.discard(leg_id)
                self._log(2, f"RTP timeout on {leg_id}: nothing for {leg.rtp_timeout_s:.0f} s")
                leg.hangup(_op(0, (("Reason", 'SIP;cause=408;text="RTP timeout"'),)))

    def _connect(self, leg: _Leg) -> None:
        peer = self._legs.get(leg.peer) if leg.peer else None
        if peer is None or leg.audio is None or peer.audio is None:
            return
        leg.audio.startTransmit(peer.audio)
        peer.audio.startTransmit(leg.audio)

    def _play_tone(self, leg_id: str, name: str) -> None:
        leg = self._leg(leg_id)
        if leg is None:
            return
        if name not in TONES:
            raise ValueError(f"unknown tone {name!r}")
        leg.tone_name = name
        if leg.audio is not None:
            self._start_tone(leg)

    def _start_tone(self, leg: _Leg) -> None:
        if leg.tone is None:
            leg.tone = pj.ToneGenerator()
            leg.tone.createToneGenerator(8000, 1)
        vec = pj.ToneDescVector()
        for seg in TONES[leg.tone_name]:
            td = pj.ToneDesc()
            td.freq1, td.freq2, td.on_msec, td.off_msec, td.volume = seg.freq1, seg.freq2, seg.on_ms, seg.off_ms, 0
            vec.append(td)
        leg.tone.play(vec, True)
        assert leg.audio is not None
        leg.tone.startTransmit(leg.audio)

    def _stop_tone(self, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        leg.tone_name = ""
        if leg.tone is not None:
            leg.tone.stop()
            if leg.audio is not None:
                leg.tone.stopTransmit(leg.audio)

    def _drop_tone(self, leg: _Leg) -> None:
        if leg.tone is not None:
            leg.tone.stop()
            leg.tone = None  # the wrapper's destructor removes its conference port, here in the SIP thread
        leg.tone_name = ""

    def _play_file(self, leg_id: str, path: str, loop: bool) -> None:
        leg = self._leg(leg_id)
        if leg is None:
            return
        self._stop_file(leg_id)
        leg.play_path, leg.play_loop = path, loop
        if leg.audio is not None:
            self._start_player(leg)

    def _stop_file(self, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        if leg.player is not None and leg.audio is not None:
            with contextlib.suppress(pj.Error):
                leg.player.stopTransmit(leg.audio)
        leg.player = None
        leg.play_path = ""

    def _start_player(self, leg: _Leg) -> None:
        player = pj.AudioMediaPlayer()
        player.createPlayer(leg.play_path, 0 if leg.play_loop else pj.PJMEDIA_FILE_NO_LOOP)
        assert leg.audio is not None
        player.startTransmit(leg.audio)
        leg.player = player

    def _record(self, leg_id: str, path: str) -> None:
        leg = self._leg(leg_id)
        if leg is None:
            return
        leg.record_path = path
        if leg.audio is not None:
            self._start_recorder(leg)

    def _start_recorder(self, leg: _Leg) -> None:
        if leg.recorder is None:
            leg.recorder = pj.AudioMediaRecorder()
            leg.recorder.createRecorder(leg.record_path)
        assert leg.audio is not None
        leg.audio.startTransmit(leg.recorder)

    def _drop_files(self, leg: _Leg) -> None:
        # dropping the wrappers here, in the SIP thread, destroys the ports; the recorder finalises its WAV header
        leg.player = None
        leg.recorder = None
        leg.play_path = leg.record_path = ""

    def _unlink(self, leg: _Leg) -> None:
        peer = self._legs.get(leg.peer) if leg.peer else None
        if peer is not None and peer.peer == leg.leg_id:
            peer.peer = None
        leg.peer = None
        leg.audio = None

    def _set_hold(self, leg_id: str, held: bool) -> None:
        leg = self._leg(leg_id)
        if leg is None:
            return
        op = pj.CallOpParam(True)
        if held:
            leg.setHold(op)
        else:
            op.opt.flag = pj.PJSUA_CALL_UNHOLD
            leg.reinvite(op)

    def _send_dtmf(self, leg_id: str, digits: str, duration_ms: int) -> None:
        leg = self._leg(leg_id)
        if leg is None:
            return
        p = pj.CallSendDtmfParam()
        p.method = pj.PJSUA_DTMF_METHOD_RFC2833
        p.digits = digits
        p.duration = duration_ms
        leg.sendDtmf(p)


def _readable(e: BaseException) -> BaseException:
    """pjsua2's Error prints as an empty string: name the operation and pjlib's reason (e.g. address in use)."""
    reason = getattr(e, "reason", None)
    if not isinstance(e, pj.Error) or reason is None:
        return e
    return RuntimeError(f"{e.title}: {reason} (pj status {e.status})")


def _op(code: int, headers: Headers) -> pj.CallOpParam:
    op = pj.CallOpParam(True)
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

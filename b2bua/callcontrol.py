"""Runs bridged calls: screens INVITEs (SIP thread), feeds engine events to the sans-I/O call machines and
applies their actions through the engine (asyncio thread)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from b2bua.calls import bridge as br
from b2bua.calls import events as ev
from b2bua.calls.routing import Router
from b2bua.calls.trunkauth import TrunkAuthenticator
from b2bua.ops import logging as blog
from b2bua.ops.metrics import Metrics
from b2bua.sip import message
from b2bua.sip.types import (
    Admit,
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

# headers from a trusted trunk that carry the caller's identity onward
_PASSED_HEADERS = ("P-Asserted-Identity", "Privacy")


class Engine(Protocol):
    def new_leg_id(self) -> str: ...
    def make_call(self, leg_id: str, uri: str, from_uri: str,
                  headers: Headers = ...) -> concurrent.futures.Future[None]: ...
    def respond(self, leg_id: str, code: int, headers: Headers = ...) -> concurrent.futures.Future[None]: ...
    def hangup(self, leg_id: str, headers: Headers = ...) -> concurrent.futures.Future[None]: ...
    def link(self, a: str, b: str) -> concurrent.futures.Future[None]: ...
    def set_hold(self, leg_id: str, held: bool) -> concurrent.futures.Future[None]: ...
    def send_dtmf(self, leg_id: str, digits: str, duration_ms: int = ...) -> concurrent.futures.Future[None]: ...
    def play_tone(self, leg_id: str, name: str) -> concurrent.futures.Future[None]: ...
    def stop_tone(self, leg_id: str) -> concurrent.futures.Future[None]: ...
    def play_file(self, leg_id: str, path: str, loop: bool = ...) -> concurrent.futures.Future[None]: ...
    def stop_file(self, leg_id: str) -> concurrent.futures.Future[None]: ...
    def unlink(self, leg_id: str) -> concurrent.futures.Future[None]: ...
    def watch_media(self, leg_id: str, timeout_s: float) -> concurrent.futures.Future[None]: ...
    def record(self, leg_id: str, path: str) -> concurrent.futures.Future[None]: ...


class Machine(Protocol):
    """What every call state machine offers the runner."""

    answered_at: float | None

    @property
    def done(self) -> bool: ...
    def start(self, now: float) -> list[ev.Action]: ...
    def handle(self, event: ev.Event, now: float) -> list[ev.Action]: ...


class AdmissionGate:
    """Admission control shared by the SIP thread (INVITEs) and the asyncio thread (API calls, releases).

    Two limits, both sized from the benchmark: a ceiling on admitted calls (each holds media and conference
    ports), and a token bucket on the rate of new admissions (set-up work is what starves signalling first
    under a burst). A refusal names its reason and how long the peer should wait."""

    def __init__(self, ceiling: int, rate: float = 0.0, burst: int = 0, retry_after_s: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = ceiling
        self.retry_after_s = retry_after_s
        self._n = 0
        self._lock = threading.Lock()
        self._clock = clock
        self.closed = False
        self.set_rate(rate, burst)

    def set_rate(self, rate: float, burst: int = 0) -> None:
        """``rate`` admissions a second (0: unlimited); ``burst``: how many may come at once (0: a fifth of a
        second's worth, at least 1)."""
        with self._lock:
            self.rate = rate
            self.burst = float(burst or max(1, round(rate / 5)))
            self._tokens = self.burst
            self._stamp = self._clock()

    def admit(self) -> str | None:
        """Take one admission; returns why it is refused ("closed", "over-capacity", "over-rate") or None."""
        with self._lock:
            if self.closed:
                return "closed"
            if self._n >= self.ceiling:
                return "over-capacity"
            if self.rate > 0:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens < 1.0 - 1e-9:  # float sums of refills must not lose a token
                    return "over-rate"
                self._tokens -= 1.0
            self._n += 1
            return None

    def retry_after(self, reason: str) -> int:
        """A rate refusal clears within a second; a full house takes the configured while."""
        return 1 if reason == "over-rate" else self.retry_after_s

    def release(self) -> None:
        with self._lock:
            self._n = max(0, self._n - 1)

    @property
    def admitted(self) -> int:
        return self._n


@dataclass
class ActiveCall:
    id: str
    kind: str  # "trunk", "callback" or "test"
    machine: Machine
    legs: dict[str, str]  # role -> engine leg id, filled as legs are placed
    created: float  # wall clock, for the API
    user_id: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    invite: InboundInvite | None = None
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    log: Any = None
    last_notify: str = ""
    admitted_roles: set[str] = field(default_factory=set)  # party legs holding their own admission

    def summary(self) -> dict[str, Any]:
        state = getattr(self.machine, "state", "")
        return {
            "id": self.id,
            "kind": self.kind,
            "user_id": self.user_id or None,
            "state": getattr(state, "value", state),
            "status": self.last_notify or None,
            **self.info,
            "legs": dict(self.legs),
            "started": self.created,
            "answered": self.machine.answered_at is not None,
        }


@dataclass(frozen=True, slots=True)
class Local:
    """The called number belongs to us: a user (``user_id``), or a number we own that reaches nobody."""

    user_id: str = ""
    code: int = 404
    reason: str = "unknown-number"


@dataclass(frozen=True, slots=True)
class Attach:
    """Join an inbound leg to a running call (a keep-connected session) under ``role``, then feed ``event``."""

    call_id: str
    role: str
    event: Any


LocalLookup = Callable[[str, str], Local | None]  # (called number, trunk) -> ours? None: route it onwards
UserCallFactory = Callable[[InboundInvite, Admit], "tuple[Machine, dict[str, Any]] | Attach"]


_REJECT_LOG_LEVEL = {"auth-challenge": "debug", "auth-blocked": "debug", "auth-failed": "warning"}


class CallControl:
    def __init__(
        self,
        router: Router,
        trunk_auth: TrunkAuthenticator,
        gate: AdmissionGate,
        metrics: Metrics,
        *,
        our_host: str,
        no_answer_timeout_s: float,
        on_finished: Callable[[ActiveCall, ev.Finished], None] | None = None,
        on_notify: Callable[[ActiveCall, ev.Notify], None] | None = None,
        transit_check: Callable[[str, str], tuple[str, str] | None] | None = None,
        local_lookup: LocalLookup | None = None,
    ) -> None:
        self.router = router
        self.gate = gate
        self.metrics = metrics
        self.our_host = our_host
        self.no_answer_timeout_s = no_answer_timeout_s
        self.on_finished = on_finished
        self.on_notify = on_notify
        self.transit_check = transit_check
        self.local_lookup = local_lookup
        self.trunk_auth = trunk_auth
        self.user_calls: UserCallFactory | None = None  # set by the telecommuter service
        self.engine: Engine | None = None
        self.calls: dict[str, ActiveCall] = {}
        self._by_leg: dict[str, tuple[ActiveCall, br.Role]] = {}
        self._early: set[str] = set()
        self._log = blog.get("calls")
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------------ SIP thread: screening
    def screen(self, inv: InboundInvite) -> ScreenResult:
        """Runs in the SIP thread for every new INVITE, so that refusals cost no thread hop."""
        trunk = self.trunk_auth.identify(inv.src_ip, "INVITE", inv.request_uri, inv.headers)
        if isinstance(trunk, Reject):
            return trunk
        local = self.local_lookup(inv.called, trunk) if self.local_lookup is not None else None
        if local is not None:
            if not local.user_id:
                return Reject(local.code, local.reason)
            overload = self.gate.admit()
            if overload is not None:
                return self._overloaded(overload)
            return Admit(trunk, "", "", user_id=local.user_id)
        route = self.router.route(inv.called, trunk)
        if route is None:
            return Reject(404, "no-route")
        if self.transit_check is not None:
            refused = self.transit_check(trunk, inv.called)
            if refused is not None:
                rule, text = refused
                return Reject(403, f"dialling-rule:{rule}", (("Reason", f'SIP;cause=403;text="{text}"'),))
        overload = self.gate.admit()
        if overload is not None:
            return self._overloaded(overload)
        return Admit(trunk, route.uri, route.trunk)

    def _overloaded(self, reason: str) -> Reject:
        return Reject(503, reason, (("Retry-After", str(self.gate.retry_after(reason))),))

    # ------------------------------------------------------------------------ asyncio: events
    def on_event(self, ev: EngineEvent) -> None:
        try:
            self._dispatch(ev)
        except Exception:
            self._log.exception("event handling failed", engine_event=repr(ev))

    def _dispatch(self, ev: EngineEvent) -> None:
        now = time.monotonic()
        match ev:
            case IncomingCall():
                self._incoming(ev, now)
            case InviteRejected():
                self.metrics.rejected.labels(str(ev.code), ev.reason).inc()
                # a challenge precedes every authenticated call, and a blocked source may flood: not worth a line
                # each (the metric counts them); a failed password is a warning
                level = _REJECT_LOG_LEVEL.get(ev.reason, "info")
                getattr(self._log, level)("invite rejected", code=ev.code, reason=ev.reason, src=ev.invite.src_ip,
                                          called=ev.invite.called, sip_call_id=ev.invite.sip_call_id,
                                          **({"detail": ev.detail} if ev.detail else {}))
            case LegProgress():
                self._feed(ev.leg_id, lambda r: br.Progress(r, ev.code, ev.leg_id in self._early), now)
            case LegMedia():
                self._media(ev, now)
            case LegAnswered():
                self._feed(ev.leg_id, lambda r: br.Answered(r), now)
            case LegEnded():
                self._early.discard(ev.leg_id)
                self._release_party(ev.leg_id)
                self._feed(ev.leg_id, lambda r: br.Ended(r, ev.code, ev.reason), now)
            case LegDtmf():
                self._feed(ev.leg_id, lambda r: br.Dtmf(r, ev.digit, ev.duration_ms), now)
            case EngineFault():
                self.metrics.engine_faults.labels(ev.where).inc()
                self._log.error("engine fault", where=ev.where, error=ev.message)

    def _incoming(self, ev: IncomingCall, now: float) -> None:
        inv = ev.invite
        admit = ev.admit
        if admit.user_id:
            self._user_call(inv, admit, now)
            return
        call_id = uuid.uuid4().hex[:16]
        assert self.engine is not None
        b_leg = self.engine.new_leg_id()
        display = inv.from_display.replace('"', "")
        user = inv.from_user or "anonymous"
        from_uri = f'"{display}" <sip:{user}@{self.our_host}>' if display else f"<sip:{user}@{self.our_host}>"
        headers = tuple((n, v) for n in _PASSED_HEADERS if (v := message.header(inv.headers, n)) is not None)
        machine = br.BridgeCall(admit.target_uri, from_uri, self.no_answer_timeout_s, headers)
        info = {"caller": inv.from_user, "called": inv.called, "trunk_in": admit.trunk,
                "trunk_out": admit.target_trunk, "sip_call_id": inv.sip_call_id}
        call = ActiveCall(call_id, "trunk", machine, {"a": inv.leg_id, "b": b_leg}, time.time(), info=info,
                          invite=inv)
        call.log = self._log.bind(call_id=call_id, sip_call_id=inv.sip_call_id, a_leg=inv.leg_id, b_leg=b_leg)
        self._register(call)
        call.log.info("call in", caller=inv.from_user, called=inv.called, trunk=admit.trunk, src=inv.src_ip,
                      target=admit.target_uri)
        self._apply(call, machine.start(now), now)

    def _user_call(self, inv: InboundInvite, admit: Admit, now: float) -> None:
        assert self.user_calls is not None, "local numbers need the telecommuter service"
        made = self.user_calls(inv, admit)
        if isinstance(made, Attach):
            self._attach(inv, made, now)
            return
        machine, info = made
        call = ActiveCall(uuid.uuid4().hex[:16], "incoming", machine, {"caller": inv.leg_id}, time.time(),
                          user_id=admit.user_id, info={**info, "sip_call_id": inv.sip_call_id}, invite=inv)
        call.log = self._log.bind(call_id=call.id, sip_call_id=inv.sip_call_id, caller_leg=inv.leg_id,
                                  user_id=admit.user_id)
        self._register(call)
        call.log.info("call in for user", caller=inv.from_user, called=inv.called, trunk=admit.trunk,
                      src=inv.src_ip)
        self._apply(call, machine.start(now), now)

    def _attach(self, inv: InboundInvite, att: Attach, now: float) -> None:
        call = self.calls[att.call_id]
        call.legs[att.role] = inv.leg_id
        self._by_leg[inv.leg_id] = (call, att.role)
        call.admitted_roles.add(att.role)
        call.log.info("call joins session", role=att.role, caller=inv.from_user, called=inv.called,
                      sip_call_id=inv.sip_call_id)
        self._apply(call, call.machine.handle(att.event, now), now)

    def send(self, call_id: str, event: Any, admitted_role: str = "") -> ActiveCall | None:
        """Feed a user command (API/keypad) to a running call; ``admitted_role``: a new party leg that holds its
        own admission, released when that leg ends."""
        call = self.calls.get(call_id)
        if call is None:
            if admitted_role:
                self.gate.release()
            return None
        if admitted_role:
            call.admitted_roles.add(admitted_role)
        now = time.monotonic()
        self._apply(call, call.machine.handle(event, now), now)
        return call

    def start_machine(self, kind: str, machine: Machine, *, user_id: str = "",
                      info: dict[str, Any] | None = None) -> ActiveCall:
        """Run a call the API asked for (callback, test call). The caller already passed admission."""
        call = ActiveCall(uuid.uuid4().hex[:16], kind, machine, {}, time.time(), user_id=user_id, info=info or {})
        call.log = self._log.bind(call_id=call.id, kind=kind, user_id=user_id)
        self._register(call)
        call.log.info("call start", **(info or {}))
        now = time.monotonic()
        self._apply(call, machine.start(now), now)
        return call

    def _register(self, call: ActiveCall) -> None:
        self.calls[call.id] = call
        for role, leg in call.legs.items():
            self._by_leg[leg] = (call, role)
        self._idle.clear()
        self.metrics.active_calls.set(len(self.calls))

    def calls_of(self, user_id: str, kind: str | None = None) -> list[ActiveCall]:
        return [c for c in self.calls.values() if c.user_id == user_id and (kind is None or c.kind == kind)]

    def _media(self, ev: LegMedia, now: float) -> None:
        entry = self._by_leg.get(ev.leg_id)
        if entry is None:
            return
        call, _role = entry
        outbound = call.invite is None or call.invite.leg_id != ev.leg_id
        if ev.early and ev.active and outbound:
            self._early.add(ev.leg_id)
            self._feed(ev.leg_id, lambda r: br.Progress(r, 183, True), now)
        elif ev.active:
            self._feed(ev.leg_id, lambda r: br.HoldChanged(r, ev.remote_hold), now)

    def _release_party(self, leg_id: str) -> None:
        entry = self._by_leg.get(leg_id)
        if entry is not None and entry[1] in entry[0].admitted_roles:
            entry[0].admitted_roles.discard(entry[1])
            self.gate.release()

    def _feed(self, leg_id: str, make: Callable[[ev.Role], ev.Event], now: float) -> None:
        entry = self._by_leg.get(leg_id)
        if entry is None:
            return
        call, role = entry
        self._apply(call, call.machine.handle(make(role), now), now)

    def terminate(self, call_id: str, cause: str = "terminated by operator") -> bool:
        call = self.calls.get(call_id)
        if call is None:
            return False
        now = time.monotonic()
        self._apply(call, call.machine.handle(br.Terminate(cause), now), now)
        return True

    def terminate_all(self, cause: str) -> None:
        for cid in list(self.calls):
            self.terminate(cid, cause)

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    # ------------------------------------------------------------------------ actions
    def _apply(self, call: ActiveCall, actions: list[ev.Action], now: float) -> None:
        eng = self.engine
        assert eng is not None
        for act in actions:
            match act:
                case ev.PlaceCall():
                    leg = call.legs.get(act.role) or eng.new_leg_id()
                    call.legs[act.role] = leg
                    self._by_leg[leg] = (call, act.role)
                    fut = eng.make_call(leg, act.uri, act.from_uri, act.headers)
                    if call.invite is not None:
                        fut.add_done_callback(self._forwarded(call.invite.received_at))
                    self._watch(call, fut, "make_call")
                case ev.Link():
                    a, b = call.legs.get(act.first), call.legs.get(act.second)
                    if a and b:
                        self._watch(call, eng.link(a, b), "link")
                case ev.Respond():
                    self._watch(call, eng.respond(call.legs[act.role], act.code, act.headers), "respond")
                case ev.Answer():
                    self._watch(call, eng.respond(call.legs[act.role], 200), "answer")
                    self.metrics.answer_relay.observe(time.monotonic() - now)
                case ev.Hangup():
                    if act.role in call.legs:
                        self._watch(call, eng.hangup(call.legs[act.role], act.headers), "hangup")
                case ev.SetHold():
                    self._watch(call, eng.set_hold(call.legs[act.role], act.held), "hold")
                    call.log.info("hold" if act.held else "unhold", toward=act.role)
                case ev.SendDtmf():
                    self._watch(call, eng.send_dtmf(call.legs[act.role], act.digit, act.duration_ms), "dtmf")
                case ev.PlayTone():
                    if act.role in call.legs:
                        self._watch(call, eng.play_tone(call.legs[act.role], act.tone), "play_tone")
                case ev.StopTone():
                    if act.role in call.legs:
                        self._watch(call, eng.stop_tone(call.legs[act.role]), "stop_tone")
                case ev.PlayFile():
                    if act.role in call.legs:
                        self._watch(call, eng.play_file(call.legs[act.role], act.path, act.loop), "play_file")
                case ev.StopFile():
                    if act.role in call.legs:
                        self._watch(call, eng.stop_file(call.legs[act.role]), "stop_file")
                case ev.Unlink():
                    if act.role in call.legs:
                        self._watch(call, eng.unlink(call.legs[act.role]), "unlink")
                case ev.WatchMedia():
                    if act.role in call.legs:
                        self._watch(call, eng.watch_media(call.legs[act.role], act.timeout_s), "watch_media")
                case ev.StartRecording():
                    if act.role in call.legs:
                        self._watch(call, eng.record(call.legs[act.role], act.path), "record")
                case ev.StartTimer():
                    loop = asyncio.get_running_loop()
                    old = call.timers.pop(act.name, None)
                    if old is not None:
                        old.cancel()
                    call.timers[act.name] = loop.call_later(act.delay_s, self._timer, call, act.name)
                case ev.CancelTimer():
                    h = call.timers.pop(act.name, None)
                    if h is not None:
                        h.cancel()
                case ev.Notify():
                    call.last_notify = act.state
                    call.log.info("call state", state=act.state, **act.detail)
                    if self.on_notify is not None:
                        self.on_notify(call, act)
                case ev.Finished():
                    self._finished(call, act)

    def _forwarded(self, received_at: float) -> Callable[[concurrent.futures.Future[None]], None]:
        def done(f: concurrent.futures.Future[None]) -> None:
            if f.exception() is None:
                self.metrics.setup_forward.observe(time.monotonic() - received_at)

        return done

    def _timer(self, call: ActiveCall, name: str) -> None:
        call.timers.pop(name, None)
        if call.id in self.calls:
            now = time.monotonic()
            self._apply(call, call.machine.handle(br.TimerFired(name), now), now)

    def _watch(self, call: ActiveCall, fut: concurrent.futures.Future[None], what: str) -> None:
        def done(f: concurrent.futures.Future[None]) -> None:
            e = f.exception()
            if e is not None:
                call.log.warning("engine command failed", command=what, error=repr(e))

        fut.add_done_callback(done)

    def _finished(self, call: ActiveCall, fin: ev.Finished) -> None:
        for h in call.timers.values():
            h.cancel()
        call.timers.clear()
        self.calls.pop(call.id, None)
        for leg in call.legs.values():
            self._by_leg.pop(leg, None)
            self._early.discard(leg)
        self.gate.release()
        for _ in call.admitted_roles:
            self.gate.release()
        call.admitted_roles.clear()
        self.metrics.calls.labels(fin.outcome).inc()
        self.metrics.active_calls.set(len(self.calls))
        duration = fin.ended_at - fin.answered_at if fin.answered_at is not None else 0.0
        call.log.info("call end", outcome=fin.outcome, code=fin.code, duration_s=round(duration, 3))
        if self.on_finished is not None:
            try:
                self.on_finished(call, fin)
            except Exception:
                call.log.exception("recording the finished call failed")
        if not self.calls:
            self._idle.set()

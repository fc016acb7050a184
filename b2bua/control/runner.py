"""The call runner (asyncio thread): the table of running calls, engine leg events fed to their machines, and
the machines' actions applied through the engine.

Every call holds one admission from the gate for its life, plus one per party leg admitted on its own (a
keep-connected session's parties); all of them are given back when the call finishes, whatever way it ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from b2bua.calls import events as call_events
from b2bua.calls.machine import CallKind, Machine
from b2bua.control.active import ActiveCall
from b2bua.control.admission import AdmissionGate
from b2bua.control.interfaces import CallObserver, Engine, Feed
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.sip.types import InboundInvite, LegAnswered, LegDtmf, LegEnded, LegMedia, LegProgress

T = TypeVar("T")
MediaAction = (call_events.PlayTone | call_events.StopTone | call_events.PlayFile | call_events.StopFile
               | call_events.Unlink | call_events.WatchMedia | call_events.StartRecording)
LegEvent = LegProgress | LegMedia | LegAnswered | LegEnded | LegDtmf


class CallRunner:
    def __init__(self, engine: Engine, gate: AdmissionGate, metrics: Metrics, observer: CallObserver) -> None:
        self.engine = engine
        self.gate = gate
        self.metrics = metrics
        self.observer = observer
        self._calls: dict[str, ActiveCall] = {}
        self._by_leg: dict[str, tuple[ActiveCall, str]] = {}
        self._early: set[str] = set()  # outbound legs whose early media is flowing
        self._log = get_logger("calls")
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------------ the table
    @property
    def calls(self) -> Mapping[str, ActiveCall]:
        return self._calls

    def get(self, call_id: str) -> ActiveCall | None:
        return self._calls.get(call_id)

    def calls_of(self, user_id: str, kind: CallKind | None = None) -> list[ActiveCall]:
        return [c for c in self._calls.values() if c.user_id == user_id and (kind is None or c.kind is kind)]

    def owns_leg(self, leg_id: str) -> bool:
        return leg_id in self._by_leg

    def call_of_leg(self, leg_id: str) -> ActiveCall | None:
        entry = self._by_leg.get(leg_id)
        return entry[0] if entry else None

    def new_leg_id(self) -> str:
        return self.engine.new_leg_id()

    # ------------------------------------------------------------------------ starting and driving calls
    def start(self, kind: CallKind, machine: Machine, *, user_id: str = "", legs: dict[str, str] | None = None,
              info: dict[str, Any] | None = None, invite: InboundInvite | None = None,
              log_context: Mapping[str, Any] | None = None) -> ActiveCall:
        """Run a new call. Its admission was taken already (screening for INVITEs, the domain for API calls)."""
        call_id = uuid.uuid4().hex[:16]
        log = self._log.bind(call_id=call_id, kind=kind.value, **(log_context or {}))
        call = ActiveCall(call_id, kind, machine, dict(legs or {}), time.time(), log, user_id=user_id,
                          info=dict(info or {}), invite=invite)
        self._calls[call.id] = call
        for role, leg in call.legs.items():
            self._by_leg[leg] = (call, role)
        self._idle.clear()
        self.metrics.active_calls.set(len(self._calls))
        self._step(call, "start", machine.start)
        return call

    def attach(self, call_id: str, role: str, leg_id: str, feed: Feed) -> bool:
        """Join an inbound leg (with its own admission) to a running call; False if the call is gone."""
        call = self._calls.get(call_id)
        if call is None:
            return False
        call.legs[role] = leg_id
        self._by_leg[leg_id] = (call, role)
        call.admitted_roles.add(role)
        self._step(call, "attach", feed)
        return True

    def drive(self, call_id: str, feed: Feed, admitted_role: str = "") -> ActiveCall | None:
        """Feed a user command (API, keypad) to a running call. ``admitted_role``: a new party leg that holds its
        own admission, given back when that leg ends (or at once if the call is gone)."""
        call = self._calls.get(call_id)
        if call is None:
            if admitted_role:
                self.gate.release()
            return None
        if admitted_role:
            call.admitted_roles.add(admitted_role)
        self._step(call, "command", feed)
        return call

    def release_unplaced(self, call_id: str, role: str) -> None:
        """A party the machine refused before placing it: give its admission back."""
        call = self._calls.get(call_id)
        if call is not None:
            self._release_unplaced(call, role)

    def _release_unplaced(self, call: ActiveCall, role: str) -> None:
        if role not in call.legs and role in call.admitted_roles:
            call.admitted_roles.discard(role)
            self.gate.release()

    def terminate(self, call_id: str, cause: str = "terminated by operator") -> bool:
        call = self._calls.get(call_id)
        if call is None:
            return False
        self._step(call, "terminate", lambda now: call.machine.handle(call_events.Terminate(cause), now))
        return True

    def terminate_all(self, cause: str) -> None:
        for call_id in list(self._calls):
            self.terminate(call_id, cause)

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    # ------------------------------------------------------------------------ engine leg events
    def on_leg_event(self, event: LegEvent) -> None:
        now = time.monotonic()
        match event:
            case LegProgress():
                early = event.leg_id in self._early
                self._feed(event.leg_id, lambda r: call_events.Progress(r, event.code, early), now)
            case LegMedia():
                self._media(event, now)
            case LegAnswered():
                self._feed(event.leg_id, call_events.Answered, now)
            case LegEnded():
                self._early.discard(event.leg_id)
                self._release_party(event.leg_id)
                self._feed(event.leg_id, lambda r: call_events.Ended(r, event.code, event.reason), now)
            case LegDtmf():
                self._feed(event.leg_id, lambda r: call_events.Dtmf(r, event.digit, event.duration_ms), now)

    def _media(self, event: LegMedia, now: float) -> None:
        entry = self._by_leg.get(event.leg_id)
        if entry is None:
            return
        call, _role = entry
        outbound = call.invite is None or call.invite.leg_id != event.leg_id
        if event.early and event.active and outbound:
            self._early.add(event.leg_id)
            self._feed(event.leg_id, lambda r: call_events.Progress(r, 183, True), now)
        elif event.active:
            self._feed(event.leg_id, lambda r: call_events.HoldChanged(r, event.remote_hold), now)

    def _release_party(self, leg_id: str) -> None:
        entry = self._by_leg.get(leg_id)
        if entry is not None and entry[1] in entry[0].admitted_roles:
            entry[0].admitted_roles.discard(entry[1])
            self.gate.release()

    def _feed(self, leg_id: str, make: Callable[[str], call_events.Event], now: float) -> None:
        entry = self._by_leg.get(leg_id)
        if entry is None:
            return
        call, role = entry
        self._step(call, "leg-event", lambda at: call.machine.handle(make(role), at), now)

    # ------------------------------------------------------------------------ faults
    def _step(self, call: ActiveCall, stage: str, produce: Feed, now: float | None = None) -> None:
        """Feed the machine and apply its actions; whatever raises, the call ends cleanly instead of lingering
        with its legs up and its admissions taken."""
        at = time.monotonic() if now is None else now
        try:
            self._apply(call, produce(at), at)
        except Exception as e:
            if call.id in self._calls:
                self._fail(call, stage, e, at)
            else:
                call.log.exception("failure after the call finished", stage=stage)

    def _fail(self, call: ActiveCall, stage: str, error: Exception, now: float) -> None:
        """End a call whose handling failed: an unanswered inbound leg gets 500, every other leg a BYE/CANCEL,
        all with a Reason; its admissions go back and its record says ``fault``."""
        self.metrics.call_faults.labels(stage).inc()
        call.log.exception("call handling failed: ending the call", stage=stage, error=repr(error))
        reason = call_events.reason_header(500, f"internal error ({stage})")
        for role, leg in call.legs.items():
            inbound_unanswered = (call.invite is not None and leg == call.invite.leg_id
                                  and call.machine.answered_at is None)
            with contextlib.suppress(Exception):
                if inbound_unanswered:
                    self._watch(call, self.engine.respond(leg, 500, reason), "respond")
                else:
                    self._watch(call, self.engine.hangup(leg, reason), "hangup")
            call.log.info("leg ended by fault", role=role)
        answered = call.machine.answered_at
        self._finished(call, call_events.Finished("fault", 500, answered, now))

    # ------------------------------------------------------------------------ actions
    def _apply(self, call: ActiveCall, actions: list[call_events.Action], now: float) -> None:
        for action in actions:
            match action:
                case call_events.StartTimer() | call_events.CancelTimer():
                    self._timer_action(call, action)
                case call_events.Notify():
                    call.last_notify = action.state
                    self.metrics.user_events.labels(call.kind.value, action.state).inc()
                    call.log.info("call state", state=action.state, **action.detail)
                    self._observe(call, self.observer.on_notify, action)
                case call_events.Finished():
                    self._finished(call, action)
                case call_events.Abandon():
                    self._release_unplaced(call, action.role)
                case call_events.Rerouted():
                    call.info["trunk_out"] = action.trunk
                    self.metrics.trunk_failovers.labels(action.failed_trunk, action.reason).inc()
                    call.log.warning("failover to the next trunk", failed=action.failed_trunk, reason=action.reason,
                                     trunk=action.trunk)
                case call_events.PlaceCall() | call_events.Link() | call_events.Respond() | call_events.Answer() \
                        | call_events.Hangup() | call_events.SetHold() | call_events.SendDtmf():
                    self._signalling_action(call, action, now)
                case call_events.PlayTone() | call_events.StopTone() | call_events.PlayFile() \
                        | call_events.StopFile() | call_events.Unlink() | call_events.WatchMedia() \
                        | call_events.StartRecording():
                    self._media_action(call, action)

    def _signalling_action(self, call: ActiveCall, action: call_events.Action, now: float) -> None:
        engine = self.engine
        legs = call.legs
        match action:
            case call_events.PlaceCall():
                leg = legs.get(action.role) or engine.new_leg_id()
                legs[action.role] = leg
                self._by_leg[leg] = (call, action.role)
                fut = engine.make_call(leg, action.uri, action.from_uri, action.headers)
                if call.invite is not None:
                    fut.add_done_callback(self._forwarded(call.invite.received_at))
                self._watch(call, fut, "make_call")
            case call_events.Link():
                first, second = legs.get(action.first), legs.get(action.second)
                if first and second:
                    self._watch(call, engine.link(first, second), "link")
            case call_events.Respond():
                self._watch(call, engine.respond(legs[action.role], action.code, action.headers), "respond")
            case call_events.Answer():
                self._watch(call, engine.respond(legs[action.role], 200), "answer")
                self.metrics.answer_relay.observe(time.monotonic() - now)
            case call_events.Hangup() if action.role in legs:
                self._watch(call, engine.hangup(legs[action.role], action.headers), "hangup")
            case call_events.SetHold():
                self._watch(call, engine.set_hold(legs[action.role], action.held), "hold")
                call.log.info("hold" if action.held else "unhold", toward=action.role)
            case call_events.SendDtmf():
                self._watch(call, engine.send_dtmf(legs[action.role], action.digit, action.duration_ms), "dtmf")

    def _media_action(self, call: ActiveCall, action: MediaAction) -> None:
        """Media actions toward a leg that is already gone are dropped (its call is ending)."""
        leg = call.legs.get(action.role)
        if leg is None:
            return
        engine = self.engine
        match action:
            case call_events.PlayTone():
                self._watch(call, engine.play_tone(leg, action.tone), "play_tone")
            case call_events.StopTone():
                self._watch(call, engine.stop_tone(leg), "stop_tone")
            case call_events.PlayFile():
                self._watch(call, engine.play_file(leg, action.path, action.loop), "play_file")
            case call_events.StopFile():
                self._watch(call, engine.stop_file(leg), "stop_file")
            case call_events.Unlink():
                self._watch(call, engine.unlink(leg), "unlink")
            case call_events.WatchMedia():
                self._watch(call, engine.watch_media(leg, action.timeout_s), "watch_media")
            case call_events.StartRecording():
                self._watch(call, engine.record(leg, action.path), "record")

    def _timer_action(self, call: ActiveCall, action: call_events.StartTimer | call_events.CancelTimer) -> None:
        old = call.timers.pop(action.name, None)
        if old is not None:
            old.cancel()
        if isinstance(action, call_events.StartTimer):
            loop = asyncio.get_running_loop()
            call.timers[action.name] = loop.call_later(action.delay_s, self._timer_fired, call, action.name)

    def _timer_fired(self, call: ActiveCall, name: str) -> None:
        call.timers.pop(name, None)
        if call.id in self._calls:
            self._step(call, "timer", lambda now: call.machine.handle(call_events.TimerFired(name), now))

    def _forwarded(self, received_at: float) -> Callable[[concurrent.futures.Future[None]], None]:
        def done(f: concurrent.futures.Future[None]) -> None:
            if f.exception() is None:
                self.metrics.setup_forward.observe(time.monotonic() - received_at)

        return done

    def _watch(self, call: ActiveCall, fut: concurrent.futures.Future[None], what: str) -> None:
        def done(f: concurrent.futures.Future[None]) -> None:
            e = f.exception()
            if e is not None:
                call.log.warning("engine command failed", command=what, error=repr(e))

        fut.add_done_callback(done)

    def _observe(self, call: ActiveCall, tell: Callable[[ActiveCall, T], None], what: T) -> None:
        """The observer's failure (a full disk, a store error) must never strand the call."""
        try:
            tell(call, what)
        except Exception:
            call.log.exception("call observer failed")

    def _finished(self, call: ActiveCall, fin: call_events.Finished) -> None:
        for handle in call.timers.values():
            handle.cancel()
        call.timers.clear()
        self._calls.pop(call.id, None)
        for leg in call.legs.values():
            self._by_leg.pop(leg, None)
            self._early.discard(leg)
        self.gate.release()
        for _ in call.admitted_roles:
            self.gate.release()
        call.admitted_roles.clear()
        self.metrics.calls.labels(fin.outcome).inc()
        self.metrics.active_calls.set(len(self._calls))
        duration = fin.ended_at - fin.answered_at if fin.answered_at is not None else 0.0
        call.log.info("call end", outcome=fin.outcome, code=fin.code, duration_s=round(duration, 3))
        self._observe(call, self.observer.on_finished, fin)
        if not self._calls:
            self._idle.set()

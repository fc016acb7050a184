"""Where each engine event goes (asyncio thread): new and refused INVITEs to the inbound handler, leg events to
the runner (ends through the live-dialog journal first, answers journaled after the runner relayed them), engine
faults to metrics and the log. One handler failing never stops the next event."""

from __future__ import annotations

from b2bua.control.inbound import InboundCalls
from b2bua.control.journal import LiveDialogs
from b2bua.control.runner import CallRunner
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.sip.types import EngineEvent, EngineFault, IncomingCall, InviteRejected, LegAnswered, LegEnded


class EventDispatcher:
    def __init__(self, runner: CallRunner, inbound: InboundCalls, metrics: Metrics, dialogs: LiveDialogs) -> None:
        self.runner = runner
        self.inbound = inbound
        self.metrics = metrics
        self.dialogs = dialogs
        self._log = get_logger("calls")

    def on_event(self, event: EngineEvent) -> None:
        try:
            match event:
                case IncomingCall():
                    self.inbound.accept(event)
                case InviteRejected():
                    self.inbound.rejected(event)
                case EngineFault():
                    self.metrics.engine_faults.labels(event.where).inc()
                    self._log.error("engine fault", where=event.where, error=event.message)
                case LegAnswered():
                    self.runner.on_leg_event(event)  # the answer is relayed first: the journal row is not on
                    self.dialogs.on_leg_event(event)  # the set-up path (the call is still known after an answer)
                case LegEnded():
                    self.dialogs.on_leg_event(event)  # first: the runner may forget the call on this event
                    self.runner.on_leg_event(event)
                case _:
                    self.runner.on_leg_event(event)
        except Exception:
            self._log.exception("event handling failed", engine_event=repr(event))

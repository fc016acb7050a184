"""The live-dialog journal kept in step with the engine's leg events (asyncio thread): a leg's dialog is recorded
when it is confirmed and removed when the leg ends, so that what a crash leaves behind can be ended at the next
start. A journal write that fails is logged and counted; it never touches the call."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from b2bua.control.active import ActiveCall
from b2bua.control.runner import CallRunner
from b2bua.ops.logging import get_logger
from b2bua.ops.metrics import Metrics
from b2bua.sip.types import Dialog, LegAnswered, LegEnded

# what the call's record needs if the call dies with the process (the rest is the call's own identity)
CALL_INFO_KEYS = ("caller", "called", "target", "user_number", "trunk_in", "trunk_out", "sip_call_id")


class JournalRepository(Protocol):
    def add(self, row: dict[str, Any]) -> None: ...
    def remove(self, sip_call_id: str, local_tag: str) -> bool: ...


def journal_row(leg_id: str, dialog: Dialog, call: ActiveCall, answered_at: float) -> dict[str, Any]:
    return {
        "sip_call_id": dialog.sip_call_id, "local_tag": dialog.local_tag, "leg_id": leg_id, "call_id": call.id,
        "kind": call.kind.value, "user_id": call.user_id, "call_started": call.created, "answered_at": answered_at,
        "local_uri": dialog.local_uri, "remote_uri": dialog.remote_uri, "remote_tag": dialog.remote_tag,
        "request_uri": dialog.request_uri, "route_set": json.dumps(list(dialog.route_set)),
        "destination": dialog.destination, "cseq": dialog.cseq,
        "call_info": json.dumps({k: str(call.info[k]) for k in CALL_INFO_KEYS if call.info.get(k)}),
    }


def dialog_of(row: dict[str, Any]) -> Dialog:
    """A journal row back as the dialog it recorded."""
    return Dialog(row["sip_call_id"], row["local_uri"], row["local_tag"], row["remote_uri"], row["remote_tag"],
                  row["request_uri"], tuple(json.loads(row["route_set"] or "[]")), row["destination"],
                  int(row["cseq"]))


class LiveDialogs:
    """Fed by the dispatcher before the runner sees the event (the call is still in the runner's table)."""

    def __init__(self, repository: JournalRepository, runner: CallRunner, metrics: Metrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.repository = repository
        self.runner = runner
        self.metrics = metrics
        self._clock = clock
        self._journaled: dict[str, tuple[str, str]] = {}  # leg id -> (SIP Call-ID, local tag)
        self._log = get_logger("calls")

    @property
    def count(self) -> int:
        return len(self._journaled)

    def on_leg_event(self, event: LegAnswered | LegEnded) -> None:
        if isinstance(event, LegAnswered):
            self._answered(event)
        else:
            self._ended(event.leg_id)

    def _answered(self, event: LegAnswered) -> None:
        call = self.runner.call_of_leg(event.leg_id)
        if event.dialog is None or call is None:
            return
        key = (event.dialog.sip_call_id, event.dialog.local_tag)
        try:
            self.repository.add(journal_row(event.leg_id, event.dialog, call, self._clock()))
        except Exception as e:
            self._failed(call.id, event.leg_id, "add", e)
            return
        self._journaled[event.leg_id] = key

    def _ended(self, leg_id: str) -> None:
        key = self._journaled.pop(leg_id, None)
        if key is None:
            return
        try:
            self.repository.remove(*key)
        except Exception as e:
            self._failed("", leg_id, "remove", e)

    def _failed(self, call_id: str, leg_id: str, what: str, error: Exception) -> None:
        self.metrics.journal_errors.inc()
        self._log.error("dialog journal write failed", op=what, call_id=call_id, leg=leg_id, error=repr(error))

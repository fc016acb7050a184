"""What happens around a call rather than in it: a call detail record when it ends, its state changes on the
user's live event stream, voicemail kept or discarded, the test call's result on the user's record, and the
user's presence (busy while on a call).

This is the runner's ``CallObserver``; the runner shields calls from its failures, and a record the database
refuses (disk full, read-only, file gone) waits in ``PendingWrites`` and is retried: a call never waits for the
store, and a passing store fault loses no record."""

from __future__ import annotations

import time
from typing import Any, Protocol

from b2bua.calls.events import Finished, Notify
from b2bua.calls.machine import CallKind
from b2bua.control.active import ActiveCall
from b2bua.eventbus import EventBus
from b2bua.telecommuter.mailbox import Mailbox
from b2bua.telecommuter.pending_writes import PendingWrites
from b2bua.telecommuter.presence import Presence
from b2bua.telecommuter.users import UserRepository

# the event-stream kind a user's call state change is published under
_EVENT_KIND = {CallKind.TEST: "test-call", CallKind.SESSION: "session"}
_VOICEMAIL_STATES = ("voicemail-recorded", "voicemail-discarded")


class CallRecordRepository(Protocol):
    def add_cdr(self, row: dict[str, Any]) -> None: ...
    def get_cdr(self, call_id: str) -> dict[str, Any] | None: ...
    def recent_cdrs(self, limit: int = ...) -> list[dict[str, Any]]: ...


class CallRecords:
    def __init__(self, repository: CallRecordRepository, users: UserRepository, mailbox: Mailbox,
                 bus: EventBus, pending: PendingWrites, presence: Presence) -> None:
        self.repository = repository
        self.presence = presence
        self.pending = pending
        self.users = users
        self.mailbox = mailbox
        self.bus = bus

    # ------------------------------------------------------------------------------------------ observing
    def on_notify(self, call: ActiveCall, notify: Notify) -> None:
        if not call.user_id:
            return
        try:
            self._tell_user(call, notify)
        finally:  # presence follows the call even if telling the user failed (a store fault)
            self.presence.call_state(call.user_id, call.id, call.kind, notify.state, notify.detail)

    def _tell_user(self, call: ActiveCall, notify: Notify) -> None:
        detail = dict(notify.detail)
        if call.kind is CallKind.INCOMING and notify.state in _VOICEMAIL_STATES:
            if notify.state == "voicemail-recorded":
                self.mailbox.recorded(call.user_id, detail)
            else:
                self.mailbox.discarded(detail)
            return  # the mailbox event says it, without file paths
        kind = _EVENT_KIND.get(call.kind, "call")
        self.bus.publish(call.user_id, kind, {"call_id": call.id, "state": notify.state, **detail})
        if call.kind is CallKind.TEST and detail.get("status") == "done":
            self.users.update_user(call.user_id, last_test_result=str(detail.get("result", "")),
                                   last_test_at=time.time())

    def on_finished(self, call: ActiveCall, finished: Finished) -> None:
        try:
            self._record(call, finished)
        finally:
            if call.user_id:
                self.presence.call_ended(call.user_id, call.id)

    def _record(self, call: ActiveCall, finished: Finished) -> None:
        info = call.info
        business = ""
        if call.user_id:
            user = self.users.get_user(call.user_id)
            business = user.business_number if user else ""
        row = {
            "id": call.id, "sip_call_id": info.get("sip_call_id", ""), "kind": call.kind.value,
            "user_id": call.user_id, "caller": info.get("caller") or business,
            "called": info.get("called") or info.get("target") or info.get("user_number", ""),
            "trunk_in": info.get("trunk_in", ""), "trunk_out": info.get("trunk_out", ""),
            "outcome": finished.outcome, "final_code": finished.code, "started_at": call.created,
            "duration_s": (finished.ended_at - finished.answered_at) if finished.answered_at is not None else 0.0,
        }
        self.pending.write("cdr", row, lambda: self.repository.add_cdr(row))

    # ------------------------------------------------------------------------------------------ reading
    def ended(self, call_id: str) -> dict[str, Any] | None:
        """An ended call as the API shows it, from its record (None: no such record). A record still waiting for
        the database counts: a client polling a call must not see it vanish while the disk is full."""
        cdr = next((r for r in self.pending.waiting("cdr") if r["id"] == call_id), None)
        if cdr is None:
            cdr = self.repository.get_cdr(call_id)
        if cdr is None:
            return None
        return {"id": cdr["id"], "kind": cdr["kind"], "user_id": cdr["user_id"] or None, "state": "ended",
                "outcome": cdr["outcome"], "final_code": cdr["final_code"], "caller": cdr["caller"],
                "called": cdr["called"], "started": cdr["started_at"], "duration_s": cdr["duration_s"]}

    def recent(self, limit: int) -> list[dict[str, Any]]:
        return self.repository.recent_cdrs(limit)

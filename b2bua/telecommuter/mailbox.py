"""A user's voicemail as the user sees it: the messages, read/unread, deletion, and the message-waiting events
that every change sends to the user's live event stream — including the ones about faults: voicemail could not
take a caller ("unavailable"), a recording held no message ("failed"), a message waits for the database
("pending", then "new" once it is in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from b2bua.calls.incoming import VoicemailPlan
from b2bua.eventbus import EventBus
from b2bua.ops.logging import get_logger
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.pending_writes import PendingWrites
from b2bua.telecommuter.users import Message, User, UserRepository
from b2bua.telecommuter.voicemail import RecordingFailed, VoicemailBoxes, VoicemailUnavailable


class Mailbox:
    def __init__(self, repository: UserRepository, boxes: VoicemailBoxes, bus: EventBus,
                 pending: PendingWrites) -> None:
        self.repository = repository
        self.boxes = boxes
        self.bus = bus
        self.pending = pending
        self._log = get_logger("voicemail")

    def messages(self, user_id: str) -> list[Message]:
        return self.repository.messages(user_id)

    def counts(self, user_id: str) -> tuple[int, int]:
        """(total, unread)."""
        return self.repository.message_counts(user_id)

    def message(self, user_id: str, message_id: str) -> Message:
        m = self.repository.message(user_id, message_id)
        if m is None:
            raise Refused(404, "no-message", f"no message {message_id!r}")
        return m

    def audio(self, m: Message) -> Path:
        path = Path(m.path)
        if not path.exists():
            raise Refused(410, "recording-gone", "the recording is gone from disk")
        return path

    def mark(self, m: Message, read: bool) -> Message:
        self.repository.mark_message(m.user_id, m.id, read)
        self.publish(m.user_id, "read" if read else "unread")
        return self.message(m.user_id, m.id)

    def delete(self, m: Message) -> None:
        self.boxes.delete(m)
        self.publish(m.user_id, "deleted")

    def plan_for(self, user: User, caller: str = "") -> VoicemailPlan | None:
        """A slot for a caller, or None: the user has no voicemail, or it cannot take a message now — then the
        caller gets busy/unavailable and the user hears why (and who called)."""
        try:
            return self.boxes.plan_for(user)
        except VoicemailUnavailable as e:
            self.publish(user.id, "unavailable", why=e.why, caller=caller)
            return None

    def recorded(self, user_id: str, detail: dict[str, Any]) -> None:
        """The incoming-call machine finished a recording: keep it (file and row, or neither) and tell the user.

        A row the database refuses waits in memory with its file and is retried (``PendingWrites``): a passing
        disk-full loses no message. Only if the node stops before the database takes it does the file stay alone;
        the next start adopts it (``VoicemailBoxes.adopt_orphans``)."""
        caller = str(detail.get("caller", ""))
        try:
            m = self.boxes.recorded(user_id, str(detail["message_id"]), str(detail["path"]), caller,
                                    str(detail.get("caller_name", "")), str(detail.get("called", "")),
                                    float(detail["duration_s"]))
        except RecordingFailed as e:
            self._log.warning("voicemail recording failed", user_id=user_id, why=e.why)
            self.publish(user_id, "failed", why=e.why, caller=caller)
            return
        if not self.pending.write("voicemail", {**m.public(), "user_id": m.user_id, "path": m.path},
                                  lambda: self._keep(m)):
            self.publish(user_id, "pending", why=f"the database cannot take it now: {self.pending.error}",
                         caller=caller)

    def _keep(self, m: Message) -> None:
        self.repository.add_message(m)
        self.publish(m.user_id, "new", m)

    def discarded(self, detail: dict[str, Any]) -> None:
        """Too short to be a message (the caller hung up at the beep): the file goes."""
        Path(str(detail["path"])).unlink(missing_ok=True)

    def publish(self, user_id: str, change: str, m: Message | None = None, **extra: str) -> None:
        """The message-waiting indicator: every change to a box goes to the user's event stream."""
        total, unread = self.counts(user_id)
        data: dict[str, Any] = {"change": change, "total": total, "unread": unread, "waiting": unread > 0, **extra}
        if m is not None:
            data["message"] = m.public()
        self.bus.publish(user_id, "voicemail", data)

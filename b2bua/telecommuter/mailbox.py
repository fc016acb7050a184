"""A user's voicemail as the user sees it: the messages, read/unread, deletion, and the message-waiting events
that every change sends to the user's live event stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from b2bua.eventbus import EventBus
from b2bua.telecommuter.errors import Refused
from b2bua.telecommuter.users import Message, UserRepository
from b2bua.telecommuter.voicemail import VoicemailBoxes


class Mailbox:
    def __init__(self, repository: UserRepository, boxes: VoicemailBoxes, bus: EventBus) -> None:
        self.repository = repository
        self.boxes = boxes
        self.bus = bus

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

    def recorded(self, user_id: str, detail: dict[str, Any]) -> None:
        """The incoming-call machine finished a recording: keep it and tell the user."""
        m = self.boxes.recorded(user_id, str(detail["message_id"]), str(detail["path"]),
                                str(detail.get("caller", "")), str(detail.get("caller_name", "")),
                                str(detail.get("called", "")), float(detail["duration_s"]))
        if m is not None:
            self.publish(user_id, "new", m)

    def discarded(self, detail: dict[str, Any]) -> None:
        """Too short to be a message (the caller hung up at the beep): the file goes."""
        Path(str(detail["path"])).unlink(missing_ok=True)

    def publish(self, user_id: str, change: str, m: Message | None = None) -> None:
        """The message-waiting indicator: every change to a box goes to the user's event stream."""
        total, unread = self.counts(user_id)
        data: dict[str, Any] = {"change": change, "total": total, "unread": unread, "waiting": unread > 0}
        if m is not None:
            data["message"] = m.public()
        self.bus.publish(user_id, "voicemail", data)

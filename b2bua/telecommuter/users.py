"""Users as the domain sees them, and the repository interface the store implements."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Protocol


class Mode(enum.StrEnum):
    OFF = "off"
    ON_DEMAND = "on-demand"
    KEEP_CONNECTED = "keep-connected"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    extension: str
    business_number: str  # E.164: the number the world sees
    telecommuter_number: str  # E.164 (or internal) number of wherever the user works now; "" if none
    mode: Mode
    class_of_service: str
    confirm_digit: str  # "" = no "press 1" on callback legs
    privacy: bool  # withhold the business number toward targets (Privacy: id)
    created_at: float
    last_test_result: str = ""
    last_test_at: float = 0.0
    voicemail: bool = True  # callers nobody answers for get voicemail (else busy/unavailable)
    call_waiting: bool = False  # one more call may ring the telecommuter phone while it is in use
    restore_desk: str = ""  # the desk to log back in to when telecommuter mode ends
    no_supervision: bool = False  # a line without disconnect supervision (analog, GSM gateway): keep-connected

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "extension": self.extension, "business_number": self.business_number,
            "telecommuter_number": self.telecommuter_number, "mode": self.mode.value,
            "class_of_service": self.class_of_service, "confirm_digit": self.confirm_digit, "privacy": self.privacy,
            "voicemail": self.voicemail, "call_waiting": self.call_waiting, "restore_desk": self.restore_desk or None,
            "no_supervision": self.no_supervision,
            "created_at": self.created_at,
            "last_test": {"result": self.last_test_result, "at": self.last_test_at} if self.last_test_at else None,
        }


@dataclass(frozen=True, slots=True)
class Desk:
    """A desk extension: a fixed device (or a PBX behind us) that rings for whoever is logged in there."""

    extension: str
    name: str
    contact: str  # SIP URI of the device
    occupant: str = ""  # user id, "" when free

    def public(self) -> dict[str, Any]:
        return {"extension": self.extension, "name": self.name, "contact": self.contact,
                "occupant": self.occupant or None}


@dataclass(frozen=True, slots=True)
class Message:
    """One voicemail message: the WAV file and who left it."""

    id: str
    user_id: str
    caller: str
    caller_name: str
    called: str
    received_at: float
    duration_s: float
    path: str
    read: bool = False

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "caller": self.caller, "caller_name": self.caller_name, "called": self.called,
                "received_at": self.received_at, "duration_s": self.duration_s, "read": self.read}


def new_token() -> tuple[str, str]:
    """A bearer token for a user and the hash we store (the token itself is shown once)."""
    token = "u_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Conflict(Exception):
    """The repository refused a write that would duplicate a unique value (an extension, a number, a desk)."""


class UserRepository(Protocol):
    """Users, desks and voicemail rows: what the store must offer the telecommuter domain. Writes that would
    duplicate a unique value raise ``Conflict``."""

    def add_user(self, user: User, token_hash: str) -> None: ...
    def get_user(self, user_id: str) -> User | None: ...
    def user_by_token_hash(self, token_hash: str) -> User | None: ...
    def list_users(self) -> list[User]: ...
    def update_user(self, user_id: str, **fields: Any) -> User | None: ...
    def set_token_hash(self, user_id: str, token_hash: str) -> bool: ...
    def delete_user(self, user_id: str) -> bool: ...
    # desks (hot desking)
    def add_desk(self, desk: Desk) -> None: ...
    def get_desk(self, extension: str) -> Desk | None: ...
    def list_desks(self) -> list[Desk]: ...
    def update_desk(self, extension: str, *, name: str | None = ..., contact: str | None = ...) -> Desk | None: ...
    def delete_desk(self, extension: str) -> bool: ...
    def desk_of(self, user_id: str) -> Desk | None: ...
    def set_occupant(self, extension: str, user_id: str, *, only_if_free: bool = ...) -> bool: ...
    def clear_occupant(self, user_id: str) -> str: ...
    # voicemail
    def add_message(self, m: Message) -> None: ...
    def messages(self, user_id: str) -> list[Message]: ...
    def message(self, user_id: str, message_id: str) -> Message | None: ...
    def mark_message(self, user_id: str, message_id: str, read: bool) -> bool: ...
    def delete_message(self, user_id: str, message_id: str) -> bool: ...
    def message_counts(self, user_id: str) -> tuple[int, int]: ...

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

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "extension": self.extension, "business_number": self.business_number,
            "telecommuter_number": self.telecommuter_number, "mode": self.mode.value,
            "class_of_service": self.class_of_service, "confirm_digit": self.confirm_digit, "privacy": self.privacy,
            "created_at": self.created_at,
            "last_test": {"result": self.last_test_result, "at": self.last_test_at} if self.last_test_at else None,
        }


def new_token() -> tuple[str, str]:
    """A bearer token for a user and the hash we store (the token itself is shown once)."""
    token = "u_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserRepository(Protocol):
    def add_user(self, user: User, token_hash: str) -> None: ...
    def get_user(self, user_id: str) -> User | None: ...
    def user_by_token_hash(self, token_hash: str) -> User | None: ...
    def list_users(self) -> list[User]: ...
    def update_user(self, user_id: str, **fields: Any) -> User | None: ...
    def set_token_hash(self, user_id: str, token_hash: str) -> bool: ...
    def delete_user(self, user_id: str) -> bool: ...

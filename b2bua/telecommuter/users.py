"""Users as the domain sees them (with their desks, messages, routing settings, profiles and presence), and the
repository interface the store implements."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import asdict, dataclass, field, fields, replace
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


# ------------------------------------------------------------------------------------------ routing settings
class ListenBy(enum.StrEnum):
    PHONE = "phone"
    COMPUTER = "computer"


class PresenceStatus(enum.StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    BUSY = "busy"
    DND = "do-not-disturb"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Mobility:
    default_desk: str = ""  # desk extension that rings for the user; "" none
    twinning: bool = False  # ring the desk and ``twin_number`` at once
    twin_number: str = ""


@dataclass(frozen=True, slots=True)
class Forwarding:
    unconditional: str = ""  # every number E.164 or an extension; "" none
    busy: str = ""
    no_answer: str = ""
    ring_time_s: int = 20  # before no-answer forwarding (or voicemail) takes the call


@dataclass(frozen=True, slots=True)
class Telecommuting:
    """The user's telecommuter mode and number: in live settings these are ``User.mode`` and
    ``User.telecommuter_number`` themselves (one source of truth), in a profile a copy to apply."""

    mode: Mode = Mode.OFF
    number: str = ""


@dataclass(frozen=True, slots=True)
class VoicemailPrefs:
    enabled: bool = True  # live: ``User.voicemail``
    callback: bool = False  # call the user and play a new message
    notify: bool = True  # event and MWI to the desk phone
    listen_by: ListenBy = ListenBy.PHONE
    greeting: str = ""  # the active greeting's id; "" = the system greeting


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    """Everything a profile holds and routing reads. Stored as a JSON document: keys missing from an older
    document take the defaults here, so a setting added later needs no migration."""

    pickup: bool = False
    mobility: Mobility = field(default_factory=Mobility)
    forwarding: Forwarding = field(default_factory=Forwarding)
    telecommuter: Telecommuting = field(default_factory=Telecommuting)
    voicemail: VoicemailPrefs = field(default_factory=VoicemailPrefs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self, dict_factory=lambda items: {k: _plain(v) for k, v in items})

    def public(self) -> dict[str, Any]:
        """As the API and the event stream show it: a number, desk or greeting not set is None."""
        return {k: {f: (v or None) if isinstance(v, str) else v for f, v in g.items()} if isinstance(g, dict) else g
                for k, g in self.to_dict().items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoutingSettings:
        """Unknown keys are ignored, missing ones default; enums and types are checked by their constructors."""
        values: dict[str, Any] = {"pickup": bool(data.get("pickup", False))}
        for name, group in _GROUPS.items():
            given = data.get(name) or {}
            known = {f.name for f in fields(group)}
            values[name] = _group(group, {k: v for k, v in given.items() if k in known})
        return cls(**values)

    def merged(self, changes: dict[str, Any]) -> RoutingSettings:
        """These settings with ``changes`` (nested like ``to_dict``, only what changes) applied."""
        data = self.to_dict()
        for key, value in changes.items():
            data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
        return RoutingSettings.from_dict(data)

    def with_telecommuter(self, mode: Mode, number: str) -> RoutingSettings:
        return replace(self, telecommuter=Telecommuting(mode, number))


_GROUPS: dict[str, type[Any]] = {"mobility": Mobility, "forwarding": Forwarding, "telecommuter": Telecommuting,
                                 "voicemail": VoicemailPrefs}
_ENUMS: dict[str, type[enum.Enum]] = {"mode": Mode, "listen_by": ListenBy}


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _group(group: type[Any], given: dict[str, Any]) -> Any:
    return group(**{k: _ENUMS[k](v) if k in _ENUMS else v for k, v in given.items()})


BUILTIN_PROFILES = ("office", "mobile", "home")  # ids (and, capitalised, names) of the profiles every user has


@dataclass(frozen=True, slots=True)
class Profile:
    """A named set of routing settings; the built-in ones (``BUILTIN_PROFILES``) are never deleted."""

    id: str
    user_id: str
    name: str
    settings: RoutingSettings
    position: int  # list order: the built-ins first, then custom profiles as created
    created_at: float
    updated_at: float

    @property
    def builtin(self) -> bool:
        return self.id in BUILTIN_PROFILES


@dataclass(frozen=True, slots=True)
class LiveRouting:
    """What routing uses now, and the profile last selected (it wins when several match the settings)."""

    settings: RoutingSettings
    selected: str


@dataclass(frozen=True, slots=True)
class PresenceState:
    user_id: str
    status: PresenceStatus
    message: str
    updated_at: float


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
    # live routing settings and profiles (the telecommuter mode/number and voicemail on/off are the user's columns)
    def live_routing(self, user_id: str) -> LiveRouting | None: ...
    def seed_routing(self, user_id: str, live: LiveRouting, profiles: list[Profile]) -> None: ...
    def apply_routing(self, user_id: str, live: LiveRouting, *, leave_desk: bool) -> User | None: ...
    def profiles(self, user_id: str) -> list[Profile]: ...
    def add_profile(self, profile: Profile) -> None: ...
    def update_profile(self, profile: Profile) -> bool: ...
    def delete_profile(self, user_id: str, profile_id: str) -> bool: ...
    # presence
    def presence(self, user_id: str) -> PresenceState | None: ...
    def presences(self) -> list[PresenceState]: ...
    def set_presence(self, state: PresenceState) -> None: ...

"""Request bodies and response models of the HTTP API: the response models are what /openapi.json documents.

Bodies forbid unknown fields (a typo is a 422, not a silently ignored setting)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from b2bua.telecommuter.users import Mode

_SIP_URI = r"^sips?:([^@\s]+@)?[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------ requests
class UserCreate(_Body):
    name: str = Field(min_length=1, max_length=100)
    extension: str = Field(min_length=1, max_length=20)
    business_number: str = Field(min_length=3, max_length=32)
    class_of_service: str | None = None
    confirm_digit: str = Field("", pattern=r"^[0-9*#]?$")
    privacy: bool = False
    telecommuter_number: str = Field("", max_length=32)
    voicemail: bool | None = None
    call_waiting: bool = False
    home_number: str = Field("", max_length=32, description="where the Home profile forwards calls to (checked by "
                             "the dialling rules); empty: Home is telecommuter mode on the telecommuter number")


class UserUpdate(_Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    extension: str | None = Field(None, min_length=1, max_length=20)
    business_number: str | None = Field(None, min_length=3, max_length=32)
    class_of_service: str | None = None
    confirm_digit: str | None = Field(None, pattern=r"^[0-9*#]?$")
    privacy: bool | None = None
    voicemail: bool | None = None
    call_waiting: bool | None = None
    no_supervision: bool | None = None


SELF_SERVICE_FIELDS = frozenset({"voicemail", "call_waiting"})  # what users may change themselves


class TelecommuterUpdate(_Body):
    mode: Mode
    number: str | None = Field(None, max_length=32)
    test_call: bool = False


class CallRequest(_Body):
    target: str = Field(min_length=1, max_length=40)


class SessionAction(_Body):
    action: Literal["hold", "retrieve", "toggle-hold", "swap", "park", "unpark", "accept", "reject", "hangup",
                    "reconnect"]
    call: str = Field("", max_length=64, description="a call of the session; empty: the obvious one")
    slot: int = Field(0, ge=0, le=99, description="park/unpark slot; 0: first free / most recent")


class DeskCreate(_Body):
    extension: str = Field(min_length=1, max_length=20)
    contact: str = Field(min_length=5, max_length=200, pattern=_SIP_URI, description="SIP URI of the device")
    name: str = Field("", max_length=100)


class DeskUpdate(_Body):
    contact: str | None = Field(None, min_length=5, max_length=200, pattern=_SIP_URI)
    name: str | None = Field(None, max_length=100)


class DeskLogin(_Body):
    extension: str = Field(min_length=1, max_length=20)


class MessageUpdate(_Body):
    read: bool


# ------------------------------------------------------------------------------------------ responses
class Problem(BaseModel):
    """Every refusal (RFC 9457 problem details); ``rule`` names the rule that refused, for clients to branch on."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    rule: str
    errors: list[dict[str, Any]] | None = Field(None, description="per-field errors of an invalid request body")


class LastTest(BaseModel):
    result: str
    at: float


class MessageCounts(BaseModel):
    total: int
    unread: int


class UserView(BaseModel):
    id: str
    name: str
    extension: str
    business_number: str
    telecommuter_number: str
    mode: Mode
    class_of_service: str
    confirm_digit: str
    privacy: bool
    voicemail: bool
    call_waiting: bool
    restore_desk: str | None
    no_supervision: bool
    created_at: float
    last_test: LastTest | None
    desk: str | None = Field(description="the desk the user is logged in at")
    rings: Literal["telecommuter", "desk", "voicemail", "busy"] = Field(description="where a call rings now")
    voicemail_messages: MessageCounts


class UserCreated(BaseModel):
    user: UserView
    token: str = Field(description="the user's bearer token; shown once")


class UserList(BaseModel):
    users: list[UserView]


class Token(BaseModel):
    token: str


class ModeChanged(BaseModel):
    user: UserView
    test_call_id: str | None


class SessionCall(BaseModel):
    call: str
    number: str
    direction: Literal["in", "out"]
    state: str
    slot: int | None


class SessionView(BaseModel):
    id: str
    line: str = Field(description="the persistent leg: down, calling, confirming or up")
    line_invites: int
    calls: list[SessionCall]


class SessionDialled(BaseModel):
    call: str
    number: str
    session: SessionView


class DeskView(BaseModel):
    extension: str
    name: str
    contact: str
    occupant: str | None


class DeskList(BaseModel):
    desks: list[DeskView]


class MessageView(BaseModel):
    id: str
    caller: str
    caller_name: str
    called: str
    received_at: float
    duration_s: float
    read: bool


class MessageList(BaseModel):
    messages: list[MessageView]
    total: int
    unread: int


class CallView(BaseModel):
    """A live call (``legs``, ``answered``, ``status``) or an ended one (``outcome``, ``final_code``,
    ``duration_s``); kind-specific details (``caller``, ``target``, ``user_number``, ...) come along."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    user_id: str | None
    state: str
    status: str | None = None
    started: float
    legs: dict[str, str] | None = None
    answered: bool | None = None
    caller: str | None = None
    called: str | None = None
    target: str | None = None
    outcome: str | None = None
    final_code: int | None = None
    duration_s: float | None = None


class CallList(BaseModel):
    calls: list[CallView]
    at: float


class CallEnding(BaseModel):
    id: str
    status: Literal["ending"]


class CallRecord(BaseModel):
    id: str
    sip_call_id: str
    kind: str
    user_id: str
    caller: str
    called: str
    trunk_in: str
    trunk_out: str
    outcome: str
    final_code: int
    started_at: float
    duration_s: float


class CallRecordList(BaseModel):
    cdrs: list[CallRecord]


class EngineHealth(BaseModel):
    up: bool
    loop_lag_s: float
    legs: int
    turns: int


class AdmissionView(BaseModel):
    ceiling: int
    admitted: int
    closed: bool
    rate: float
    burst: float


class TrunkView(BaseModel):
    state: Literal["up", "down"]
    monitored: bool = Field(description="pinged with OPTIONS (ping_interval_s > 0); an unmonitored trunk is always "
                            "up")
    last_response: int | None = Field(None, description="the last ping's final response; 0: none (timeout)")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    engine: EngineHealth
    limits: dict[str, Any]
    admission: AdmissionView
    active_calls: int
    checks: dict[str, str] = Field(default_factory=dict, description="readiness of the parts beside the engine "
                                   "(store, voicemail): \"ok\" or \"degraded: <why>\"; any degraded part makes "
                                   "status \"degraded\"")
    trunks: dict[str, TrunkView] = Field(default_factory=dict, description="each trunk's state by OPTIONS pings; "
                                         "a trunk down is a carrier's fault, not this node's: status stays \"ok\"")

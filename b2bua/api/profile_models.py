"""Request and response models of profiles, live routing settings and presence (what /openapi.json documents).

A settings body is a partial change: only the fields sent change (a number sent as null removes it); a profile
is created from the live settings with such a change on top."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from b2bua.telecommuter.users import Mode, PresenceStatus

_NUMBER = Field(None, max_length=32, description="E.164, national or an extension; checked by the user's dialling "
                "rules when set and shown normalised; null: none")
_RING = Field(ge=5, le=300, description="seconds a call rings before no-answer forwarding (or voicemail) takes it")
_GREETING = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                  description="the active greeting's id; null: the system greeting")
_DESK = Field(None, max_length=20, description="the desk extension that rings for the user; null: none")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------ settings
class MobilitySettings(BaseModel):
    """The desk phone, and twinning: the desk and another number ring at once, the first answer wins."""

    default_desk: str | None = _DESK
    twinning: bool
    twin_number: str | None = _NUMBER


class ForwardingSettings(BaseModel):
    """Where calls go instead of ringing the user: always, when busy, when not answered in time."""

    unconditional: str | None = _NUMBER
    busy: str | None = _NUMBER
    no_answer: str | None = _NUMBER
    ring_time_s: int = _RING


class TelecommuterSettings(BaseModel):
    """Telecommuter mode and number: the same values as ``PUT /v1/users/{id}/telecommuter`` sets."""

    mode: Mode
    number: str | None = _NUMBER


class VoicemailSettings(BaseModel):
    """Voicemail on/off (the user's ``voicemail``), callback (the product calls the user and plays a new message),
    notification (event and MWI to the desk phone), how messages are listened to, the active greeting."""

    enabled: bool
    callback: bool
    notify: bool
    listen_by: Literal["phone", "computer"]
    greeting: str | None = _GREETING


class RoutingSettingsView(BaseModel):
    """Every routing setting a profile holds, and that the live settings hold."""

    pickup: bool = Field(description="others in the user's pickup group may take the user's ringing calls")
    mobility: MobilitySettings
    forwarding: ForwardingSettings
    telecommuter: TelecommuterSettings
    voicemail: VoicemailSettings



class MobilityChange(_Body):
    default_desk: str | None = _DESK
    twinning: bool = Field(False, description="omitted: unchanged")
    twin_number: str | None = _NUMBER


class ForwardingChange(_Body):
    unconditional: str | None = _NUMBER
    busy: str | None = _NUMBER
    no_answer: str | None = _NUMBER
    ring_time_s: int = Field(20, ge=5, le=300, description="omitted: unchanged")


class TelecommuterChange(_Body):
    mode: Mode = Field(Mode.OFF, description="omitted: unchanged")
    number: str | None = _NUMBER


class VoicemailChange(_Body):
    enabled: bool = Field(True, description="omitted: unchanged")
    callback: bool = Field(False, description="omitted: unchanged")
    notify: bool = Field(True, description="omitted: unchanged")
    listen_by: Literal["phone", "computer"] = Field("phone", description="omitted: unchanged")
    greeting: str | None = _GREETING


class SettingsChange(_Body):
    """A partial change: only the fields sent change; a number (or desk, or greeting) sent as null is removed."""

    pickup: bool = Field(False, description="omitted: unchanged")
    mobility: MobilityChange | None = None
    forwarding: ForwardingChange | None = None
    telecommuter: TelecommuterChange | None = None
    voicemail: VoicemailChange | None = None

    def changes(self) -> dict[str, Any]:
        """What was sent, nested like the settings, null numbers as "" (none)."""
        sent = self.model_dump(exclude_unset=True)
        return {k: ({f: "" if v is None else v for f, v in g.items()} if isinstance(g, dict) else g)
                for k, g in sent.items() if g is not None}


# ------------------------------------------------------------------------------------------ profiles
class ProfileCreate(_Body):
    name: str = Field(min_length=1, max_length=40)
    settings: SettingsChange = Field(default_factory=SettingsChange,
                                     description="changes on top of the live settings (the profile starts as them)")


class ProfileUpdate(_Body):
    name: str | None = Field(None, min_length=1, max_length=40, description="custom profiles only")
    settings: SettingsChange | None = Field(None, description="changes to the profile's settings")


class ProfileView(BaseModel):
    id: str = Field(description="office, mobile, home, or a custom profile's id")
    name: str
    builtin: bool = Field(description="Office, Mobile and Home: editable, never deleted")
    active: bool = Field(description="this profile matches the live settings and is the one shown active")
    settings: RoutingSettingsView
    created_at: float
    updated_at: float


class ActiveProfileView(BaseModel):
    """The active profile: the saved profile the live settings match, else Detected (id "detected")."""

    id: str
    name: str
    detected: bool = Field(description="the live settings match no saved profile")
    settings: RoutingSettingsView = Field(description="the live settings")


class ProfileList(BaseModel):
    profiles: list[ProfileView]
    active: ActiveProfileView
    max_custom: int = Field(description="how many custom profiles a user may have")


class ActiveSummary(BaseModel):
    id: str
    name: str
    detected: bool


class LiveSettingsView(BaseModel):
    """What routing uses now: the live settings, which profile that is, and do-not-disturb (presence)."""

    settings: RoutingSettingsView
    active_profile: ActiveSummary
    dnd: bool = Field(description="the user's presence is do-not-disturb")


# ------------------------------------------------------------------------------------------ presence
class PresenceUpdate(_Body):
    status: PresenceStatus
    message: str = Field("", max_length=200, description="a short text colleagues see")


class PresenceView(BaseModel):
    user_id: str
    name: str
    extension: str
    status: PresenceStatus = Field(description="what colleagues see: busy while on a call, else set_status")
    set_status: PresenceStatus = Field(description="what the user set (available until they set one)")
    message: str
    on_call: bool
    updated_at: float | None = Field(description="when the user last set it; null: never")


class PresenceList(BaseModel):
    presence: list[PresenceView]

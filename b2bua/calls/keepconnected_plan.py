"""What a keep-connected session is made of and told: its plan, the commands the runner and the API send it
(:class:`Offer`, :class:`Dial`, :class:`UserAction`), its parties and their states, and its timer names.

The machine itself is :class:`b2bua.calls.keepconnected.KeepConnectedSession`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from b2bua.calls.events import Event, Headers, RoleName

LINE_ANSWER, CONFIRM, RECONNECT, REDIAL, KEYPAD = "line-answer", "confirm", "reconnect", "redial", "keypad"
FAILURE_TONE = "failure-tone"  # the busy/congestion tone after a failed outgoing call
KEYPAD_GAP_S = 3.0  # a half-typed keypad code is dropped after this pause
FAILURE_TONE_S = 3.0


class LineState(enum.Enum):
    DOWN = "down"
    CALLING = "calling"
    CONFIRMING = "confirming"
    UP = "up"


class PartyState(enum.Enum):
    DIALING = "dialing"  # outgoing, not answered yet
    OFFERED = "offered"  # incoming, waiting for the user to accept (or for the line to come back)
    WAITING = "waiting"  # incoming while another call is active: call waiting
    ACTIVE = "active"
    HELD = "held"
    PARKED = "parked"


# ---------------------------------------------------------------------------------------------- commands
@dataclass(frozen=True, slots=True)
class Offer:
    """An inbound call for the user; the runner already attached its leg under ``role``."""

    role: RoleName
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Dial:
    """Place an outgoing call over the line (dialling rules and presentation already applied)."""

    role: RoleName
    uri: str
    from_uri: str
    number: str
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class UserAction:
    """hold, retrieve, swap, park, unpark, accept, reject, hangup, reconnect (API or keypad)."""

    name: str
    call: RoleName = ""  # a party role; "" = the obvious one
    slot: int = 0  # park/unpark slot; 0 = first free / the only parked


SessionEvent = Event | Offer | Dial | UserAction


# ---------------------------------------------------------------------------------------------- the plan
@dataclass(frozen=True, slots=True)
class SessionPlan:
    line_uri: str
    line_from: str
    number: str  # the telecommuter number, for events
    confirm_digit: str = ""
    line_answer_timeout_s: float = 30.0
    confirm_timeout_s: float = 15.0
    target_answer_timeout_s: float = 60.0
    reconnect_timeout_s: float = 60.0
    redial_on_drop: bool = False
    redial_interval_s: float = 10.0
    park_slots: int = 9
    park_timeout_s: float = 120.0
    auto_answer: bool = True  # connect an incoming call at once (else: announce, wait for accept)
    offer_timeout_s: float = 20.0
    call_waiting: bool = True
    music: str = ""  # WAV played (looped) to held and parked parties
    keypad: Mapping[str, str] = field(default_factory=dict)  # DTMF code -> action name
    fallback_code: int = 480
    rtp_timeout_s: float = 10.0  # no audio from the line this long (and not on hold): the line is dead


# ---------------------------------------------------------------------------------------------- parties
@dataclass
class Party:
    role: RoleName
    number: str
    direction: str  # "in" or "out"
    state: PartyState
    answered: bool = False
    slot: int = 0
    since: float = 0.0

    def public(self) -> dict[str, Any]:
        return {"call": self.role, "number": self.number, "direction": self.direction, "state": self.state.value,
                "slot": self.slot or None}


@dataclass
class Pending:
    """What to do once the line is (back) up."""

    action: str  # "connect" or "dial"
    role: RoleName
    dial: Dial | None = None

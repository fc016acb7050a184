"""What an incoming call is told when its INVITE arrives (where to ring, what to do if nobody answers), and how a
ringing leg's failure reads: kept apart from the machine so the planner and voicemail can build plans."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from b2bua.calls.events import Headers

MIN_MESSAGE_S = 0.5  # shorter "messages" are callers hanging up at the beep


@dataclass(frozen=True, slots=True)
class Ring:
    uri: str
    from_uri: str
    headers: Headers
    where: str  # "telecommuter", "desk", "twin" or "forward"
    confirm_digit: str = ""  # "": the leg wins when it answers; else only once this digit is pressed on it


@dataclass(frozen=True, slots=True)
class VoicemailPlan:
    message_id: str
    greeting_path: str
    greeting_s: float
    record_path: str
    max_message_s: float


@dataclass(frozen=True, slots=True)
class Forwards:
    """Where the call goes when the user's phones are busy or do not answer (None: voicemail, else busy or
    unavailable). A forwarded call that fails is not forwarded again, nor taken by voicemail: the forward number's
    own network answers for it."""

    busy: Ring | None = None
    no_answer: Ring | None = None
    ring_timeout_s: float = 30.0  # how long the forward number rings


@dataclass(frozen=True, slots=True)
class IncomingPlan:
    """Decided when the INVITE arrived: where to ring, for how long, and what happens if nobody answers."""

    ring: Ring | None
    ring_timeout_s: float
    voicemail: VoicemailPlan | None  # None: busy/unavailable instead
    no_ring_reason: str = ""  # why ``ring`` is None: "logged-out", "line-busy", "paging", "dnd"
    details: Mapping[str, Any] = field(default_factory=dict)  # caller, caller_name, called, trunk: for events
    twin: Ring | None = None  # rings in parallel with ``ring``: the first answer wins
    forwards: Forwards = field(default_factory=Forwards)
    confirm_timeout_s: float = 15.0  # a leg with a confirmation digit that is not pressed in time is dropped


# what the user's failure means for the caller when there is no voicemail
FALLBACK = {"busy": 486, "declined": 486, "no-answer": 480, "unreachable": 480, "logged-out": 486,
            "line-busy": 486, "paging": 480, "dnd": 486}
# which forwarding a failure takes (none for paging: a page is for a desk's speaker; none for dnd: not disturbed)
FORWARD_ON = {"busy": "busy", "declined": "busy", "line-busy": "busy", "no-answer": "no_answer",
              "unreachable": "no_answer", "logged-out": "no_answer"}


def user_failure(code: int) -> str:
    if code in (486, 600):
        return "busy"
    if code in (603, 403):
        return "declined"
    if code in (408, 480, 487):
        return "no-answer"
    return "unreachable"

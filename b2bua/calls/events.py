"""The vocabulary shared by every call state machine: leg-neutral events in, actions out.

A role names a leg within one call: the fixed ones are :class:`Role` ("a"/"b" for trunk calls, "user"/"target"
for callbacks, ...), keep-connected sessions name theirs as they go. The runner maps roles to engine leg ids.
Machines never see SIP, sockets or time sources: the runner passes ``now``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RoleName = str  # any leg's role; keep-connected sessions make theirs up as they go ("line2", "in-<leg>", "out-3")
Headers = tuple[tuple[str, str], ...]


class Role(enum.StrEnum):
    """The fixed leg roles (members are ``str``: they compare, hash and serialise as their value)."""

    A = "a"  # trunk call: the inbound leg
    B = "b"  # trunk call: the outbound leg
    USER = "user"  # callback, test or incoming call: the leg to the user's phone
    TARGET = "target"  # callback: the number the user asked for
    CALLER = "caller"  # incoming call: the inbound leg
    TWIN = "twin"  # incoming call: the twinned number ringing beside the user's phone
    FORWARD = "forward"  # incoming call: the forward number (on busy or no answer)


# ---------------------------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class Progress:
    """An outbound leg got a provisional response (180/183); ``early_media`` once its early SDP is active."""

    role: RoleName
    code: int
    early_media: bool = False


@dataclass(frozen=True, slots=True)
class Answered:
    role: RoleName


@dataclass(frozen=True, slots=True)
class Ended:
    """The leg is gone (BYE, CANCEL, final failure). ``code`` is the SIP status pjsua reported."""

    role: RoleName
    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class HoldChanged:
    """The remote end of ``role`` put us on hold (sendonly/inactive) or took us off it."""

    role: RoleName
    held: bool


@dataclass(frozen=True, slots=True)
class Dtmf:
    role: RoleName
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class TimerFired:
    name: str


@dataclass(frozen=True, slots=True)
class Terminate:
    """Operator/API/shutdown asks the call to end."""

    cause: str = "terminated"


Event = Progress | Answered | Ended | HoldChanged | Dtmf | TimerFired | Terminate


# --------------------------------------------------------------------------------------------- actions
@dataclass(frozen=True, slots=True)
class PlaceCall:
    role: RoleName
    uri: str
    from_uri: str
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Respond:
    """Provisional (1xx) or failure final (>=300) response on an unanswered inbound leg."""

    role: RoleName
    code: int
    reason: str = ""
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Answer:
    role: RoleName


@dataclass(frozen=True, slots=True)
class Link:
    """Join two legs' media (applied whenever both have active audio). Default: the trunk pair a/b."""

    first: RoleName = Role.A
    second: RoleName = Role.B


@dataclass(frozen=True, slots=True)
class Hangup:
    """End a leg: CANCEL if it is an unanswered outbound leg, BYE if answered."""

    role: RoleName
    reason: str = ""
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class SetHold:
    role: RoleName
    held: bool


@dataclass(frozen=True, slots=True)
class SendDtmf:
    role: RoleName
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class PlayTone:
    """Play a named tone (see b2bua.media.tones) to the leg, replacing whatever tone it was hearing."""

    role: RoleName
    tone: str


@dataclass(frozen=True, slots=True)
class StopTone:
    role: RoleName


@dataclass(frozen=True, slots=True)
class PlayFile:
    """Play a WAV file (8 kHz 16-bit mono) to the leg: once (a greeting) or looped (music on hold)."""

    role: RoleName
    path: str
    loop: bool = False


@dataclass(frozen=True, slots=True)
class StopFile:
    role: RoleName


@dataclass(frozen=True, slots=True)
class Unlink:
    """Break the leg's media link to whatever it was linked with (both directions)."""

    role: RoleName


@dataclass(frozen=True, slots=True)
class WatchMedia:
    """End the leg (as if it failed with 408) when no audio arrives for ``timeout_s`` while it is not on hold."""

    role: RoleName
    timeout_s: float


@dataclass(frozen=True, slots=True)
class StartRecording:
    """Record what the leg sends to a WAV file; the file is complete once the leg has ended."""

    role: RoleName
    path: str


@dataclass(frozen=True, slots=True)
class Abandon:
    """A party the machine dropped before placing any leg for it (a dial waiting for a line that failed): the
    admission the party holds goes back now, not when the whole call ends."""

    role: RoleName


@dataclass(frozen=True, slots=True)
class Rerouted:
    """A trunk call's B leg moved to the route's next trunk (``reason``: the failed attempt's status, or
    "timeout"); the call's record now names ``trunk`` as its outbound trunk."""

    failed_trunk: str
    trunk: str
    reason: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    name: str
    delay_s: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class Notify:
    """A state change worth telling the user's event stream (and logs) about."""

    state: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finished:
    """Terminal: the call is over; ``outcome`` is a metrics label, ``code`` the final status."""

    outcome: str
    code: int
    answered_at: float | None
    ended_at: float


Action = (
    PlaceCall | Respond | Answer | Link | Unlink | Hangup | SetHold | SendDtmf | PlayTone | StopTone | PlayFile
    | StopFile | StartRecording | WatchMedia | Abandon | Rerouted | StartTimer | CancelTimer | Notify | Finished
)


def reason_header(code: int, text: str) -> Headers:
    return (("Reason", f'SIP;cause={code};text="{text}"'),)

"""The typed boundary between the SIP thread and asyncio: plain frozen dataclasses, no pjsua2 objects."""

from __future__ import annotations

from dataclasses import dataclass

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class InboundInvite:
    leg_id: str
    src_ip: str
    src_port: int
    request_uri: str
    called: str  # the number the Request-URI calls (message.called_number): no parameters, no separators
    from_uri: str
    from_user: str
    from_display: str
    to_uri: str
    sip_call_id: str
    headers: Headers
    received_at: float  # time.monotonic() when the SIP thread saw it
    sdp: str = ""  # the offer, if any


@dataclass(frozen=True, slots=True)
class Target:
    """One candidate for a routed call's B leg: a trunk and the URI to send the INVITE to."""

    trunk: str
    uri: str
    failover_timeout_s: float = 0.0  # no provisional response within this: try the next target (0: never)


@dataclass(frozen=True, slots=True)
class Admit:
    trunk: str  # the trunk whose ACL admitted the source
    target_uri: str  # where the B leg goes
    target_trunk: str
    user_id: str = ""  # set when the called number is one of our users: no route, the user's call handling
    targets: tuple[Target, ...] = ()  # every candidate in order (the first is target_uri); failover tries the rest


@dataclass(frozen=True, slots=True)
class Reject:
    code: int
    reason: str  # a short fixed word: it is a metric label
    headers: Headers = ()
    detail: str = ""  # for the log only


ScreenResult = Admit | Reject


# ------------------------------------------------------------------------------- events from the SIP thread
@dataclass(frozen=True, slots=True)
class IncomingCall:
    invite: InboundInvite
    admit: Admit


@dataclass(frozen=True, slots=True)
class InviteRejected:
    invite: InboundInvite
    code: int
    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LegProgress:
    leg_id: str
    code: int


@dataclass(frozen=True, slots=True)
class LegMedia:
    leg_id: str
    active: bool
    remote_hold: bool
    early: bool


@dataclass(frozen=True, slots=True)
class Dialog:
    """What ending a confirmed dialog from a fresh process takes (RFC 3261 §12.2.1.1), read on the SIP thread from
    the ACK that confirmed it: a crash then leaves enough in the journal for the next start to send its BYE."""

    sip_call_id: str
    local_uri: str  # our From (outbound leg) or To (inbound leg) URI, without its tag
    local_tag: str
    remote_uri: str
    remote_tag: str
    request_uri: str  # of in-dialog requests: the peer's Contact (its remote target)
    route_set: tuple[str, ...]  # Route header values in-dialog requests carry, in order
    destination: str  # "host:port" in-dialog requests are sent to
    cseq: int  # for a BYE from a fresh process: above every CSeq the dialog can have used


@dataclass(frozen=True, slots=True)
class LegAnswered:
    leg_id: str
    dialog: Dialog | None = None  # None: the confirming message could not be read (the leg is not journaled)


@dataclass(frozen=True, slots=True)
class LegEnded:
    leg_id: str
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class LegDtmf:
    leg_id: str
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class EngineFault:
    """A pjsua2 callback or command raised; the engine keeps running."""

    where: str
    message: str


EngineEvent = (
    IncomingCall | InviteRejected | LegProgress | LegMedia | LegAnswered | LegEnded | LegDtmf | EngineFault
)


@dataclass(frozen=True, slots=True)
class BuildLimits:
    """What the loaded pjsua2 build was compiled with."""

    max_calls: int
    max_conf_ports: int
    max_accounts: int
    ioqueue_max_handles: int
    pjsip_version: str
    build: str  # our build marker, or "pypi-wheel"

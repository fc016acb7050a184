"""One typed settings model: TOML file, then environment overrides (``B2BUA_SIP__LISTEN_PORT=5070``).

Bad config must stop start-up with the file, the key and the reason, so every load error is turned into a
:class:`ConfigError` that carries all three.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from b2bua.ops.carrier_settings import RouteSettings as RouteSettings  # re-exported: the settings' one home
from b2bua.ops.carrier_settings import TrunkSettings as TrunkSettings
from b2bua.ops.carrier_settings import bare_host, srtp_conflict
from b2bua.ops.filemodes import parse_umask
from b2bua.ops.settings_base import ConfigError as ConfigError
from b2bua.ops.settings_base import Port, Section, valid_regex
from b2bua.ops.transport_settings import SipTransportSettings, trunk_transport_problem

BUNDLED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "b2bua.toml"

class NodeSettings(Section):
    name: str = "b2bua-1"
    umask: str = Field("0077", description="octal umask set at start: what the service writes (database, "
                       "recordings, token) is private to its user; \"0027\" lets its group read")

    @field_validator("umask")
    @classmethod
    def _umask(cls, v: str) -> str:
        parse_umask(v)
        return v


class SipSettings(SipTransportSettings):  # listeners, TLS files and the media address: transport_settings
    listen_ip: str = Field("127.0.0.1", description="the address every SIP listener and all RTP are bound to: "
                           "IPv4 or IPv6 (\"::1\", \"2001:db8::5\"); one family per node")
    listen_port: Port = 5060
    public_host: str = Field("", description="host in Contact/Via (a name, or an address of listen_ip's family); "
                             "defaults to listen_ip")
    rtp_port_start: Port = 20000
    rtp_port_count: int = Field(0, ge=0, description="0: no upper bound (pjsua allocates upwards)")
    codecs: list[str] = Field(default_factory=lambda: ["PCMU/8000", "PCMA/8000"], min_length=1)
    user_agent: str = "b2bua"
    no_answer_timeout_s: float = Field(60.0, gt=0, le=3600)
    max_bridged_calls: int = Field(0, ge=0, description="0: derive from the pjsua2 build's PJSUA_MAX_CALLS")
    max_call_rate: float = Field(150.0, ge=0, le=100000,
                                 description="new calls admitted per second (INVITEs and API calls); 0: no limit")
    max_call_burst: int = Field(0, ge=0, le=100000, description="admissions allowed at once; 0: a fifth of "
                                                                "max_call_rate, at least 1")
    retry_after_s: int = Field(5, ge=1, le=3600)
    poll_ms: int = Field(10, ge=0, le=100, description="SIP thread's longest wait for network events per turn "
                                                      "(commands wake it at once)")
    pjsip_log_level: int = Field(1, ge=0, le=6)
    media_threads: int = Field(1, ge=1, le=16)
    ptime_ms: int = Field(20, ge=10, le=60, multiple_of=10,
                          description="RTP packetisation we send and the media bridge's frame: 40 halves the "
                                      "per-call media work for 20 ms more delay")
    gil_switch_interval_ms: float = Field(5.0, ge=0.05, le=10, description="Python's thread switch interval: "
                                          "how long the SIP thread may wait for the GIL while asyncio runs")
    media_thread_nice: int = Field(0, ge=0, le=19, description="nice value for pjmedia's threads, so that "
                                   "heavy media cannot starve signalling; 0: same priority")
    auth_realm: str = Field("b2bua", pattern=r'^[^"\\\r\n]{1,64}$',
                            description="realm of the digest challenges sent to trunks that have credentials")
    auth_nonce_secret: SecretStr = Field(SecretStr(""), description="key that signs challenge nonces; nodes "
                                         "that share an address must share it; empty: a random key per start")
    auth_nonce_ttl_s: int = Field(300, ge=10, le=86400, description="how long a challenge's nonce is accepted")
    auth_max_failures: int = Field(10, ge=1, le=10000, description="failed digest answers from one source "
                                   "within 60 s before it is refused unheard (password guessing)")
    auth_block_s: int = Field(300, ge=1, le=86400, description="how long such a source stays refused")
    untrusted: Literal["reject", "drop"] = Field("reject", description="out-of-dialog requests (INVITE, OPTIONS, "
                                                 "...) from a source that is no trunk's (inbound_acl, a host given "
                                                 "by address) nor in trusted_sources: reject: 403; drop: no answer. "
                                                 "Either way statelessly, before any call exists (a flood costs no "
                                                 "memory). INVITEs from anywhere still reach digest authentication "
                                                 "if a trunk has credentials and no inbound_acl")
    trusted_sources: list[str] = Field(default_factory=list, description="more CIDRs whose out-of-dialog requests "
                                       "pass (monitoring that sends OPTIONS); their INVITEs are screened as any")

    @field_validator("listen_ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        return str(ipaddress.ip_address(v.strip("[]")))  # "[::1]" as TOML users write it in URIs: "::1"

    _public = field_validator("public_host")(lambda v: bare_host(v))

    @model_validator(mode="after")
    def _one_family(self) -> SipSettings:
        """One address family per node: pjsua binds every account's RTP to listen_ip, so SDP names that family;
        a media_public_address of the other family would send peers to an address no RTP socket has."""
        if self.media_public_address and ipaddress.ip_address(self.media_public_address).version != \
                ipaddress.ip_address(self.listen_ip).version:
            raise ValueError(f"media_public_address: {self.media_public_address} is not of listen_ip's address "
                             f"family ({self.listen_ip}): RTP is bound there")
        return self

    @property
    def uri_host(self) -> str:
        """Our host as URIs write it (From, Contact): public_host or listen_ip, an IPv6 address in brackets."""
        host = self.public_host or self.listen_ip
        return f"[{host}]" if ":" in host else host

    _trusted = field_validator("trusted_sources")(lambda v: [str(ipaddress.ip_network(n, strict=False)) for n in v])


class HttpSettings(Section):
    listen_ip: str = "127.0.0.1"
    port: Port = 8080
    admin_token: str = Field("", description="bearer token for the management API; empty: generated at start")
    max_event_streams_per_user: int = Field(8, ge=1, le=1000, description="live event streams open at once for "
                                            "one user (tabs, devices); beyond: 429")
    max_event_streams: int = Field(500, ge=1, le=100000, description="live event streams open at once in all "
                                   "(each holds a socket, which RTP needs too); beyond: 429")
    auth_max_failures: int = Field(20, ge=1, le=10000, description="requests with a missing or wrong token "
                                   "from one source within 60 s before it is blocked (token guessing)")
    auth_block_s: int = Field(300, ge=1, le=86400, description="how long such a source gets 429, even with a "
                              "right token")
    trusted_proxies: list[str] = Field(default_factory=list, description="CIDRs of reverse proxies whose "
                                       "X-Forwarded-For names the client; empty: the peer address is the client")

    @field_validator("listen_ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        ipaddress.ip_address(v)
        return v

    _proxies = field_validator("trusted_proxies")(lambda v: [str(ipaddress.ip_network(n, strict=False)) for n in v])


class StoreSettings(Section):
    path: Path = Path("var/b2bua.sqlite")
    upkeep_s: float = Field(5.0, gt=0, le=300, description="how often writes the database refused are retried "
                            "and a deleted database file is looked for")


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    json_output: bool = Field(True, alias="json")


class TelecommuterSettings(Section):
    home_country: str = Field("DE", pattern=r"^[A-Za-z]{2}$", description="ISO 3166 region for national numbers")
    internal_pattern: str = Field("[0-9]{2,6}", description="regex: what counts as an internal extension")
    callback_presentation: str = Field("", description="number shown to the user on callback legs; "
                                                       "empty: the user's business number")
    default_class_of_service: str = "standard"
    user_answer_timeout_s: float = Field(30.0, gt=0, le=300)
    confirm_timeout_s: float = Field(15.0, gt=0, le=120)
    failure_tone_s: float = Field(3.0, ge=0, le=30)
    test_call_confirmation_s: float = Field(3.0, gt=0, le=30)
    ring_timeout_s: float = Field(20.0, gt=0, le=300, description="how long a user's phone rings for an "
                                                                  "incoming call before voicemail/busy")
    owned_numbers: list[Annotated[str, Field(pattern=r"^\+[0-9]+$")]] = Field(
        default_factory=list, description="E.164 prefixes of our DID ranges: a call to one of them that is "
                                          "nobody's business number gets 404 instead of being routed on")
    redirect_headers: list[Literal["diversion", "history-info"]] = Field(
        default_factory=lambda: list[Literal["diversion", "history-info"]](["diversion", "history-info"]),
        description="how a redirected call names the business number toward the telecommuter's carrier")
    diversion_reason: Literal["unconditional", "follow-me", "deflection", "unknown"] = "unconditional"

    _regex = field_validator("internal_pattern")(lambda v: valid_regex(v))


def _check_greeting(v: str) -> str:
    if not v:
        return v
    import wave

    try:
        with wave.open(v, "rb") as w:
            fmt = (w.getframerate(), w.getnchannels(), w.getsampwidth())
            frames = w.getnframes()
    except FileNotFoundError:
        raise ValueError(f"file not found: {v}") from None
    except (OSError, EOFError, wave.Error) as e:
        raise ValueError(f"not a readable WAV file: {e}") from None
    if fmt != (8000, 1, 2):
        raise ValueError(f"must be 8 kHz mono 16-bit PCM, got {fmt[0]} Hz, {fmt[1]} channel(s), {8 * fmt[2]}-bit")
    if frames < 800:
        raise ValueError("shorter than 0.1 s")
    return v


KeypadAction = Literal["toggle-hold", "hold", "retrieve", "swap", "park", "unpark", "accept", "reject", "hangup"]


def _default_keypad() -> dict[str, KeypadAction]:
    return {"*1": "toggle-hold", "*2": "swap", "*3": "park", "*4": "accept", "*5": "unpark", "*6": "reject",
            "*0": "hangup"}


class KeepConnectedSettings(Section):
    rtp_timeout_s: float = Field(10.0, ge=0, le=600, description="no audio from the persistent leg this long "
                                                                 "(not on hold): it is dead; 0: off")
    reconnect_timeout_s: float = Field(60.0, gt=0, le=3600, description="held/parked calls wait this long for "
                                                                        "the user to be reachable again")
    redial_on_drop: bool = Field(False, description="call the telecommuter back at once when the line drops "
                                                    "with calls kept")
    redial_interval_s: float = Field(10.0, ge=1, le=600)
    park_slots: int = Field(9, ge=1, le=99)
    park_timeout_s: float = Field(120.0, gt=0, le=3600, description="a parked call rings back after this")
    auto_answer: bool = Field(True, description="incoming calls connect to an idle line at once (else: "
                                                "announced, accepted from the API or keypad)")
    offer_timeout_s: float = Field(20.0, gt=0, le=300)
    music_wav: str = Field("", description="8 kHz mono 16-bit WAV for held/parked callers; empty: built-in")
    fallback_code: Literal[480, 486, 503] = 480
    keypad: dict[Annotated[str, Field(pattern=r"^[0-9*#]{1,4}$")], KeypadAction] = Field(
        default_factory=_default_keypad, description="DTMF code on the persistent leg -> action")

    _music = field_validator("music_wav")(lambda v: _check_greeting(v))


class VoicemailSettings(Section):
    dir: str = Field("", description="where messages are kept; empty: a voicemail/ folder beside the store")
    greeting_wav: str = Field("", description="8 kHz mono 16-bit WAV played before the beep; empty: a "
                                              "built-in chime")
    max_message_s: float = Field(120.0, gt=1, le=3600)
    max_messages: int = Field(100, ge=1, le=10000, description="per user; a full box answers busy")
    enabled_by_default: bool = True

    _greeting = field_validator("greeting_wav")(lambda v: _check_greeting(v))


Category = Literal["internal", "national", "mobile", "international", "premium", "emergency"]


class ClassOfServiceSettings(Section):
    allow: list[Category] = Field(default_factory=lambda: list[Category](["internal", "national", "mobile"]))
    blocked_prefixes: list[Annotated[str, Field(pattern=r"^\+?[0-9]+$")]] = Field(default_factory=list)
    max_concurrent_calls: int = Field(2, ge=1, le=100)
    max_calls_per_minute: int = Field(10, ge=1, le=10000)


def _default_cos() -> dict[str, ClassOfServiceSettings]:
    return {
        "standard": ClassOfServiceSettings(),
        "international": ClassOfServiceSettings(allow=["internal", "national", "mobile", "international"]),
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="B2BUA_", env_nested_delimiter="__", extra="forbid", frozen=True, populate_by_name=True
    )

    node: NodeSettings = NodeSettings()
    sip: SipSettings = SipSettings()
    http: HttpSettings = HttpSettings()
    store: StoreSettings = StoreSettings()
    logging: LoggingSettings = LoggingSettings()
    trunks: list[TrunkSettings] = Field(default_factory=list)
    routes: list[RouteSettings] = Field(default_factory=list)
    telecommuter: TelecommuterSettings = TelecommuterSettings()
    voicemail: VoicemailSettings = VoicemailSettings()
    keep_connected: KeepConnectedSettings = KeepConnectedSettings()
    classes_of_service: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], ClassOfServiceSettings] = Field(
        default_factory=_default_cos)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the file's content arrives as init kwargs; the environment overrides it
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        names = [t.name for t in self.trunks]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"trunks[{i}].name: duplicate trunk name {name!r}")
        for i, r in enumerate(self.routes):
            key = f"routes[{i}].{'trunks' if r.trunks else 'trunk'}"
            for name in r.targets:
                if name not in names:
                    raise ValueError(f"{key}: no trunk named {name!r}")
                if not next(t for t in self.trunks if t.name == name).host:
                    raise ValueError(f"{key}: trunk {name!r} has no host to send calls to")
            for f in r.from_trunks:
                if f not in names:
                    raise ValueError(f"routes[{i}].from_trunks: no trunk named {f!r}")
        users = [t.auth_username for t in self.trunks]
        realms = [t.outbound_auth_realm for t in self.trunks]
        for i, t in enumerate(self.trunks):
            if t.outbound_auth_realm and t.outbound_auth_realm in realms[:i]:
                raise ValueError(f"trunks[{i}].outbound_auth_realm: {t.outbound_auth_realm!r} is already another "
                                 "trunk's (one set of credentials per realm)")
            if t.auth_username and t.auth_username in users[:i]:
                raise ValueError(f"trunks[{i}].auth_username: {t.auth_username!r} is already another trunk's")
            if (problem := trunk_transport_problem(t.transport, self.sip.transports)) is not None:
                raise ValueError(f"trunks[{i}].transport: {problem}")
            if t.class_of_service and t.class_of_service not in self.classes_of_service:
                raise ValueError(f"trunks[{i}].class_of_service: no class of service {t.class_of_service!r}")
        if (conflict := srtp_conflict(self.trunks)) is not None:
            raise ValueError(f"trunks[{conflict[0]}].srtp: {conflict[1]}")
        if self.telecommuter.default_class_of_service not in self.classes_of_service:
            raise ValueError(f"telecommuter.default_class_of_service: no class of service "
                             f"{self.telecommuter.default_class_of_service!r}")
        return self


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_settings(path: Path | str | None = None) -> Settings:
    """Load the TOML file (the bundled one by default) and the environment; raise ConfigError on any fault."""
    file = Path(path) if path is not None else BUNDLED_CONFIG
    source = str(file)
    try:
        data: dict[str, Any] = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except OSError as e:
        raise ConfigError(source, "", f"cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, "", f"not valid TOML: {e}") from None
    try:
        return Settings(**data)
    except ValidationError as e:
        err = e.errors()[0]
        msg = str(err["msg"]).removeprefix("Value error, ")
        key = _key(tuple(err["loc"]))
        # cross-field errors name their own key ("routes[0].trunk: ...")
        m = re.match(r"^([\w\[\]\.]+): (.*)$", msg)
        if not key and m:
            key, msg = m.group(1), m.group(2)
        if len(e.errors()) > 1:
            msg += f" (and {len(e.errors()) - 1} more problem(s))"
        raise ConfigError(f"{source} (or B2BUA_* environment)", key or "(top level)", msg) from None

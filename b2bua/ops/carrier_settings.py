"""The carrier-facing settings: trunks (who may send us calls, where routed calls go) and routes."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from b2bua.ops.settings_base import Port, Section, valid_regex

# The SDES crypto suites our pjsua2 build has (pjmedia with Debian's libsrtp2: no AES-192, no AES-GCM)
SrtpSuite = Literal["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AES_256_CM_HMAC_SHA1_80",
                    "AES_256_CM_HMAC_SHA1_32"]
DEFAULT_SUITES: tuple[SrtpSuite, ...] = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")


class TrunkSettings(Section):
    """A carrier trunk: who may send us calls (ACL), and where calls routed to it go."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    inbound_acl: list[str] = Field(default_factory=list, description="CIDRs allowed to send INVITEs")
    host: str = ""
    port: Port = 5060
    transport: Literal["udp", "tcp", "tls"] = Field("udp", description="how calls routed to this trunk are sent: "
                                                    "tcp adds ;transport=tcp, tls uses a sips: URI (port: usually "
                                                    "5061); the listener must be in sip.transports")
    class_of_service: str = Field("", description="dialling rules for calls from this trunk that are routed "
                                                  "out again; empty: none (a trusted peer)")
    extensions: bool = Field(False, description="may call users by internal extension (a PBX, desk phones); "
                                                "other trunks reach users only by their business number")
    auth_username: str = Field("", pattern=r'^[^"\\\s]{0,64}$', description="if set, INVITEs from this trunk "
                               "must pass SIP digest authentication; with no inbound_acl, from any address")
    auth_password: SecretStr = Field(SecretStr(""), description="the digest password, or use auth_ha1")
    auth_ha1: str = Field("", pattern=r"^([0-9a-fA-F]{32})?$",
                          description="hex MD5 of 'username:realm:password' instead of the password itself")

    outbound_auth_username: str = Field("", description="if the trunk challenges our INVITEs (401/407), answer "
                                        "with these credentials")
    outbound_auth_password: SecretStr = SecretStr("")
    outbound_auth_realm: str = Field("", pattern=r'^[^"\\\r\n]{0,128}$', description="the realm the trunk "
                                     "challenges with (required: credentials are only ever given to that realm)")

    srtp: Literal["off", "optional", "mandatory"] = Field("off", description="SDES-SRTP (RFC 4568) on this "
                                                          "trunk's media. optional: our INVITEs offer RTP/AVP with "
                                                          "keys (a=crypto) and plain or SRTP answers are taken; "
                                                          "mandatory: we offer RTP/SAVP only (a far end without SRTP "
                                                          "refuses it: 488); off: plain RTP, no keys offered")
    srtp_secure_signaling: bool = Field(True, description="keys travel in the SDP, so SRTP only over TLS signalling "
                                        "(transport = \"tls\"; calls going over anything else are refused with "
                                        "488); false allows srtp on a udp/tcp trunk (a private network only)")
    srtp_suites: list[SrtpSuite] = Field(default_factory=lambda: list[SrtpSuite](DEFAULT_SUITES),
                                         description="crypto suites offered and accepted, in order of preference")

    ping_interval_s: float = Field(0.0, ge=0, le=3600, description="send OPTIONS to the host this often and "
                                   "skip the trunk in routing while it is down; 0: no pings, always up")
    ping_timeout_s: float = Field(2.0, gt=0, le=30, description="no final response to a ping within this: a "
                                  "failure (so are 408 and 503; any other response means alive)")
    down_after: int = Field(3, ge=1, le=100, description="failed pings in a row that mark the trunk down")
    up_after: int = Field(2, ge=1, le=100, description="answered pings in a row that mark it up again")
    failover_timeout_s: float = Field(0.0, ge=0, le=300, description="no provisional response (18x) to our "
                                      "INVITE within this: CANCEL it and try the route's next trunk; 0: wait for "
                                      "a final response (503/408 or a transport error still fail over)")

    @model_validator(mode="after")
    def _credentials(self) -> TrunkSettings:
        out = (self.outbound_auth_username, self.outbound_auth_password.get_secret_value(), self.outbound_auth_realm)
        if any(out) and not all(out):
            raise ValueError("outbound_auth_username, outbound_auth_password and outbound_auth_realm go together")
        has_secret = bool(self.auth_password.get_secret_value() or self.auth_ha1)
        if self.auth_username and not has_secret:
            raise ValueError("auth_username is set but neither auth_password nor auth_ha1")
        if has_secret and not self.auth_username:
            raise ValueError("auth_password/auth_ha1 is set but auth_username is not")
        if self.auth_password.get_secret_value() and self.auth_ha1:
            raise ValueError("set auth_password or auth_ha1, not both")
        return self

    @model_validator(mode="after")
    def _srtp(self) -> TrunkSettings:
        if self.srtp == "off":
            return self
        if self.srtp_secure_signaling and self.transport != "tls":
            raise ValueError(f"srtp: SRTP keys would travel in clear text over {self.transport}: use transport = "
                             f'"tls", or srtp_secure_signaling = false (a private network only)')
        if not self.srtp_suites:
            raise ValueError("srtp_suites: at least one suite is needed when srtp is on")
        if len(set(self.srtp_suites)) != len(self.srtp_suites):
            raise ValueError("srtp_suites: a suite is named twice")
        return self

    _host = field_validator("host")(lambda v: bare_host(v))

    @field_validator("inbound_acl")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for net in v:
            ipaddress.ip_network(net, strict=False)
        return v


class RouteSettings(Section):
    """Called number (Request-URI user part) → trunk. First match wins; ``pattern`` is a regex."""

    pattern: str = Field(".*", description="regex matched against the whole called number")
    trunk: str = Field("", description="the one trunk calls go to (or use trunks)")
    trunks: list[str] = Field(default_factory=list, description="trunks in order of preference: a down one is "
                              "skipped, a 503/408/timeout on one is retried on the next")
    strip: int = Field(0, ge=0)
    prepend: str = ""
    from_trunks: list[str] = Field(default_factory=list, description="only for calls from these trunks")

    _regex = field_validator("pattern")(lambda v: valid_regex(v))

    @model_validator(mode="after")
    def _one_way_to_name_trunks(self) -> RouteSettings:
        if bool(self.trunk) == bool(self.trunks):
            raise ValueError("set trunk or trunks (one of them)")
        if len(set(self.trunks)) != len(self.trunks):
            raise ValueError("trunks: a trunk is named twice")
        return self

    @property
    def targets(self) -> list[str]:
        """The trunks in order (``trunk = "x"`` is a list of one)."""
        return list(self.trunks) or [self.trunk]


def bare_host(v: str) -> str:
    """A host name or address as sockets take it: "[::1]" (as URIs write it) is "::1". Anything with a colon must
    be an IPv6 address, so a port written into the host ("10.0.0.1:5060") is refused rather than dialled."""
    v = v.strip()
    if v.startswith("[") or ":" in v:
        try:
            return str(ipaddress.IPv6Address(v[1:-1] if v.startswith("[") and v.endswith("]") else v))
        except ValueError:
            raise ValueError(f"{v!r} is not an IPv6 address (a port goes in its own key)") from None
    return v


def srtp_conflict(trunks: list[TrunkSettings]) -> tuple[int, str] | None:
    """(index, why) for a trunk that sends calls where an earlier one does (transport, host, port) with other SRTP
    settings: an outgoing leg finds its SRTP by where it goes, so the two could not be told apart."""
    seen: dict[tuple[str, str, int], TrunkSettings] = {}
    for i, t in enumerate(trunks):
        if not t.host:
            continue
        key = (t.transport, t.host.lower(), t.port)
        other = seen.setdefault(key, t)
        srtp = (t.srtp, t.srtp_secure_signaling, t.srtp_suites) if t.srtp != "off" else ("off",)
        theirs = (other.srtp, other.srtp_secure_signaling, other.srtp_suites) if other.srtp != "off" else ("off",)
        if srtp != theirs:
            return i, (f"trunk {other.name!r} sends calls to the same {t.transport} host and port with other SRTP "
                       "settings (a call's SRTP is chosen by where it goes)")
    return None


def trusted_sources(trunks: list[TrunkSettings]) -> list[str]:
    """The networks whose out-of-dialog requests pass the SIP edge: every trunk's inbound ACL, and the host of
    each trunk given by address (a carrier we send calls to may ping us with OPTIONS from there; its INVITEs are
    still screened). A host given by name is not resolved: put its addresses in inbound_acl."""
    out: list[str] = []
    for t in trunks:
        nets = [str(ipaddress.ip_network(n, strict=False)) for n in t.inbound_acl]
        try:
            nets.append(str(ipaddress.ip_network(t.host)))
        except ValueError:  # a name, or no host
            pass
        for n in nets:
            if n not in out:  # an ACL that names the host as well: once
                out.append(n)
    return out


def invites_from_anywhere(trunks: list[TrunkSettings]) -> bool:
    """Whether an INVITE from any address may be legitimate: a trunk authenticates by digest without an ACL."""
    return any(t.auth_username and not t.inbound_acl for t in trunks)

"""The ``[sip]`` keys for listeners (UDP, TCP, TLS) and the address written into SDP.

Kept apart from ``settings.py`` so the transport rules live in one place. Secure by default: only what is listed
in ``transports`` listens, TLS needs a certificate and key that exist, and verifying clients needs a CA.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from b2bua.ops.settings_base import Port, Section

Transport = Literal["udp", "tcp", "tls"]


class SipTransportSettings(Section):
    """Listeners and media address; ``SipSettings`` extends it (the keys stay in ``[sip]``)."""

    transports: list[Transport] = Field(
        default_factory=lambda: list[Transport](["udp"]),
        description="listeners to open: udp and tcp share listen_port, tls listens on tls_port; udp is required "
                    "(RFC 3261, and the SIP thread's wake-up uses it)")
    tls_port: Port = 5061
    tls_cert_file: str = Field("", description="PEM certificate (chain) presented by the TLS listener and to "
                                               "carriers we connect to")
    tls_key_file: str = Field("", description="PEM private key of tls_cert_file")
    tls_ca_file: str = Field("", description="PEM CA bundle that carriers' certificates are verified against")
    tls_verify_server: bool = Field(True, description="refuse a carrier whose certificate does not verify against "
                                                      "tls_ca_file (or the host name/IP does not match)")
    tls_verify_client: bool = Field(False, description="mutual TLS: connecting carriers must present a "
                                                       "certificate that verifies against tls_ca_file")
    media_public_address: str = Field("", description="IP address written into SDP c=/o= (NAT, separate media "
                                                      "interface); empty: the address RTP is bound to (listen_ip)")

    @field_validator("transports")
    @classmethod
    def _transports(cls, v: list[Transport]) -> list[Transport]:
        if len(set(v)) != len(v):
            raise ValueError("a transport is listed twice")
        if "udp" not in v:
            raise ValueError("udp must be listed (RFC 3261 requires it, and the SIP thread's wake-up uses it)")
        return v

    @field_validator("media_public_address")
    @classmethod
    def _media_ip(cls, v: str) -> str:
        if v:
            ipaddress.ip_address(v)
        return v

    @model_validator(mode="after")
    def _tls_files(self) -> SipTransportSettings:
        files = {"tls_cert_file": self.tls_cert_file, "tls_key_file": self.tls_key_file,
                 "tls_ca_file": self.tls_ca_file}
        if "tls" in self.transports:
            for key in ("tls_cert_file", "tls_key_file"):
                if not files[key]:
                    raise ValueError(f"{key}: required when transports lists tls")
        if self.tls_verify_client and not self.tls_ca_file:
            raise ValueError("tls_ca_file: required for tls_verify_client (the CA that client certificates "
                             "must verify against)")
        for key, path in files.items():
            if path and not Path(path).is_file():
                raise ValueError(f"{key}: no such file: {path}")
        return self


def trunk_transport_problem(trunk_transport: str, listeners: list[Transport]) -> str | None:
    """Why a trunk's transport cannot be used with these listeners, or None: pjsip sends over TCP/TLS only
    through a listener of that kind (its transport factory)."""
    if trunk_transport not in listeners:
        return f"transport {trunk_transport!r} needs {trunk_transport!r} in sip.transports"
    return None

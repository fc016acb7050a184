"""What the SIP engine is started with. Plain data: importing it does not load pjsua2."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """The TLS listener (``port``) and what it presents and verifies; the same for connections we open."""

    port: int
    cert_file: str
    key_file: str
    ca_file: str = ""
    verify_server: bool = True  # carriers we connect to must verify against ca_file
    verify_client: bool = False  # mutual TLS: connecting carriers must present a certificate that verifies


@dataclass(frozen=True, slots=True)
class EngineConfig:
    listen_ip: str
    listen_port: int
    public_host: str
    rtp_port_start: int
    rtp_port_count: int
    codecs: tuple[str, ...]
    user_agent: str
    poll_ms: int
    log_level: int
    media_threads: int
    media_nice: int = 0
    ptime_ms: int = 20  # packetisation of what we send and the conference bridge's frame
    credentials: tuple[tuple[str, str, str], ...] = ()  # (realm, username, password) for challenges to our INVITEs
    tcp: bool = False  # a TCP listener on listen_port beside UDP
    tls: TlsConfig | None = None  # a TLS listener, if configured
    media_public_address: str = ""  # SDP c=/o= address; empty: the bound RTP address

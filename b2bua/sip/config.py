"""What the SIP engine is started with. Plain data: importing it does not load pjsua2."""

from __future__ import annotations

from dataclasses import dataclass


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

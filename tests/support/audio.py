"""Which tone went where: RTP streams from a loopback capture, decoded and checked with Goertzel."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from b2bua.media import g711, pcap

CANDIDATES = (425.0, 697.0, 1000.0, 1209.0, 1336.0, 1700.0, 2000.0)


def streams(path: Path, src_ip: str, dst_ip: str, min_port: int = 1024) -> dict[tuple[int, int], list[bytes]]:
    """G.711 payloads per (src port, dst port) for RTP from src_ip to dst_ip."""
    out: dict[tuple[int, int], list[bytes]] = defaultdict(list)
    for pkt in pcap.read(path):
        if pkt.src != src_ip or pkt.dst != dst_ip or pkt.dport < min_port or pkt.sport < min_port:
            continue
        rtp = pcap.parse_rtp(pkt.payload)
        if rtp is None or rtp.pt not in (0, 8):
            continue
        out[(pkt.sport, pkt.dport)].append(bytes([rtp.pt]) + rtp.payload)
    return dict(out)


def tone_in(payloads: list[bytes], expected_hz: float, min_share: float = 0.5) -> tuple[bool, str]:
    """True if, in most 100 ms blocks carrying sound, ``expected_hz`` dominates."""
    samples: list[int] = []
    for p in payloads:
        samples += g711.decode(p[1:], p[0])
    blocks = [samples[i : i + 800] for i in range(0, len(samples) - 799, 800)]
    loud = [b for b in blocks if sum(x * x for x in b) / len(b) > 1e5]
    if not loud:
        return False, f"no audible blocks in {len(blocks)} blocks"
    hits = 0
    for b in loud:
        f, power = g711.dominant_tone(b, CANDIDATES)
        if f == expected_hz and power > 0.5:
            hits += 1
    share = hits / len(loud)
    return share >= min_share, f"{hits}/{len(loud)} audible blocks carry {expected_hz} Hz ({len(blocks)} blocks)"

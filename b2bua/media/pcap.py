"""Minimal pcap reading/writing for RTP over UDP: tone files (IPv4) for SIPp's play_pcap_audio, and reading
captures of the loopback interface (IPv4 and IPv6) to prove which audio went where."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_LINKTYPE_ETHERNET = 1
_LINKTYPE_LINUX_SLL = 113
_LINKTYPE_LINUX_SLL2 = 276


@dataclass(frozen=True, slots=True)
class Packet:
    ts: float
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Rtp:
    pt: int
    seq: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


def parse_rtp(data: bytes) -> Rtp | None:
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    cc = data[0] & 0x0F
    off = 12 + 4 * cc
    if data[0] & 0x10 and len(data) >= off + 4:  # header extension
        off += 4 + 4 * struct.unpack_from("!H", data, off + 2)[0]
    end = len(data)
    if data[0] & 0x20 and end > off:  # padding
        end -= data[-1]
    seq, ts, ssrc = struct.unpack_from("!HII", data, 2)
    return Rtp(data[1] & 0x7F, seq, ts, ssrc, bool(data[1] & 0x80), data[off:end])


def read(path: Path) -> Iterator[Packet]:
    data = path.read_bytes()
    if len(data) < 24:
        return
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", data, pos)
        pos += 16
        frame = data[pos : pos + incl]
        pos += incl
        found = _udp(_ip_of(frame, linktype))
        if found is not None:
            src, dst, udp = found
            sport, dport, ulen = struct.unpack_from("!HHH", udp)
            yield Packet(sec + frac / (1e9 if nano else 1e6), src, sport, dst, dport, udp[8:ulen])


def _ip_of(frame: bytes, linktype: int) -> bytes:
    """The IP packet in a frame (IPv4 or IPv6); empty for other Ethernet payloads (ARP)."""
    if linktype == _LINKTYPE_ETHERNET:
        return frame[14:] if len(frame) >= 14 and frame[12:14] in (b"\x08\x00", b"\x86\xdd") else b""
    if linktype == _LINKTYPE_LINUX_SLL:
        return frame[16:]
    if linktype == _LINKTYPE_LINUX_SLL2:
        return frame[20:]
    return frame


def _udp(ip: bytes) -> tuple[str, str, bytes] | None:
    """(source, destination, UDP datagram) of an IPv4 or IPv6 packet carrying UDP (IPv6: no extension headers,
    which loopback captures of RTP do not have); None for anything else."""
    if len(ip) >= 20 and ip[0] >> 4 == 4 and ip[9] == 17:
        udp = ip[(ip[0] & 0x0F) * 4:]
        src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
    elif len(ip) >= 40 and ip[0] >> 4 == 6 and ip[6] == 17:
        udp = ip[40:]
        src, dst = str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40]))
    else:
        return None
    return (src, dst, udp) if len(udp) >= 8 else None


def write_rtp_file(path: Path, payloads: list[bytes], pt: int, ptime_ms: int = 20,
                   src: tuple[str, int] = ("10.0.0.1", 6000), dst: tuple[str, int] = ("10.0.0.2", 6000)) -> None:
    """An Ethernet/IPv4/UDP/RTP pcap, one packet per ``ptime_ms``, as SIPp's play_pcap_audio expects."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET))
    samples_per = 8 * ptime_ms
    for i, p in enumerate(payloads):
        rtp = struct.pack("!BBHII", 0x80, (0x80 if i == 0 else 0) | pt, i & 0xFFFF, i * samples_per, 0x1234ABCD) + p
        udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(rtp), 0) + rtp
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                          bytes(map(int, src[0].split("."))), bytes(map(int, dst[0].split("."))))
        csum = _ip_checksum(iph)
        iph = iph[:10] + struct.pack("!H", csum) + iph[12:]
        frame = b"\x00" * 12 + b"\x08\x00" + iph + udp
        t = i * ptime_ms / 1000
        out += struct.pack("<IIII", int(t), round((t % 1) * 1e6), len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))


def _ip_checksum(header: bytes) -> int:
    s: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF

"""G.711 mu-law/A-law codecs (ITU-T G.711), table driven; used by the test tools and the RTP load tool."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def _ulaw_encode(sample: int) -> int:
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, clip) + bias
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _ulaw_decode(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    sample = ((mantissa << 3) + 0x84) << exponent
    sample -= 0x84
    return -sample if sign else sample


def _alaw_decode(byte: int) -> int:
    byte ^= 0x55
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 0x07, byte & 0x0F
    sample = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return sample if sign else -sample


ULAW_DECODE: tuple[int, ...] = tuple(_ulaw_decode(b) for b in range(256))
ALAW_DECODE: tuple[int, ...] = tuple(_alaw_decode(b) for b in range(256))


def ulaw_encode(samples: Iterable[int]) -> bytes:
    return bytes(_ulaw_encode(s) for s in samples)


def decode(payload: bytes, payload_type: int) -> list[int]:
    """PT 0 is PCMU, PT 8 is PCMA; anything else is not audio we understand."""
    table = ULAW_DECODE if payload_type == 0 else ALAW_DECODE if payload_type == 8 else None
    if table is None:
        raise ValueError(f"not G.711: payload type {payload_type}")
    return [table[b] for b in payload]


def tone(freq_hz: float, seconds: float, rate: int = 8000, amplitude: float = 8000.0) -> list[int]:
    n = int(seconds * rate)
    return [int(amplitude * math.sin(2 * math.pi * freq_hz * i / rate)) for i in range(n)]


def goertzel_power(samples: Sequence[int], freq_hz: float, rate: int = 8000) -> float:
    """Relative power of one frequency in the block, normalised by the block's total energy (0..~1)."""
    n = len(samples)
    if n == 0:
        return 0.0
    w = 2 * math.pi * freq_hz / rate  # the exact frequency, not the nearest DFT bin (425 Hz sits between bins)
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    energy = sum(x * x for x in samples)
    return 0.0 if energy == 0 else 2 * power / (n * energy)


def dominant_tone(samples: Sequence[int], candidates: Iterable[float], rate: int = 8000) -> tuple[float, float]:
    """The candidate frequency with the largest normalised power, and that power."""
    best = max(((f, goertzel_power(samples, f, rate)) for f in candidates), key=lambda fp: fp[1])
    return best

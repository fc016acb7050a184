"""Tone checks on a WAV file a test phone recorded."""

from __future__ import annotations

import array
import wave
from pathlib import Path

from b2bua.media import g711


def samples(path: Path) -> tuple[list[int], int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2, "expected 16-bit PCM"
        data = array.array("h", w.readframes(w.getnframes()))
        return list(data[:: w.getnchannels()]), w.getframerate()


def tone_share(path: Path, expected_hz: float | tuple[float, ...],
               candidates: tuple[float, ...] = (400.0, 1000.0, 1700.0), start_s: float = 0.0,
               end_s: float | None = None) -> tuple[float, int]:
    """Share of the audible 100 ms blocks (between start_s and end_s) dominated by expected_hz (or any of them)."""
    expected = expected_hz if isinstance(expected_hz, tuple) else (expected_hz,)
    s, rate = samples(path)
    s = s[int(start_s * rate): None if end_s is None else int(end_s * rate)]
    n = rate // 10
    blocks = [s[i : i + n] for i in range(0, len(s) - n + 1, n)]
    loud = [b for b in blocks if sum(x * x for x in b) / len(b) > 1e5]
    if not loud:
        return 0.0, 0
    hits = sum(1 for b in loud if (ft := g711.dominant_tone(b, candidates, rate))[0] in expected and ft[1] > 0.5)
    return hits / len(loud), len(loud)

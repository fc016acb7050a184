"""Built-in sounds, written as 8 kHz mono 16-bit WAV files at start (so the product needs no audio assets):
the voicemail greeting and music on hold. Operators replace them with their own WAVs in the config."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 8000
Note = tuple[float, float]  # (Hz, seconds); 0 Hz = silence

# a three-note chime, a pause, then the beep that says "speak now"
GREETING: tuple[Note, ...] = ((523, 0.25), (659, 0.25), (784, 0.35), (0, 0.4), (1400, 0.4), (0, 0.1))
# a slow arpeggio (A major), looped for held and parked callers
MUSIC: tuple[Note, ...] = ((440, 0.4), (554, 0.4), (659, 0.4), (880, 0.6), (659, 0.4), (554, 0.4), (0, 0.2))
MUSIC_TONES = (440.0, 554.0, 659.0, 880.0)


def write_notes(path: Path, notes: tuple[Note, ...], level: float = 0.35) -> None:
    frames = bytearray()
    for freq, secs in notes:
        n = int(RATE * secs)
        for i in range(n):
            ramp = min(1.0, i / 80, (n - i) / 80)  # no clicks at note edges
            v = 0.0 if freq == 0 else level * ramp * math.sin(2 * math.pi * freq * i / RATE)
            frames += struct.pack("<h", int(v * 32767))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    tmp.replace(path)


def notes_seconds(notes: tuple[Note, ...]) -> float:
    """How long ``write_notes`` makes these notes (known without writing them)."""
    return sum(int(RATE * secs) for _, secs in notes) / RATE


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())

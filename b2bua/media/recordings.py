"""What a recording holds, read from the file itself: a recorder on a full disk leaves a 0-byte file, a header
with no audio, or a header that promises more audio than was written. The clock's idea of the length counts for
nothing; only whole frames present on disk do."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_UNSET_SIZES = (0, 0xFFFFFFFF)  # a header the recorder never finalised


@dataclass(frozen=True, slots=True)
class Recording:
    size: int  # bytes on disk
    seconds: float  # audio present: whole frames within both the header's data size and the file
    problem: str = ""  # why the file holds no usable audio ("" when it does)


def inspect_recording(path: Path) -> Recording:
    """Size and real duration of a PCM WAV file; never raises for a bad or missing file (``problem`` says why)."""
    try:
        with path.open("rb") as f:
            data = f.read()
    except OSError as e:
        return Recording(0, 0.0, f"the recording could not be read: {e.strerror or e}")
    if not data:
        return Recording(0, 0.0, "the recording is empty (0 bytes)")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return Recording(len(data), 0.0, "the recording is not a WAV file")
    rate, block, offset, declared = _chunks(data)
    if rate <= 0 or block <= 0 or offset < 0:
        return Recording(len(data), 0.0, "the recording has no complete WAV header")
    present = len(data) - offset
    usable = present if declared in _UNSET_SIZES else min(declared, present)
    seconds = (usable // block) / rate
    return Recording(len(data), seconds, "" if seconds > 0 else "the recording holds no audio")


def _chunks(data: bytes) -> tuple[int, int, int, int]:
    """(sample rate, bytes per frame, offset of the audio, data size the header declares); -1s when missing."""
    rate = block = offset = declared = -1
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt " and body + 16 <= len(data):
            _fmt, _channels, rate, _byte_rate, block = struct.unpack_from("<HHIIH", data, body)
        elif cid == b"data":
            return rate, block, body, size
        pos = body + size + (size & 1)
    return rate, block, offset, declared

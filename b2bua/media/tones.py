"""Call-progress tones the B2BUA plays itself (ETSI/CEPT 425 Hz cadences; prompts distinct from them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Segment:
    freq1: int
    freq2: int
    on_ms: int
    off_ms: int


# A tone plays its segments in order and repeats.
TONES: dict[str, tuple[Segment, ...]] = {
    "ringback": (Segment(425, 0, 1000, 4000),),
    "busy": (Segment(425, 0, 500, 500),),
    "congestion": (Segment(425, 0, 250, 250),),
    # "press the confirmation digit": two short high beeps, then a pause
    "prompt": (Segment(1000, 0, 150, 100), Segment(1000, 0, 150, 1600)),
    # keep-connected: a call is being put through to the line (two short high beeps, once every 4 s)
    "announce": (Segment(880, 0, 150, 100), Segment(880, 0, 150, 4000)),
    # ETSI call-waiting tone, mixed over the active call
    "call-waiting": (Segment(425, 0, 200, 200), Segment(425, 0, 200, 4400)),
    # test-call confirmation: a rising three-note chime
    "confirm": (Segment(660, 0, 200, 50), Segment(880, 0, 200, 50), Segment(1320, 0, 400, 1000)),
}

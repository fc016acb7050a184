"""Write the tone pcaps SIPp scenarios play (sipp-scenarios/pcap/): one frequency per side, so a capture can
tell which party's audio reached which leg. Deterministic: re-running gives identical files."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from b2bua.media import g711, pcap

OUT = Path(__file__).resolve().parents[1] / "sipp-scenarios" / "pcap"
TONES = {"tone-1000hz-pcmu.pcap": 1000.0, "tone-1700hz-pcmu.pcap": 1700.0}
SECONDS = 6.0


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, freq in TONES.items():
        samples = g711.tone(freq, SECONDS)
        payloads = [g711.ulaw_encode(samples[i : i + 160]) for i in range(0, len(samples), 160)]
        pcap.write_rtp_file(OUT / name, payloads, pt=0)
        print(OUT / name)


if __name__ == "__main__":
    main()

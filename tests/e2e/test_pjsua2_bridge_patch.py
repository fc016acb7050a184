"""The conference bridge the project builds (patch 0005: listener arrays grow on connect instead of being sized for
every possible port) still fans one source out to many sinks, and a disconnect in the middle leaves the rest.

Runs the real library in its own process: a 1000 Hz tone generator transmits to six WAV recorders (past the
initial room for four listeners), one recorder is disconnected half-way, and each file is checked for the tone.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.procs import ROOT
from tests.support.wav import samples, tone_share

SCRIPT = textwrap.dedent("""
    import sys, time
    import pjsua2 as pj
    from tests.support.phone import start_endpoint

    out = sys.argv[1]
    ep = start_endpoint()
    tone = pj.ToneGenerator()
    tone.createToneGenerator(8000, 1)
    vec = pj.ToneDescVector()
    td = pj.ToneDesc()
    td.freq1, td.freq2, td.on_msec, td.off_msec, td.volume = 1000, 0, 1000, 0, 0
    vec.append(td)
    tone.play(vec, True)
    recs = []
    for i in range(6):
        r = pj.AudioMediaRecorder()
        r.createRecorder(f"{out}/rec{i}.wav")
        tone.startTransmit(r)
        recs.append(r)

    def run(secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            ep.libHandleEvents(20)

    run(1.0)
    tone.stopTransmit(recs[2])
    run(1.0)
    del recs
    ep.libDestroy()
    print("ok")
""")


def test_one_source_reaches_six_sinks_and_a_middle_disconnect_leaves_the_rest(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60,
                       cwd=ROOT)
    assert p.returncode == 0 and "ok" in p.stdout, p.stderr[-2000:]
    for i in range(6):
        wav = tmp_path / f"rec{i}.wav"
        s, rate = samples(wav)
        seconds = len(s) / rate
        share, loud = tone_share(wav, 1000.0)
        assert share > 0.9, f"rec{i}: tone in {share:.0%} of {loud} audible blocks"
        if i == 2:  # disconnected after ~1 s: about half the others' audio
            assert 0.6 <= seconds <= 1.5, f"rec{i}: {seconds:.2f} s recorded after its disconnect"
        else:
            assert seconds >= 1.7, f"rec{i}: only {seconds:.2f} s recorded"

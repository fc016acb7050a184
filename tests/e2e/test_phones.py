"""pjsua2 test phones (separate processes) on both legs: tones each way, DTMF pass-through, hold by phone."""

from __future__ import annotations

import pytest

from tests.support import wav
from tests.support.procs import B2bua, PhoneProc

pytestmark = pytest.mark.e2e


def _far_phone(b: B2bua, **kw: str) -> PhoneProc:
    args = ["--ip", "127.0.0.3", "--port", str(b.far_port), "--rtp-port", str(b.far_port + 3000)]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", v]
    return PhoneProc(b.workdir, "far", args).wait_ready()


def _caller_phone(b: B2bua, called: str = "4930123456", **kw: str) -> PhoneProc:
    args = ["--ip", "127.0.0.2", "--port", str(b.sip_port + 1000), "--rtp-port", str(b.sip_port + 4000),
            "--call", f"sip:{called}@127.0.0.1:{b.sip_port}"]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", v]
    return PhoneProc(b.workdir, "caller", args).wait_ready()


def test_tone_each_way_and_dtmf_pass_through(b2bua: B2bua) -> None:
    far_wav, caller_wav = b2bua.workdir / "far.wav", b2bua.workdir / "caller.wav"
    far = _far_phone(b2bua, tone_hz="1700", record=str(far_wav))
    caller = _caller_phone(b2bua, tone_hz="1000", record=str(caller_wav), dtmf="159#",
                           hangup_after_s="4")
    ce = caller.wait(30)
    fe = far.wait(15)
    assert any(e["event"] == "confirmed" for e in ce), ce
    assert next(e for e in ce if e["event"] == "disconnected")["code"] == 200
    assert any(e["event"] == "disconnected" for e in fe), fe  # our BYE reached the far phone

    share, n = wav.tone_share(far_wav, 1000.0, start_s=0.5)
    assert n >= 20 and share > 0.8, f"caller's 1000 Hz at far end: {share:.2f} of {n} blocks"
    share, n = wav.tone_share(caller_wav, 1700.0, start_s=0.5)
    assert n >= 20 and share > 0.8, f"far end's 1700 Hz at caller: {share:.2f} of {n} blocks"

    digits = "".join(e["digit"] for e in fe if e["event"] == "dtmf")
    assert digits == "159#"
    b2bua.wait_idle()


def test_hold_from_caller_phone_is_reflected_to_far_phone(b2bua: B2bua) -> None:
    far = _far_phone(b2bua)
    caller = _caller_phone(b2bua, hold_at_s="1", unhold_at_s="2.5", hangup_after_s="4")
    caller.wait(30)
    fe = far.wait(15)
    statuses = [e["status"] for e in fe if e["event"] == "media"]
    # pjsua media status: 1 active, 2 local hold, 3 remote hold: the far phone saw hold, then active again
    assert 3 in statuses, statuses
    assert statuses[-1] == 1 and statuses.index(3) < len(statuses) - 1
    b2bua.wait_idle()

"""Beyond the PyPI wheel's 4-call cap; bad config; graceful shutdown with calls up; state across restart."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import audio
from tests.support.procs import PY, ROOT, B2bua, capture, uac, uas

pytestmark = pytest.mark.e2e


def test_100_concurrent_bridged_calls_with_rtp(b2bua: B2bua) -> None:
    n = 100
    # only this far end's media port: another process on the box may use the same addresses
    bpf = f"udp and src host 127.0.0.1 and dst host 127.0.0.3 and dst port {b2bua.far_port + 2000}"
    with capture(b2bua.workdir, bpf=bpf) as pcap:
        far = uas(b2bua, "uas_answer.xml", calls=n)
        trunk = uac(b2bua, "uac_call.xml", calls=n, rate=50, limit=n, hold_ms=6000).start()
        peak_calls = peak_legs = 0
        assert trunk.proc is not None
        while trunk.proc.poll() is None:
            h = b2bua.health()
            peak_calls = max(peak_calls, h["active_calls"])
            peak_legs = max(peak_legs, h["engine"]["legs"])
            time.sleep(0.25)
        r = trunk.wait(60)
        f = far.wait(30)
    assert r.rc == 0, r.out[-3000:]
    assert f.rc == 0, f.out[-3000:]
    assert peak_calls == n and peak_legs == 2 * n, (peak_calls, peak_legs)

    streams = audio.streams(pcap, "127.0.0.1", "127.0.0.3")
    assert len(streams) == n, f"{len(streams)} RTP streams toward the far end"
    short = {k: len(v) for k, v in streams.items() if len(v) < 250}  # 6 s at 50 packets/s is 300
    assert not short, short
    for payloads in list(streams.values())[:: n // 5]:  # the caller's tone, in a sample of calls
        ok, why = audio.tone_in(payloads, 1000.0)
        assert ok, why
    m = b2bua.wait_idle(15)
    assert m['b2bua_calls_total{outcome="completed-a-hangup"}'] == n


def test_bad_config_fails_start_naming_file_key_and_reason(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[sip]\nlisten_port = 99999\n')
    p = subprocess.run([PY, "-m", "b2bua", "run", "-c", str(cfg)], cwd=ROOT, capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 2
    assert str(cfg) in p.stderr and "sip.listen_port" in p.stderr and "less than or equal to 65535" in p.stderr
    cfg.write_text('[[routes]]\ntrunk = "ghost"\n')
    p = subprocess.run([PY, "-m", "b2bua", "check-config", "-c", str(cfg)], cwd=ROOT, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "routes[0].trunk" in p.stderr and "no trunk named 'ghost'" in p.stderr


def test_sip_port_in_use_fails_start_cleanly(start_b2bua: Callable[..., B2bua], tmp_path: Path) -> None:
    first = start_b2bua()
    clash = B2bua(tmp_path / "clash", env={"B2BUA_SIP__LISTEN_PORT": str(first.sip_port)})
    with pytest.raises(RuntimeError, match="exited with 1"):
        clash.start()
    tail = clash.log_tail()
    assert "SIP engine failed to start" in tail
    assert "Address already in use" in tail, tail  # the reason, not an empty pjsua2 Error
    clash.stop()


def test_sigterm_with_a_call_up_hangs_up_both_legs_and_exits_0(start_b2bua: Callable[..., B2bua]) -> None:
    b = start_b2bua()
    far = uas(b, "uas_answer.xml")
    caller = uac(b, "uac_wait_bye.xml").start()
    deadline = time.monotonic() + 10
    while b.health()["active_calls"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    assert b.stop() == 0
    r = caller.wait(20)
    f = far.wait(20)
    assert r.rc == 0 and r.requests()[-1] == "BYE", r.out
    assert f.rc == 0 and f.requests()[-1] == "BYE", f.out
    # the call record survived the shutdown and a restart
    b.start()
    status, body = b.http("GET", "/v1/cdrs")
    assert status == 200 and [c["outcome"] for c in body["cdrs"]] == ["terminated"]


def test_a_second_signal_forces_exit_while_calls_drain(tmp_path: Path) -> None:
    """The first SIGTERM starts the graceful drain (2 s of grace with a call up); the second one must not wait."""
    b = B2bua(tmp_path / "forced").start()  # not the fixture: it insists on exit code 0
    far = uas(b, "uas_answer.xml")
    caller = uac(b, "uac_wait_bye.xml").start()
    try:
        deadline = time.monotonic() + 10
        while b.health()["active_calls"] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert b.health()["active_calls"] == 1
        assert b.proc is not None
        b.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert b.proc.poll() is None, "still draining: the call has 2 s of grace"
        sent = time.monotonic()
        b.proc.send_signal(signal.SIGTERM)
        rc = b.proc.wait(5)
        assert rc == 130 and time.monotonic() - sent < 1.5, rc
        events = [e.get("event") for e in b.log_events()]
        assert "signal: shutting down" in events and "second signal: forced exit" in events, events[-5:]
    finally:
        b.stop()
        caller.stop()
        far.stop()


def test_management_api_requires_the_admin_token(b2bua: B2bua) -> None:
    assert b2bua.http("GET", "/v1/calls", token=None)[0] == 401
    assert b2bua.http("GET", "/v1/calls", token="wrong")[0] == 403
    assert b2bua.http("GET", "/v1/calls")[0] == 200
    assert b2bua.http("DELETE", "/v1/calls/nope")[0] == 404
    assert b2bua.http("GET", "/v1/cdrs?limit=0")[0] == 422
    h = b2bua.health()
    assert h["limits"]["max_calls"] >= 2048, "the B2BUA build, not the 4-call PyPI wheel"
    assert b2bua.metric("b2bua_limit", limit="max_calls") == h["limits"]["max_calls"]
    assert b2bua.metric("b2bua_engine_up") == 1

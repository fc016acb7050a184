"""Smoke runs of the load-tester pack (sipp-scenarios/README.md), so the scenarios and the provisioning script
cannot silently rot: a few calls a second for a few seconds, zero failures."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.procs import PY, SCENARIOS, B2bua, uac, uas

pytestmark = pytest.mark.e2e


def test_incoming_to_telecommuters_from_an_injection_file(b2bua: B2bua) -> None:
    users = b2bua.workdir / "users.csv"
    subprocess.run([PY, str(SCENARIOS / "provision_users.py"), "--api", f"http://127.0.0.1:{b2bua.http_port}",
                    "--token", b2bua.token, "--count", "10", "--out", str(users), "--no-voicemail"],
                   check=True, timeout=60, capture_output=True)
    assert users.read_text().splitlines()[:2] == ["SEQUENTIAL", "+493012340000;4940111222;"]
    far = uas(b2bua, "uas_answer.xml", calls=10)
    r = uac(b2bua, "uac_call_csv.xml", calls=10, hold_ms=1000, rate=5,
            extra=["-inf", str(users)]).start().wait(60)
    assert r.rc == 0, r.out
    failed = [ln.split("|")[2].strip() for ln in r.out.splitlines() if ln.strip().startswith("Failed call")]
    assert failed and failed[-1] == "0", r.out  # SIPp's own count: zero failed calls
    assert r.requests().count("INVITE") == 10
    f = far.wait(20)
    called = sorted(m.splitlines()[0].split()[1] for m in f.messages if m.startswith("INVITE"))
    assert len(set(called)) == 10 and all("+491711000" in c for c in called), called  # ten telecommuters
    assert b2bua.metric("b2bua_user_call_events_total", kind="incoming", state="connected") == 10
    b2bua.wait_idle()

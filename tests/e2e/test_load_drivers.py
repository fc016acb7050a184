"""Smoke runs of the API load drivers in sipp-scenarios/ (callback calls; keep-connected sessions), so they and
the credentials file cannot silently rot: a few calls against the real B2BUA, zero failures, and SIPp's own view
of the INVITEs agreeing with what the drivers claim."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import PY, SCENARIOS, B2bua, uas

pytestmark = pytest.mark.e2e


def provision(b: B2bua, count: int, first_did: int, first_extension: int, first_mobile: int) -> Path:
    """Users in on-demand mode, and their credentials file (user_id;token;business;extension;mobile)."""
    creds = b.workdir / f"creds-{first_did}.csv"
    subprocess.run([PY, str(SCENARIOS / "provision_users.py"), "--api", f"http://127.0.0.1:{b.http_port}",
                    "--token", b.token, "--count", str(count), "--first-did", str(first_did),
                    "--first-extension", str(first_extension), "--first-mobile", str(first_mobile),
                    "--out", str(b.workdir / f"users-{first_did}.csv"), "--credentials", str(creds),
                    "--no-voicemail"], check=True, timeout=60, capture_output=True)
    rows = [ln.split(";") for ln in creds.read_text().splitlines()]
    assert len(rows) == count and all(len(r) == 5 and r[1] for r in rows), rows
    assert rows[0][2:] == [f"+{first_did}", str(first_extension), f"+{first_mobile}"], rows[0]
    assert creds.stat().st_mode & 0o077 == 0  # the tokens are secrets
    return creds


def drive(b: B2bua, script: str, creds: Path, *args: str) -> dict[str, Any]:
    out = b.workdir / f"{script}.json"
    r = subprocess.run([PY, str(SCENARIOS / script), "--api", f"http://127.0.0.1:{b.http_port}",
                        "--credentials", str(creds), "--json", str(out), *args],
                       timeout=60, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr + b.log_tail()
    assert r.stdout.rstrip().endswith("OK"), r.stdout
    return dict(json.loads(out.read_text()))


def invited(messages: list[str]) -> list[str]:
    """The numbers in the Request-URIs of the INVITEs the far end received."""
    return [m.split()[1].split(":", 1)[1].split("@")[0] for m in messages if m.startswith("INVITE ")]


def test_callback_driver_connects_every_call(b2bua: B2bua) -> None:
    creds = provision(b2bua, 6, 493012350000, 3500, 491711350000)
    far = uas(b2bua, "uas_answer.xml", calls=12)  # one SIPp plays both legs: phones and targets
    s = drive(b2bua, "callback_driver.py", creds, "--rate", "3", "--calls", "6", "--hold", "1")
    assert s["requested"] == s["accepted"] == s["connected"] == s["ended"] == 6, s
    assert s["failures"] == 0 and s["refused"] == {} and s["errors"] == 0, s
    assert s["outcomes"] == {"terminated": 6}, s  # each ended by the driver's DELETE after its hold
    assert s["to_connected"]["n"] == 6 and s["api_post"]["p99_ms"] is not None, s
    f = far.wait(20)
    numbers = invited(f.messages)
    assert sorted(n for n in numbers if n.startswith("+4930999")) == [f"+4930999{i:05d}" for i in range(6)]
    assert sorted(n for n in numbers if n.startswith("+49171")) == [f"+49171135000{i}" for i in range(6)]
    b2bua.wait_idle()


def test_keepconnected_driver_carries_several_calls_per_line_invite(b2bua: B2bua) -> None:
    creds = provision(b2bua, 2, 493012360000, 3600, 491711360000)
    # -rtp_echo: the lines keep sending audio back, so the RTP watchdog never takes them down
    far = uas(b2bua, "uas_answer.xml", calls=6, extra=["-rtp_echo"])
    s = drive(b2bua, "keepconnected_driver.py", creds, "--calls", "2", "--hold", "1")
    assert s["sessions"] == s["lines_up"] == s["sessions_ended"] == 2, s
    assert s["calls_placed"] == s["calls_connected"] == s["calls_ended"] == 4 and s["failures"] == 0, s
    assert s["line_invites_per_session"] == {"min": 1, "max": 1}, s
    f = far.wait(20)
    numbers = invited(f.messages)
    assert sorted(n for n in numbers if n.startswith("+49171")) == ["+491711360000", "+491711360001"], numbers
    assert sorted(n for n in numbers if n.startswith("+4930998")) == [f"+4930998{i:05d}" for i in range(4)]
    for uid in (ln.split(";")[0] for ln in creds.read_text().splitlines()):  # the driver left the mode
        assert b2bua.http("GET", f"/v1/users/{uid}")[1]["mode"] == "off"
    b2bua.wait_idle()

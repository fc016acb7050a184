"""Crash recovery end to end: the B2BUA is killed (SIGKILL) with bridged calls and a keep-connected line up and
started again on the same state. Before its SIP engine takes the port it sends every dialog the dead process held
a BYE (Reason: restart after failure), writes those calls' records as ``aborted`` and logs that the last stop was
unclean; the keep-connected line is ended before it is dialled again, so the phone never holds two line calls."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.test_callback import MOBILE, ROUTES, make_user
from tests.e2e.test_incoming import caller_phone
from tests.support.procs import B2bua, SippResult, uac, uas

pytestmark = pytest.mark.e2e

CONFIG = """
[telecommuter]
home_country = "DE"

[keep_connected]
rtp_timeout_s = 120  # SIPp's line plays 6 s of audio, then is silent: the line must not be dropped for that
"""
CALLS = 3  # SIPp trunk callers; one more comes from a pjsua2 phone (pjsip matches our BYE to its dialog strictly)
BRIDGED = CALLS + 1
DIALOGS = 2 * BRIDGED + 1  # both legs of each bridged call and the keep-connected line
RESTART_REASON = 'Reason: SIP;cause=500;text="restart after failure"'


def wait_for(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def session(b: B2bua, uid: str, token: str) -> dict[str, Any]:
    status, body = b.http("GET", f"/v1/users/{uid}/session", token=token)
    return dict(body) if status == 200 else {}


def journal_count(b: B2bua) -> int:
    db = sqlite3.connect(f"file:{b.workdir / 'var' / 'b2bua.sqlite'}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM dialog_journal").fetchone()[0])
    finally:
        db.close()


def byes(r: SippResult) -> list[str]:
    return [m for m in r.messages if m.startswith("BYE ")]


def test_kill_9_with_calls_up_ends_every_dialog_at_restart(start_b2bua: Callable[..., B2bua]) -> None:
    b = start_b2bua(extra_config=CONFIG, routes_before=ROUTES)
    line = uas(b, "uas_answer.xml", calls=2, name="line", ip="127.0.0.4")  # the telecommuter's phone
    far = uas(b, "uas_answer.xml", calls=BRIDGED, name="far")
    uid, token = make_user(b, mode_on=False, telecommuter_number=MOBILE)
    status, body = b.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "keep-connected"})
    assert status == 200, body
    wait_for("the line", lambda: session(b, uid, token).get("line") == "up")
    caller = uac(b, "uac_wait_bye.xml", calls=CALLS, rate=10, limit=CALLS).start()
    pj_caller = caller_phone(b, "pjcaller", "4930123456", tone_hz="1000", max_s="60")
    wait_for("the calls", lambda: b.health()["active_calls"] == BRIDGED + 1
             and b.metric("b2bua_active_legs") == DIALOGS)
    wait_for("the journal", lambda: journal_count(b) == DIALOGS)
    time.sleep(1.5)  # the calls talk for a moment (the run marker is touched every second)

    assert b.proc is not None
    killed_at = time.time()
    b.proc.kill()
    assert b.proc.wait(5) == -9
    b.stop()
    assert journal_count(b) == DIALOGS  # what the dead process left behind
    restarted = time.monotonic()
    b.start()
    up_s = time.monotonic() - restarted

    # every far end and every trunk caller got a BYE saying why, and answered it
    r, f, pj_events = caller.wait(20), far.wait(20), pj_caller.wait(20)
    assert r.rc == 0 and len(byes(r)) == CALLS, r.out
    assert f.rc == 0 and len(byes(f)) == BRIDGED, f.out
    assert all(RESTART_REASON in m for m in byes(r) + byes(f))
    assert [e["event"] for e in pj_events if e["event"] in ("confirmed", "disconnected")] == ["confirmed",
                                                                                            "disconnected"]
    events = b.log_events()
    unclean = next(e for e in events if e.get("event") == "last stop was unclean")
    assert unclean["level"] == "warning"
    assert (unclean["byes_sent"], unclean["byes_answered"], unclean["byes_failed"], unclean["cdrs_closed"]) == (
        DIALOGS, DIALOGS, 0, BRIDGED + 1), unclean
    assert b.metric("b2bua_unclean_start") == 1
    assert b.metric("b2bua_recovery_byes_total", result="answered") == DIALOGS
    assert b.metric("b2bua_recovery_cdrs_closed_total") == BRIDGED + 1

    # the calls that died with the process have their records
    status, body = b.http("GET", "/v1/cdrs")
    assert status == 200
    aborted = sorted(c["kind"] for c in body["cdrs"] if c["outcome"] == "aborted")
    assert aborted == ["session"] + ["trunk"] * BRIDGED, body
    # answered until the dead process was last seen alive: not 0, and not the time it lay dead
    assert all(0 < c["duration_s"] <= killed_at - c["started_at"] for c in body["cdrs"]), body

    # the keep-connected line was ended before it was dialled again: one line call at a time
    view = wait_for("the line again", lambda: (s := session(b, uid, token)).get("line") == "up" and s)
    assert view["line_invites"] == 1 and b.health()["active_calls"] == 1
    assert journal_count(b) == 1  # the old dialogs are gone from the journal, the new line is in it
    status, _ = b.http("PUT", f"/v1/users/{uid}/telecommuter", token=token, body={"mode": "off"})
    assert status == 200
    lr = line.wait(20)
    assert lr.rc == 0, lr.out
    order = [m.split(" ", 1)[0] for m in lr.messages if m.startswith(("INVITE ", "BYE "))]
    assert order == ["INVITE", "BYE", "INVITE", "BYE"], order
    assert RESTART_REASON in byes(lr)[0]
    b.wait_idle()
    assert b.health()["admission"]["admitted"] == 0
    assert journal_count(b) == 0
    print(f"restart to healthy {up_s:.2f} s, recovery {unclean['seconds']} s, BYEs sent {unclean['byes_sent']}, "
          f"answered {unclean['byes_answered']}")

"""Storage faults over real SIP (issue 24, findings 2, 3 and 5): voicemail on a disk too small or read-only, a
voicemail disk filling mid-message, the database disk full or the database deleted while running, and starts with
a missing or read-only database. Disks are real (tmpfs, full or remounted read-only). After each fault the caller
has a final response, no admission is held and no call or leg is left.

Peers: SIPp on the carrier trunk (127.0.0.2 calling, 127.0.0.3 answering) and pjsua2 test phones as callers who
leave messages."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from b2bua.media.recordings import inspect_recording
from tests.e2e.test_callback import BUSINESS, make_user
from tests.e2e.test_incoming import CALLER, caller_phone
from tests.support.disks import FILLER, fill, free, read_only, tmpfs
from tests.support.procs import B2bua, uac, uas

pytestmark = pytest.mark.e2e

FAST_UPKEEP = {"B2BUA_STORE__UPKEEP_S": "0.5"}
ELSEWHERE = "4989555000"  # not one of our numbers: a trunk call routed on to the carrier


def config(vm_dir: Path, max_message_s: int = 20) -> str:
    return f"""
[telecommuter]
home_country = "DE"
owned_numbers = ["+4930123"]

[voicemail]
dir = "{vm_dir}"
max_message_s = {max_message_s}
"""


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[Path]:
    """The voicemail directory on its own 2 MB tmpfs (requested before the B2BUA: unmounted after it stops)."""
    with tmpfs(tmp_path / "vm", "2m") as where:
        yield where


def settled(b: B2bua) -> dict[str, Any]:
    """Nothing of any call is left: no admission, no call, no leg. Returns /health."""
    b.wait_idle()
    h = b.health()
    assert h["admission"]["admitted"] == 0 and h["active_calls"] == 0 and h["engine"]["legs"] == 0, h
    return h


def refused_call(b: B2bua, name: str, code: int = 486) -> None:
    r = uac(b, "uac_fail.xml", called=BUSINESS, name=name).start().wait(30)
    assert code in r.statuses(), (name, r.statuses())


def wait_until(what: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def log_lines(b: B2bua, event: str) -> list[dict[str, Any]]:
    return [e for e in b.log_events() if str(e.get("event", "")).startswith(event)]


# ------------------------------------------------------------------------------------------ voicemail (finding 3)
def test_voicemail_on_a_too_small_disk_gives_callers_busy_and_recovers(
        vm: Path, start_b2bua: Callable[..., B2bua], watcher_factory: Any) -> None:
    """Issue 24: a full disk gave callers the greeting and beep, and then a 0-byte WAV listed as a 4.26 s message."""
    fill(vm)
    free_some = vm / FILLER
    os.truncate(free_some, free_some.stat().st_size - 200_000)  # room, but not for a 20 s message (~580 kB)
    b = start_b2bua(extra_config=config(vm))
    h = b.health()
    assert h["status"] == "degraded" and h["engine"]["up"], h
    assert h["checks"]["voicemail"].startswith("degraded: voicemail disk full") and h["checks"]["store"] == "ok"
    uid, token = make_user(b, mode_on=False)
    events = watcher_factory(b, uid, token)
    refused_call(b, "full")
    ev = events.wait_event("voicemail", lambda e: e["change"] == "unavailable")
    assert ev["why"].startswith("voicemail disk full") and ev["total"] == 0, ev
    settled(b)
    assert b.http("GET", f"/v1/users/{uid}/voicemail", token=token)[1]["total"] == 0

    free(vm)  # the operator makes room: voicemail is back without a restart
    assert b.health()["checks"]["voicemail"] == "ok"
    caller = caller_phone(b, "caller", BUSINESS, tone_hz="1000", hangup_after_s="5", max_s="30")
    assert any(e["event"] == "confirmed" for e in caller.wait(30))
    new = events.wait_event("voicemail", lambda e: e["change"] == "new")
    assert 2.0 < new["message"]["duration_s"] < 4.0, new
    settled(b)


def test_a_disk_filling_during_the_message_lists_only_what_reached_it(
        vm: Path, start_b2bua: Callable[..., B2bua], watcher_factory: Any) -> None:
    """Issue 24: a nearly full disk cut a 20 s message to 11 s, but it was listed as 18.3 s."""
    b = start_b2bua(extra_config=config(vm))
    uid, token = make_user(b, mode_on=False)
    events = watcher_factory(b, uid, token)
    caller = caller_phone(b, "caller", BUSINESS, tone_hz="1000", hangup_after_s="6", max_s="30")
    events.wait_for("recording", pred=lambda e: True)
    fill(vm)
    filler = vm / FILLER
    os.truncate(filler, filler.stat().st_size - 16384)  # about one more second of audio fits
    assert any(e["event"] == "confirmed" for e in caller.wait(30))
    new = events.wait_event("voicemail", lambda e: e["change"] in ("new", "failed"))
    assert new["change"] == "new", new
    listed = new["message"]["duration_s"]
    assert 0.5 <= listed < 2.5, f"listed {listed} s of a ~4 s message cut short on disk"
    status, raw = b.http_bytes("GET", f"/v1/users/{uid}/voicemail/{new['message']['id']}/audio", token=token)
    assert status == 200
    downloaded = b.workdir / "downloaded.wav"
    downloaded.write_bytes(raw)
    assert abs(inspect_recording(downloaded).seconds - listed) < 0.01, "listed as long as its file"
    assert log_lines(b, "voicemail cut short on disk"), "the operator sees it"
    # the disk stays nearly full: the next caller gets busy, not a greeting that records nothing
    refused_call(b, "after")
    assert events.wait_event("voicemail", lambda e: e["change"] == "unavailable")["why"].startswith(
        "voicemail disk full")
    settled(b)


def test_a_read_only_voicemail_directory_at_start_and_while_running(
        vm: Path, start_b2bua: Callable[..., B2bua], watcher_factory: Any) -> None:
    """Issue 24: read-only, callers heard greeting and beep and no message existed; a restart with the directory
    read-only exited ("voicemail directory not usable"), stopping all trunk calling."""
    read_only(vm)
    try:
        b = start_b2bua(extra_config=config(vm))
        h = b.health()
        assert h["status"] == "degraded" and "read-only" in h["checks"]["voicemail"], h
        uid, token = make_user(b, mode_on=False)
        events = watcher_factory(b, uid, token)
        refused_call(b, "ro-at-start")
        assert "read-only" in events.wait_event("voicemail", lambda e: e["change"] == "unavailable")["why"]
        far = uas(b, "uas_answer.xml")
        r = uac(b, "uac_call.xml", called=ELSEWHERE, name="trunk").start().wait(30)
        assert r.rc == 0 and far.wait(10).rc == 0, "trunk calling is unaffected"
        settled(b)
    finally:
        read_only(vm, False)
    assert b.health()["status"] == "ok" and (vm / "default-greeting.wav").exists()
    r = uac(b, "uac_call.xml", called=BUSINESS, name="greeted").start().wait(30)
    assert r.rc == 0 and 200 in r.statuses(), "voicemail took the call again"
    settled(b)
    read_only(vm)
    try:
        refused_call(b, "ro-running")
        settled(b)
    finally:
        read_only(vm, False)


def test_finding_1_read_only_voicemail_never_leaks_a_call_slot(vm: Path, start_b2bua: Callable[..., B2bua]) -> None:
    """Issue 24, finding 1: planning a user's call raised (read-only voicemail directory), the caller heard only
    100 Trying and the admission was never given back: with max_bridged_calls = 3, three such calls left every later
    trunk call refused 503 until a restart. Now each caller gets a final answer and the slots come back."""
    read_only(vm)
    try:
        b = start_b2bua(extra_config=config(vm), max_bridged_calls=3)
        make_user(b, mode_on=False)
        for n in range(4):  # more calls than the node has slots
            refused_call(b, f"ro-{n}")
        settled(b)
        far = uas(b, "uas_answer.xml")
        r = uac(b, "uac_call.xml", called=ELSEWHERE, name="trunk-after").start().wait(30)
        assert r.rc == 0 and far.wait(10).rc == 0, "all three slots are free again"
        settled(b)
    finally:
        read_only(vm, False)


# ------------------------------------------------------------------------------------------ the database (2 and 5)
def test_a_full_database_disk_loses_no_record_and_strands_no_call(
        tmp_path: Path, start_b2bua: Callable[..., B2bua], watcher_factory: Any) -> None:
    """Issue 24: with the database disk full a voicemail hang-up stranded its call (active, admitted 1, 0 legs) and
    left the WAV without a row, ``POST /v1/users`` was a plain-text 500, /health said ok and CDRs were dropped."""
    with tmpfs(tmp_path / "b2bua0" / "var", "4m") as var:
        b = start_b2bua(extra_config=config(tmp_path / "vm-plain"), env=FAST_UPKEEP)
        uid, token = make_user(b, mode_on=False)
        events = watcher_factory(b, uid, token)
        fill(var)
        status, headers, body = b.http_full("POST", "/v1/users", body={
            "name": "New", "extension": "2002", "business_number": "+493012340002"})
        assert status == 503 and headers["content-type"] == "application/problem+json", (status, body)
        assert body["rule"] == "store-unavailable" and "database or disk is full" in body["detail"], body
        h = b.health()
        assert h["status"] == "degraded" and h["checks"]["store"].startswith("degraded: database or disk is full")

        far = uas(b, "uas_answer.xml")
        r = uac(b, "uac_call.xml", called=ELSEWHERE, name="trunk").start().wait(30)
        assert r.rc == 0 and far.wait(10).rc == 0
        caller = caller_phone(b, "caller", BUSINESS, tone_hz="1000", hangup_after_s="4", max_s="30")
        assert any(e["event"] == "confirmed" for e in caller.wait(30))
        assert events.wait_event("voicemail", lambda e: e["change"] == "pending")["caller"] == CALLER
        settled(b)
        assert b.metric("b2bua_pending_writes", kind="cdr") == 2 and b.metric("b2bua_pending_writes",
                                                                               kind="voicemail") == 1
        assert b.metric("b2bua_store_errors_total", operation="insert:cdr") >= 1

        free(var)  # room again: everything waiting lands without a restart
        wait_until(lambda: b.metric("b2bua_pending_writes", kind="cdr") == 0)
        new = events.wait_event("voicemail", lambda e: e["change"] == "new")
        box = b.http("GET", f"/v1/users/{uid}/voicemail", token=token)[1]
        assert [m["id"] for m in box["messages"]] == [new["message"]["id"]]
        outcomes = sorted(c["outcome"] for c in b.http("GET", "/v1/cdrs")[1]["cdrs"])
        assert outcomes == ["completed-a-hangup", "voicemail"], outcomes
        wait_until(lambda: b.health()["status"] == "ok")
        assert b.stop() == 0


def test_a_database_deleted_while_running_is_reported_and_never_silently_recreated(tmp_path: Path) -> None:
    """Issue 24: the API kept answering 201/200, /health said ok, and the next start created an empty database."""
    b = B2bua(tmp_path / "node", env=FAST_UPKEEP)
    b.start()
    try:
        uid, token = make_user(b, mode_on=False)
        db = b.workdir / "var" / "b2bua.sqlite"
        db.unlink()
        wait_until(lambda: bool(log_lines(b, "database file deleted or replaced while running")))
        (line,) = log_lines(b, "database file deleted or replaced while running")
        assert line["level"] == "error" and line["path"] == str(db) and line["open_copy"].startswith("/proc/")
        h = b.health()
        assert h["status"] == "degraded" and "was deleted or replaced while running" in h["checks"]["store"], h
        status, body = b.http("PATCH", f"/v1/users/{uid}", token=token, body={"voicemail": False})
        assert status == 503 and body["rule"] == "store-unavailable", body
        assert b.http("GET", f"/v1/users/{uid}", token=token)[0] == 200, "reads still work"
        far = uas(b, "uas_answer.xml")
        r = uac(b, "uac_call.xml", called=ELSEWHERE, name="trunk").start().wait(30)
        assert r.rc == 0 and far.wait(10).rc == 0, "calls still work"
        settled(b)
        assert b.metric("b2bua_pending_writes", kind="cdr") == 1
    finally:
        assert b.stop() == 0
    (given_up,) = log_lines(b, "write given up: the node stopped")
    assert given_up["kind"] == "cdr" and given_up["record"]["outcome"] == "completed-a-hangup", "in the log, in full"

    again = B2bua(b.workdir, init=False)
    with pytest.raises(RuntimeError, match="exited with 2"):
        again.start()
    again.stop()
    (refusal,) = log_lines(again, "database not usable")
    assert f"the database {db} is gone, but this node was initialised" in refusal["reason"], refusal
    assert not db.exists(), "no new empty database"
    p = again.run_cli("init", check=False)
    assert p.returncode == 2 and "is gone" in p.stderr and not db.exists(), p


def test_a_start_without_init_or_with_a_read_only_database_says_why(tmp_path: Path) -> None:
    fresh = B2bua(tmp_path / "fresh", init=False)
    with pytest.raises(RuntimeError, match="exited with 2"):
        fresh.start()
    fresh.stop()
    db = fresh.workdir / "var" / "b2bua.sqlite"
    (line,) = log_lines(fresh, "database not usable")
    assert line["reason"] == f"no database at {db}; run `b2bua init -c {fresh.workdir / 'b2bua.toml'}` for a first "\
                             "start", line
    assert not db.exists()

    with tmpfs(tmp_path / "ro" / "var", "4m") as var:
        b = B2bua(tmp_path / "ro", init=False)
        (b.workdir / "b2bua.toml").write_text(b.config_text())
        b.run_cli("init")
        read_only(var)
        try:
            with pytest.raises(RuntimeError, match="exited with 2"):
                b.start()
            b.stop()
        finally:
            read_only(var, False)
    (line,) = log_lines(b, "database not usable")
    assert line["path"] == str(var / "b2bua.sqlite") and "read-only file system" in line["reason"], line
    assert "Traceback" not in b.log_path.read_text()

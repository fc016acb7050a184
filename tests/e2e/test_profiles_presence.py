"""Profiles and presence over the real process and HTTP (issue 17, first part): a profile switched by one request
and seen as one event on the user's live stream; Detected after a settings change, gone once a profile is
selected; the custom-profile limit; presence set through the API shows on the user's second stream and on a
colleague's presence stream within a second; a restart keeps profiles, the live settings and presence."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.procs import B2bua
from tests.support.sse import EventWatcher

pytestmark = pytest.mark.e2e

HAMBURG = "+494012345678"
Watch = Callable[[B2bua, str, str], EventWatcher]


def ok(b: B2bua, method: str, path: str, token: str | None = "admin", body: Any = None) -> Any:
    status, data = b.http(method, path, token=token, body=body)
    assert 200 <= status < 300, (method, path, status, data)
    return data


def new_user(b: B2bua, extension: str) -> tuple[str, str]:
    data = ok(b, "POST", "/v1/users", body={"name": f"User {extension}", "extension": extension,
                                            "business_number": f"+49309018{extension}"})
    return data["user"]["id"], data["token"]


def arrival(w: EventWatcher, kind: str, since: int, timeout: float = 5.0) -> tuple[dict[str, Any], float]:
    """The first ``kind`` event after the first ``since`` events, and when it arrived (polled every 5 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in w.events[since:]:
            if e["kind"] == kind:
                return e, time.monotonic()
        time.sleep(0.005)
    raise AssertionError(f"no {kind} event in {timeout}s; got {w.events[since:]}")


def test_switch_detect_limit_presence_and_restart(b2bua: B2bua, watcher_factory: Watch) -> None:
    uid, token = new_user(b2bua, "201")
    _, colleague = new_user(b2bua, "202")
    me = "/v1/users/me"
    lab = ok(b2bua, "POST", f"{me}/profiles", token, {"name": "Lab", "settings": {
        "pickup": False, "forwarding": {"no_answer": "040 12345678", "ring_time_s": 15}}})
    events = watcher_factory(b2bua, uid, token)

    # one request switches the profile; the stream shows exactly one event naming it
    active = ok(b2bua, "POST", f"{me}/profiles/{lab['id']}/select", token)
    assert (active["id"], active["name"], active["detected"]) == (lab["id"], "Lab", False)
    first = events.wait_event("profile", timeout=5)
    time.sleep(0.5)  # anything else the switch sent would be here by now
    assert events.events == [first]
    assert (first["id"], first["name"], first["cause"]) == (lab["id"], "Lab", "selected")
    assert first["settings"]["forwarding"] == {"unconditional": None, "busy": None, "no_answer": HAMBURG,
                                               "ring_time_s": 15}

    # a settings change (as a feature code will make) shows Detected; selecting a profile makes it go
    live = ok(b2bua, "PATCH", f"{me}/settings", token, {"forwarding": {"unconditional": HAMBURG}})
    assert live["active_profile"]["id"] == "detected"
    assert events.wait_event("profile", lambda e: e["id"] == "detected", timeout=5)["cause"] == "settings-changed"
    listed = ok(b2bua, "GET", f"{me}/profiles", token)
    assert listed["active"]["detected"] and listed["active"]["settings"]["forwarding"]["unconditional"] == HAMBURG
    ok(b2bua, "POST", f"{me}/profiles/{lab['id']}/select", token)
    assert ok(b2bua, "GET", f"{me}/active-profile", token)["id"] == lab["id"]
    assert [(e["id"], e["cause"]) for e in events.events if e["kind"] == "profile"][-1] == (lab["id"], "selected")

    # three more custom profiles fill the four; a fifth is refused naming the limit
    for name in ("Late", "Night", "Travel"):
        ok(b2bua, "POST", f"{me}/profiles", token, {"name": name})
    status, problem = b2bua.http("POST", f"{me}/profiles", token=token, body={"name": "Fifth"})
    assert status == 409 and problem["rule"] == "custom-profile-limit" and "at most 4" in problem["detail"]
    assert b2bua.http("DELETE", f"{me}/profiles/office", token=token)[1]["rule"] == "builtin-profile"

    # presence: set through the API, on the user's second stream and a colleague's presence stream within 1 s
    second = watcher_factory(b2bua, uid, token)
    colleagues = EventWatcher(f"http://127.0.0.1:{b2bua.http_port}/v1/presence/events", colleague)
    try:
        before = [len(events.events), len(second.events), len(colleagues.events)]
        started = time.monotonic()
        ok(b2bua, "PUT", f"{me}/presence", token, {"status": "do-not-disturb", "message": "focus time"})
        seen = [arrival(w, "presence", n) for w, n in zip((events, second, colleagues), before, strict=True)]
    finally:
        colleagues.close()
    delays = [at - started for _, at in seen]
    assert max(delays) < 1.0, delays
    for ev, _ in seen:
        assert (ev["user_id"], ev["status"], ev["message"]) == (uid, "do-not-disturb", "focus time")
    print(f"presence on the user's two streams and the colleague's: {[round(d * 1000, 1) for d in delays]} ms")

    # a restart keeps the profiles, the live settings (the active profile) and presence
    settings_before = ok(b2bua, "GET", f"{me}/settings", token)
    assert b2bua.stop() == 0
    b2bua.start()
    profiles = ok(b2bua, "GET", f"{me}/profiles", token)
    assert [p["name"] for p in profiles["profiles"]] == ["Office", "Mobile", "Home", "Lab", "Late", "Night", "Travel"]
    assert profiles["active"]["id"] == lab["id"]
    assert ok(b2bua, "GET", f"{me}/settings", token) == settings_before
    assert settings_before["dnd"] is True
    presence = ok(b2bua, "GET", "/v1/presence", colleague)["presence"]
    assert [(p["extension"], p["status"], p["message"]) for p in presence] == [
        ("201", "do-not-disturb", "focus time"), ("202", "available", "")]

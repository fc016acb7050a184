"""Abuse limits and private files with the real process: event streams capped per user over real connections,
a flood of wrong bearer tokens throttled per source (the admin elsewhere still gets in), and what the service
writes (state, token, a voicemail recorded over real SIP by pjsua2) readable by its own user only."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_callback import BUSINESS, ROUTES, make_user
from tests.e2e.test_incoming import INCOMING_CONFIG, caller_phone
from tests.support.procs import PY, ROOT, B2bua

pytestmark = pytest.mark.e2e


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Callable[..., B2bua]]:
    """Start a B2BUA on a database made by ``b2bua init`` (as an operator's first start does); it must stop
    cleanly (rc 0) at the end."""
    started: list[B2bua] = []

    def start(before: Callable[[Path], None] | None = None, **kw: Any) -> B2bua:
        b = B2bua(tmp_path / f"b2bua{len(started)}", **kw)
        b.workdir.mkdir(parents=True)
        if before:
            before(b.workdir)
        cfg = b.workdir / "b2bua.toml"
        cfg.write_text(b.config_text())
        init = subprocess.run([PY, "-m", "b2bua", "init", "-c", str(cfg)], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, **b.env})
        assert init.returncode == 0, init.stderr
        started.append(b)
        return b.start()

    yield start
    for b in started:
        rc = b.stop()
        assert rc == 0, f"B2BUA exit code {rc}\n{b.log_tail()}"


# ------------------------------------------------------------------------------------------ event streams
class RawStream:
    """One event stream on its own TCP connection, read by hand: the status line, the headers, then either the
    ``hello`` event (200) or the problem body (refusal)."""

    def __init__(self, b: B2bua, path: str, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", b.http_port), timeout=5)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: b2bua\r\nAuthorization: Bearer {token}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self._more()
        head, self.rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        if self.status == 200:
            while b"event: hello" not in self.rest:
                self.rest += self._more()
        else:
            while len(self.rest) < int(self.headers["content-length"]):
                self.rest += self._more()

    def _more(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        return chunk

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.rest)
        return body

    def close(self) -> None:
        self.sock.close()


def wait_metric(b: B2bua, name: str, value: float, timeout: float = 5.0, **labels: str) -> None:
    deadline = time.monotonic() + timeout
    while (got := b.metric(name, **labels)) != value:
        assert time.monotonic() < deadline, f"{name}{labels} = {got}, not {value}"
        time.sleep(0.05)


def test_event_streams_are_capped_per_user_and_a_closed_one_frees_its_slot(node: Callable[..., B2bua]) -> None:
    b = node(env={"B2BUA_HTTP__MAX_EVENT_STREAMS_PER_USER": "3"})
    uid, token = make_user(b, mode_on=False)
    path = f"/v1/users/{uid}/events"
    streams = [RawStream(b, path, token) for _ in range(5)]  # all five connections open at once
    assert [s.status for s in streams] == [200, 200, 200, 429, 429]
    refused = streams[3]
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["retry-after"] == "30"
    assert refused.problem()["rule"] == "too-many-streams"
    assert b.metric("b2bua_event_streams") == 3
    assert b.metric("b2bua_event_streams_refused_total", limit="user") == 2
    _, other_token = make_user(b, extension="2002", business="+493012340000", mode_on=False)
    other = RawStream(b, "/v1/users/me/events", other_token)
    assert other.status == 200, "another user has slots of their own"

    streams[0].close()  # the client goes: its slot is free once the server has noticed
    wait_metric(b, "b2bua_event_streams", 3)
    again = RawStream(b, path, token)
    assert again.status == 200
    for s in [*streams, other, again]:
        s.close()
    wait_metric(b, "b2bua_event_streams", 0)


# ------------------------------------------------------------------------------------------ token guessing
def test_a_flood_of_bad_tokens_is_throttled_per_source(node: Callable[..., B2bua]) -> None:
    b = node()
    conn = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=5)  # one keep-alive connection
    statuses: list[int] = []
    retry_after: str | None = None
    started = time.monotonic()
    for i in range(2000):
        # the made-up X-Forwarded-For must not make each request a new source (no trusted proxy configured)
        conn.request("GET", "/v1/calls", headers={"Authorization": f"Bearer guess-{i}",
                                                  "X-Forwarded-For": f"192.0.2.{i % 250}"})
        r = conn.getresponse()
        r.read()
        statuses.append(r.status)
        if r.status == 429:
            retry_after = r.getheader("Retry-After")
    rate = 2000 / (time.monotonic() - started)
    assert statuses == [403] * 20 + [429] * 1980, sorted(set(statuses))
    assert retry_after is not None and 290 <= int(retry_after) <= 300
    conn.request("GET", "/v1/calls", headers={"Authorization": f"Bearer {b.token}"})
    r = conn.getresponse()
    assert r.status == 429 and json.loads(r.read())["rule"] == "auth-blocked", "blocked even with the right token"
    conn.close()

    # the admin from another address is not locked out
    admin = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=5, source_address=("127.0.0.2", 0))
    admin.request("GET", "/v1/calls", headers={"Authorization": f"Bearer {b.token}"})
    assert admin.getresponse().status == 200
    admin.close()

    lines = [e for e in b.log_events() if e.get("src") == "127.0.0.1"]
    assert [e["event"] for e in lines] == ["api authentication failed",
                                           "api source blocked: too many failed authentications"], lines
    assert b.metric("b2bua_api_auth_failures_total", reason="invalid-token") == 20
    assert b.metric("b2bua_api_auth_failures_total", reason="blocked") == 1981
    assert b.metric("b2bua_api_auth_blocked_sources") == 1
    print(f"2001 refused requests at {rate:.0f}/s: {len(lines)} log lines")


# ------------------------------------------------------------------------------------------ private files
def _older_version_left_a_readable_var_dir(workdir: Path) -> None:
    (workdir / "var").mkdir(mode=0o755)
    (workdir / "var").chmod(0o755)


def test_state_token_and_a_real_voicemail_recording_are_private(node: Callable[..., B2bua]) -> None:
    b = node(before=_older_version_left_a_readable_var_dir, token="", extra_config=INCOMING_CONFIG,
             routes_before=ROUTES, no_answer_timeout_s=4)
    var = b.workdir / "var"
    b.token = (var / "admin-token").read_text().strip()  # generated at the first start
    uid, token = make_user(b, mode_on=False)
    assert b.http("GET", f"/v1/users/{uid}", token=token)[1]["rings"] == "voicemail"
    caller = caller_phone(b, "vm-caller", BUSINESS, tone_hz="1000", hangup_after_s="4", max_s="30")
    assert any(e["event"] == "confirmed" for e in caller.wait(30))
    deadline = time.monotonic() + 10
    while b.http("GET", f"/v1/users/{uid}/voicemail", token=token)[1]["total"] != 1:
        assert time.monotonic() < deadline, "no voicemail message"
        time.sleep(0.1)
    b.wait_idle()

    recordings = list((var / "voicemail" / uid).glob("*.wav"))
    assert len(recordings) == 1 and recordings[0].stat().st_size > 8000, recordings
    expected = {var: 0o700, var / "voicemail": 0o700, var / "voicemail" / uid: 0o700, recordings[0]: 0o600,
                var / "b2bua.sqlite": 0o600, var / "b2bua.sqlite-wal": 0o600, var / "b2bua.sqlite-shm": 0o600,
                var / "admin-token": 0o600}
    assert {p: stat.S_IMODE(p.stat().st_mode) for p in expected} == expected
    readable = [f"{p}: {oct(stat.S_IMODE(p.stat().st_mode))}" for p in [var, *var.rglob("*")]
                if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert readable == [], "everything the service wrote is its user's alone"
    tightened = [e for e in b.log_events() if e["event"] == "permissions tightened"]
    assert [(e["path"], e["was"], e["now"]) for e in tightened] == [(str(var), "0o755", "0o700")]

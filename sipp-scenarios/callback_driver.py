#!/usr/bin/env python3
"""Callback-call load through the REST API: POST /v1/users/{id}/calls at a fixed rate, for the users of a
credentials file, each with its own token, as their portal or app would.

Stdlib only. SIPp UASs play both far ends: the telecommuter phones and the targets (with the bundled routes both
legs go to 127.0.0.3:5060, so one ``uas_answer.xml`` answers both). Every call gets its own target number
(--target, e.g. +4930999 and a counter) so a capture pairs each call with its SIP legs by number.

Outcomes come from the B2BUA, not from guesses: each user's live event stream (GET /v1/users/{id}/events) is
open before the first call, so every call's states (user-answered, target-ringing, connected, ended with its
outcome and code) are timed as they happen. With --hold S the driver ends each call S seconds after it connected
(DELETE /v1/calls/{id}); with --hold 0 the far end ends it (e.g. ``uas_hangup.xml``).

    python3 callback_driver.py --credentials creds.csv --rate 5 --calls 20 --hold 2

Exit status 0 only if every call was accepted (or refused with a status listed in --allow-refused), connected
and ended. Users are taken round robin: the bundled class of service allows 2 concurrent callbacks and 10 call
attempts a minute per user, so use enough users (calls / 10 per minute, and concurrent calls / 2).
"""

from __future__ import annotations

import argparse
import functools
import heapq
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


# ------------------------------------------------------------------------------------------ shared helpers
@dataclass(frozen=True, slots=True)
class Credential:
    """One line of the credentials file written by ``provision_users.py --credentials``."""

    user_id: str
    token: str
    business_number: str
    extension: str
    telecommuter_number: str


def read_credentials(path: Path) -> list[Credential]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(";")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise SystemExit(f"{path}:{n}: expected user_id;token;business_number;extension;telecommuter_number")
        parts += [""] * (5 - len(parts))
        out.append(Credential(*parts[:5]))
    if not out:
        raise SystemExit(f"{path}: no users")
    return out


def target_number(pattern: str, n: int) -> str:
    """``+4930999{n:05d}`` -> +493099900007 for n=7; a pattern without ``{`` gets the counter appended."""
    return pattern.format(n=n) if "{" in pattern else f"{pattern}{n:05d}"


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (None without samples), the same reading as perf/bench.py."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))]


def ms(values: list[float]) -> dict[str, Any]:
    """p50/p99 in milliseconds of durations in seconds, for the summary."""
    p50, p99 = pct(values, 50), pct(values, 99)
    return {"n": len(values), "p50_ms": None if p50 is None else round(1000 * p50, 1),
            "p99_ms": None if p99 is None else round(1000 * p99, 1)}


def fmt(stat: dict[str, Any]) -> str:
    if not stat["n"]:
        return "no samples"
    return f"p50 {stat['p50_ms']} ms, p99 {stat['p99_ms']} ms (n={stat['n']})"


class ApiError(Exception):
    """The API could not be reached or did not answer (not an HTTP error status: those are returned)."""


class Api:
    """A small JSON client with one keep-alive connection per thread, so request latency is the API's own
    (not a TCP handshake per call), as with a portal or app that keeps its connection."""

    def __init__(self, base: str, timeout: float = 10.0) -> None:
        u = urllib.parse.urlsplit(base)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"--api: expected http://host:port, got {base!r}")
        self.host, self.port, self.prefix = u.hostname, u.port or 80, u.path.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def request(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any, float]:
        """(status, parsed JSON or text, seconds from sending to the full response). Raises ApiError."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            conn = self._conn()
            reused = conn.sock is not None
            t0 = time.monotonic()
            try:
                conn.request(method, self.prefix + path, body=data, headers=headers)
                r = conn.getresponse()
                raw = r.read()
            except (http.client.HTTPException, OSError) as e:
                conn.close()
                if reused and attempt == 1:  # the server closed an idle keep-alive connection: once more
                    continue
                raise ApiError(f"{method} {path}: {e!r}") from None
            took = time.monotonic() - t0
            try:
                return r.status, json.loads(raw) if raw else None, took
            except ValueError:
                return r.status, raw.decode(errors="replace"), took
        raise AssertionError("unreachable")


class EventStream:
    """One user's live events (server-sent events) read in a daemon thread and handed to ``on_event`` as
    (receive time, event kind, data). Opened before any call so no state change is missed."""

    def __init__(self, api: Api, cred: Credential, on_event: Callable[[float, str, dict[str, Any]], None]) -> None:
        self.api, self.cred, self.on_event = api, cred, on_event
        self.ready = threading.Event()
        self.error = ""
        self._closing = False
        self._conn: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, name=f"sse-{cred.user_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            # no read timeout: the server pings every 15 s, and close() shuts the socket down
            self._conn = conn = http.client.HTTPConnection(self.api.host, self.api.port, timeout=10)
            conn.request("GET", f"{self.api.prefix}/v1/users/{self.cred.user_id}/events",
                         headers={"Authorization": f"Bearer {self.cred.token}", "Accept": "text/event-stream"})
            r = conn.getresponse()
            if r.status != 200:
                raise ApiError(f"event stream: HTTP {r.status} {r.read()[:200]!r}")
            if conn.sock is not None:
                conn.sock.settimeout(None)
            kind, data = "message", ""
            while True:
                line = r.readline()
                if not line:
                    raise ApiError("event stream closed by the server")
                text = line.decode(errors="replace").rstrip("\r\n")
                if text.startswith("event:"):
                    kind = text[6:].strip()
                elif text.startswith("data:"):
                    data += text[5:].strip()
                elif not text:
                    if data:
                        if kind == "hello":
                            self.ready.set()
                        else:
                            self.on_event(time.monotonic(), kind, json.loads(data))
                    kind, data = "message", ""
        except Exception as e:  # reported by the driver: a lost stream means unknown outcomes
            if not self._closing:
                self.error = f"{self.cred.user_id}: {e!r}"
            self.ready.set()

    def close(self) -> None:
        self._closing = True
        conn = self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._thread.join(2)


def open_streams(api: Api, creds: list[Credential], on_event: Callable[[str, float, str, dict[str, Any]], None],
                 timeout: float = 10.0) -> list[EventStream]:
    """Every user's stream, open and subscribed (its "hello" seen) before the load starts."""
    streams = [EventStream(api, c, functools.partial(on_event, c.user_id)) for c in creds]
    deadline = time.monotonic() + timeout
    for s in streams:
        s.ready.wait(max(0.0, deadline - time.monotonic()))
    bad = [s.error or f"{s.cred.user_id}: no hello within {timeout:.0f} s" for s in streams
           if s.error or not s.ready.is_set()]
    if bad:
        for s in streams:
            s.close()
        raise SystemExit("event streams failed: " + "; ".join(bad[:5]))
    return streams


# ------------------------------------------------------------------------------------------ the driver
@dataclass
class Call:
    n: int
    cred: Credential
    target: str
    t_post: float = 0.0  # monotonic, just before the request was sent
    api_s: float = 0.0
    status: int = 0  # HTTP status of the POST; 0: no answer (transport error)
    detail: str = ""
    call_id: str = ""
    states: dict[str, float] = field(default_factory=dict)  # first arrival of each state (monotonic)
    outcome: str = ""
    code: int = 0
    ended: bool = False
    deleted: int = 0  # status of our DELETE, if we sent one
    timed_out: bool = False  # still up --timeout after the last request: ended by the driver


class Driver:
    def __init__(self, api: Api, creds: list[Credential], args: argparse.Namespace) -> None:
        self.api, self.creds, self.args = api, creds, args
        self.lock = threading.Condition()
        self.calls: list[Call] = []
        self.by_id: dict[str, Call] = {}
        self.early: dict[str, list[tuple[float, dict[str, Any]]]] = {}  # events that beat the POST's answer
        self.due: list[tuple[float, str]] = []  # (when, call id): DELETEs to send
        self.errors: list[str] = []
        self.done = False
        self.streams: list[EventStream] = []
        self.post_s = 0.0

    # ---------------------------------------------------------------- events (stream threads)
    def on_event(self, user_id: str, t: float, kind: str, data: dict[str, Any]) -> None:
        if kind != "call" or "call_id" not in data:
            return
        with self.lock:
            call = self.by_id.get(data["call_id"])
            if call is None:
                self.early.setdefault(data["call_id"], []).append((t, data))
            else:
                self._apply(call, t, data)

    def _apply(self, call: Call, t: float, data: dict[str, Any]) -> None:
        state = str(data.get("state", ""))
        call.states.setdefault(state, t)
        if state == "connected" and self.args.hold > 0:
            heapq.heappush(self.due, (t + self.args.hold, call.call_id))
        elif state == "ended":
            call.ended, call.outcome, call.code = True, str(data.get("outcome", "")), int(data.get("code") or 0)
        self.lock.notify_all()

    # ---------------------------------------------------------------- requests (worker threads)
    def place(self, call: Call) -> None:
        call.t_post = time.monotonic()
        try:
            call.status, body, call.api_s = self.api.request("POST", f"/v1/users/{call.cred.user_id}/calls",
                                                             call.cred.token, {"target": call.target})
        except ApiError as e:
            with self.lock:
                self.errors.append(str(e))
            return
        if call.status != 201:
            call.detail = json.dumps(body)[:200]
            return
        with self.lock:
            call.call_id = str(body["id"])
            self.by_id[call.call_id] = call
            for t, data in self.early.pop(call.call_id, []):
                self._apply(call, t, data)

    def hangups(self) -> None:
        """Sends each DELETE when its hold time is up (one thread: they are quick)."""
        while True:
            with self.lock:
                while not self.done and (not self.due or self.due[0][0] > time.monotonic()):
                    self.lock.wait(max(0.0, self.due[0][0] - time.monotonic()) if self.due else None)
                if self.done:
                    return
                _, call_id = heapq.heappop(self.due)
                call = self.by_id[call_id]
            self.delete(call)

    def delete(self, call: Call) -> None:
        try:
            status, _, _ = self.api.request("DELETE", f"/v1/calls/{call.call_id}", call.cred.token)
        except ApiError as e:
            with self.lock:
                self.errors.append(str(e))
            return
        with self.lock:
            call.deleted = status  # 202, or 404 if it had ended by itself meanwhile

    # ---------------------------------------------------------------- the run
    def run(self) -> None:
        a = self.args
        hangup = threading.Thread(target=self.hangups, name="hangups", daemon=True)
        hangup.start()
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=a.workers, thread_name_prefix="post") as pool:
            for i in range(a.calls):
                call = Call(i, self.creds[i % len(self.creds)], target_number(a.target, a.first + i))
                self.calls.append(call)
                time.sleep(max(0.0, t0 + i / a.rate - time.monotonic()))
                pool.submit(self.place, call)
        self.post_s = time.monotonic() - t0
        deadline = time.monotonic() + a.timeout
        with self.lock:
            while (any(c.call_id and not c.ended for c in self.calls) and time.monotonic() < deadline
                   and not any(s.error for s in self.streams)):  # a lost stream: outcomes unknowable
                self.lock.wait(0.2)
            left = [c for c in self.calls if c.call_id and not c.ended]
            self.done = True
            self.lock.notify_all()
        hangup.join(5)
        for c in left:  # leave nothing running: end what did not end in time, and see it end
            c.timed_out = True
            self.delete(c)
        deadline = time.monotonic() + 5
        with self.lock:
            while any(not c.ended for c in left) and time.monotonic() < deadline:
                self.lock.wait(0.2)

    def summary(self) -> dict[str, Any]:
        a = self.args
        accepted = [c for c in self.calls if c.status == 201]
        refused = Counter(c.status for c in self.calls if c.status not in (0, 201))
        connected = [c for c in accepted if "connected" in c.states]
        ended = [c for c in accepted if c.ended]

        def since_post(state: str) -> list[float]:
            return [c.states[state] - c.t_post for c in accepted if state in c.states]

        failed = [c for c in accepted if "connected" not in c.states or not c.ended]
        unexpected = sum(n for code, n in refused.items() if code not in a.allow_refused)
        return {
            "requested": a.calls, "rate": a.rate, "hold_s": a.hold, "users": min(len(self.creds), a.calls),
            "posting_s": round(self.post_s, 2),
            "accepted": len(accepted), "refused": {str(k): v for k, v in sorted(refused.items())},
            "refusal_examples": sorted({f"{c.status} {c.detail}" for c in self.calls
                                        if c.status not in (0, 201)})[:5],
            "errors": len(self.errors),
            "error_examples": self.errors[:5],
            "connected": len(connected), "ended": len(ended),
            "timed_out": sum(1 for c in accepted if c.timed_out),
            "deletes": {str(k): v for k, v in sorted(Counter(c.deleted for c in accepted if c.deleted).items())},
            "outcomes": dict(Counter(c.outcome or "not-ended" for c in accepted).most_common()),
            "not_connected_or_not_ended": [
                f"{c.call_id} {c.target} {c.outcome or 'not-ended'} {c.code}, got as far as "
                f"{max((k for k in c.states if k != 'ended'), key=c.states.__getitem__, default='nothing')}"
                for c in failed][:10],
            "api_post": ms([c.api_s for c in accepted]),
            "to_user_answered": ms(since_post("user-answered")),
            "to_target_ringing": ms(since_post("target-ringing")),
            "to_connected": ms(since_post("connected")),
            "failures": len(failed) + unexpected + len(self.errors),
        }


def print_summary(s: dict[str, Any]) -> None:
    print(f"callback calls: requested {s['requested']} at {s['rate']}/s over {s['users']} users "
          f"(posted in {s['posting_s']} s), hold {s['hold_s']} s")
    print(f"  accepted (201) {s['accepted']}, refused {s['refused'] or 0}, errors {s['errors']}")
    for x in s["refusal_examples"] + s["error_examples"]:
        print(f"    {x}")
    print(f"  connected {s['connected']}, ended {s['ended']}; outcomes {s['outcomes']}; "
          f"DELETE /v1/calls/{{id}} answered {s['deletes'] or 'none sent'}")
    if s["timed_out"]:
        print(f"    {s['timed_out']} still up --timeout after the last request: ended by the driver")
    for x in s["not_connected_or_not_ended"]:
        print(f"    failed: {x}")
    print(f"  API POST latency                 {fmt(s['api_post'])}")
    print(f"  API request -> user answered     {fmt(s['to_user_answered'])}")
    print(f"  API request -> target ringing    {fmt(s['to_target_ringing'])}")
    print(f"  API request -> connected         {fmt(s['to_connected'])}")
    print("OK" if not s["failures"] else f"FAILED: {s['failures']} calls failed unexpectedly")


def codes(text: str) -> set[int]:
    return {int(x) for x in text.split(",") if x.strip()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", default="http://127.0.0.1:8080")
    ap.add_argument("--credentials", "--token-file", default="creds.csv", metavar="FILE",
                    help="user_id;token;... per line, as provision_users.py --credentials writes it")
    ap.add_argument("--users", type=int, default=0, help="use only the first N users of the file (0: all)")
    ap.add_argument("--rate", type=float, default=5.0, help="calls a second")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--hold", type=float, default=2.0,
                    help="seconds after 'connected' before DELETE /v1/calls/{id}; 0: the far end hangs up")
    ap.add_argument("--target", default="+4930999{n:05d}", help="target number; {n} is the call counter")
    ap.add_argument("--first", type=int, default=0, help="first value of the counter")
    ap.add_argument("--allow-refused", type=codes, default=set(), metavar="CODES",
                    help="HTTP statuses that are expected refusals, e.g. 429,503 (default: none)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for calls to end after the last POST")
    ap.add_argument("--workers", type=int, default=32, help="concurrent API requests at most")
    ap.add_argument("--json", default="", metavar="FILE", help="also write the summary as JSON")
    args = ap.parse_args()
    if args.rate <= 0 or args.calls <= 0:
        ap.error("--rate and --calls must be positive")
    creds = read_credentials(Path(args.credentials))
    creds = creds[: args.users or len(creds)][: args.calls]
    api = Api(args.api)
    driver = Driver(api, creds, args)
    streams = driver.streams = open_streams(api, creds, driver.on_event)
    try:
        driver.run()
    finally:
        for s in streams:
            s.close()
    summary = driver.summary()
    lost = [s.error for s in streams if s.error]
    if lost:
        summary["errors"] += len(lost)
        summary["error_examples"] += lost[:5]
        summary["failures"] += len(lost)
    print_summary(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

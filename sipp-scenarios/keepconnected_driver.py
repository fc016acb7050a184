#!/usr/bin/env python3
"""Keep-connected load: N users' persistent lines, each carrying K calls one after another, through the API.

Stdlib only (it shares the API and event-stream helpers of callback_driver.py beside it). For each user of the
credentials file, at the same time: switch to keep-connected mode (the B2BUA dials the telecommuter number once
and holds that line), then K times: POST /v1/users/{id}/session/calls, wait for the call to connect, hold it
--hold seconds, hang it up with POST /v1/users/{id}/session/actions {"action": "hangup", "call": ...}. Then
GET /v1/users/{id}/session must still show the line up with line_invites == 1: several calls rode one line
INVITE (or as many as when the driver found it up, for a user already in the mode). Finally each user leaves
keep-connected mode (--leave, default off) and the session must end.

With the bundled routes the lines and the targets all go to 127.0.0.3:5060, so one SIPp UAS answers both. The
line must send audio for the whole run: the B2BUA hangs up a line silent for ``keep_connected.rtp_timeout_s``
(10 s bundled), and ``uas_answer.xml`` plays only a 6 s tone, so run it with ``-rtp_echo`` (SIPp sends back the
RTP the B2BUA sends, which keeps flowing on an idle line).

    python3 keepconnected_driver.py --credentials kc-creds.csv --sessions 5 --calls 3 --hold 2

Exit status 0 only if every session came up, every call connected and ended, and every line stayed one INVITE.
The bundled class of service allows 10 call attempts a minute per user: keep --calls at 10 or below a minute.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callback_driver import Api, ApiError, Credential, fmt, ms, open_streams, read_credentials, target_number


class StepFailed(Exception):
    """One step of a session went wrong; the message says which and what the B2BUA answered."""


@dataclass
class Session:
    cred: Credential
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (arrival, data): kind "session"
    session_id: str = ""
    line_up_s: float | None = None  # mode switched on -> line-up event
    calls: int = 0  # placed (201)
    connected: int = 0
    ended: int = 0
    setup_s: list[float] = field(default_factory=list)  # POST session/calls -> call-connected
    api_s: list[float] = field(default_factory=list)  # every API request of this session
    base_invites: int | None = None  # line INVITEs once the line was up (1 unless the session existed before)
    line_invites: int | None = None  # from GET session after the calls
    ended_invites: int | None = None  # from the session-ended event
    error: str = ""


class Driver:
    def __init__(self, api: Api, creds: list[Credential], args: argparse.Namespace) -> None:
        self.api, self.args = api, args
        self.sessions = {c.user_id: Session(c) for c in creds}
        self.cond = threading.Condition()
        self.counter = itertools.count(args.first)

    def on_event(self, user_id: str, t: float, kind: str, data: dict[str, Any]) -> None:
        if kind == "session":
            with self.cond:
                self.sessions[user_id].events.append((t, data))
                self.cond.notify_all()

    def wait_event(self, s: Session, state: str, timeout: float, call: str = "",
                   after: float = 0.0) -> tuple[float, dict[str, Any]]:
        """The first session event in ``state`` (for ``call``) that arrived after ``after``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, e in s.events:
                    if t >= after and e.get("state") == state and (not call or e.get("call") == call) and (
                            not s.session_id or e.get("call_id") == s.session_id):
                        return t, e
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [e.get("state") for _, e in s.events if not call or e.get("call") == call]
                    raise StepFailed(f"no {state!r}{f' for {call}' if call else ''} within {timeout:.0f} s "
                                     f"(saw {seen[-6:]})")
                self.cond.wait(left)

    def api_call(self, s: Session, method: str, path: str, want: int, body: Any = None) -> Any:
        try:
            status, got, took = self.api.request(method, f"/v1/users/{s.cred.user_id}{path}", s.cred.token, body)
        except ApiError as e:
            raise StepFailed(str(e)) from None
        s.api_s.append(took)
        if status != want:
            raise StepFailed(f"{method} {path}: {status} {json.dumps(got)[:200]}")
        return got

    def run_session(self, s: Session) -> None:
        a = self.args
        mode_on = False
        try:
            body: dict[str, Any] = {"mode": "keep-connected"}
            if s.cred.telecommuter_number:
                body["number"] = s.cred.telecommuter_number
            t0 = time.monotonic()
            got = self.api_call(s, "PUT", "/telecommuter", 200, body)
            mode_on = True
            if got["user"]["mode"] != "keep-connected":
                raise StepFailed(f"mode is {got['user']['mode']!r} after switching to keep-connected")
            view = self.api_call(s, "GET", "/session", 200)
            if view["line"] != "up":  # else the user was in keep-connected mode already, with its line up
                t_up, _ = self.wait_event(s, "line-up", a.line_timeout, after=t0)
                s.line_up_s = t_up - t0
                view = self.api_call(s, "GET", "/session", 200)
            s.session_id, s.base_invites = str(view["id"]), int(view["line_invites"])
            for _ in range(a.calls):
                target = target_number(a.target, next(self.counter))
                t_post = time.monotonic()
                placed = self.api_call(s, "POST", "/session/calls", 201, {"target": target})
                role = str(placed["call"])
                s.calls += 1
                t_conn, _ = self.wait_event(s, "call-connected", a.call_timeout, call=role, after=t_post)
                s.connected += 1
                s.setup_s.append(t_conn - t_post)
                time.sleep(a.hold)
                self.api_call(s, "POST", "/session/actions", 200, {"action": "hangup", "call": role})
                _, gone = self.wait_event(s, "call-ended", 10, call=role, after=t_post)
                if gone.get("was") != "active":
                    downs = [e.get("code") for _, e in s.events if e.get("state") == "line-down"]
                    raise StepFailed(f"call {role} to {target} ended while {gone.get('was')!r}, code "
                                     f"{gone.get('code')}" + (f"; the line went down (codes {downs})" if downs else ""))
                s.ended += 1
            view = self.api_call(s, "GET", "/session", 200)
            s.line_invites = int(view["line_invites"])
            if view["line"] != "up" or view["calls"]:
                raise StepFailed(f"after the calls the session is {view}")
        except StepFailed as e:
            s.error = str(e)
        finally:
            if mode_on:
                self.leave(s)

    def leave(self, s: Session) -> None:
        """Out of keep-connected mode: the session (and its line) must end."""
        try:
            t0 = time.monotonic()
            self.api_call(s, "PUT", "/telecommuter", 200, {"mode": self.args.leave})
            _, ended = self.wait_event(s, "session-ended", 10, after=t0)
            s.ended_invites = int(ended.get("line_invites", 0))
        except StepFailed as e:
            s.error = s.error or f"leaving keep-connected mode: {e}"

    def run(self) -> float:
        t0 = time.monotonic()
        threads = []
        for i, s in enumerate(self.sessions.values()):
            time.sleep(max(0.0, t0 + i / self.args.rate - time.monotonic()))
            th = threading.Thread(target=self.run_session, args=(s,), name=f"session-{s.cred.user_id}")
            th.start()
            threads.append(th)
        for th in threads:
            th.join()
        return time.monotonic() - t0

    @staticmethod
    def invites_text(s: Session) -> str:
        return f"line INVITEs {s.base_invites} once up, {s.line_invites} after the calls, {s.ended_invites} at the end"

    def summary(self, took: float) -> dict[str, Any]:
        a = self.args
        ss = list(self.sessions.values())
        invites = [s.line_invites for s in ss if s.line_invites is not None]
        ok = [s for s in ss if not s.error and s.line_invites == s.ended_invites == s.base_invites
              and s.connected == a.calls == s.ended]
        return {
            "sessions": len(ss), "calls_per_session": a.calls, "hold_s": a.hold, "run_s": round(took, 1),
            "lines_up": sum(1 for s in ss if s.base_invites is not None),
            "calls_placed": sum(s.calls for s in ss), "calls_connected": sum(s.connected for s in ss),
            "calls_ended": sum(s.ended for s in ss),
            "line_invites_per_session": {"min": min(invites, default=None), "max": max(invites, default=None)},
            "sessions_ended": sum(1 for s in ss if s.ended_invites is not None),
            "line_up": ms([s.line_up_s for s in ss if s.line_up_s is not None]),
            "call_setup": ms([x for s in ss for x in s.setup_s]),
            "api": ms([x for s in ss for x in s.api_s]),
            "failed_sessions": [f"{s.cred.user_id}: {s.error or self.invites_text(s)}" for s in ss if s not in ok],
            "failures": len(ss) - len(ok),
        }


def print_summary(s: dict[str, Any]) -> None:
    inv = s["line_invites_per_session"]
    print(f"keep-connected: {s['sessions']} sessions x {s['calls_per_session']} calls, hold {s['hold_s']} s, "
          f"run {s['run_s']} s")
    print(f"  lines up {s['lines_up']}, calls placed {s['calls_placed']}, connected {s['calls_connected']}, "
          f"hung up {s['calls_ended']}")
    print(f"  line INVITEs per session: min {inv['min']}, max {inv['max']}; sessions ended {s['sessions_ended']}")
    print(f"  mode on -> line up              {fmt(s['line_up'])}")
    print(f"  session call POST -> connected  {fmt(s['call_setup'])}")
    print(f"  API request latency (all)       {fmt(s['api'])}")
    for x in s["failed_sessions"][:10]:
        print(f"    failed: {x}")
    print("OK" if not s["failures"] else f"FAILED: {s['failures']} sessions")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--api", default="http://127.0.0.1:8080")
    ap.add_argument("--credentials", "--token-file", default="creds.csv", metavar="FILE",
                    help="user_id;token;... per line, as provision_users.py --credentials writes it")
    ap.add_argument("--sessions", type=int, default=0, help="the first N users of the file (0: all)")
    ap.add_argument("--calls", type=int, default=3, help="calls per session, one after another")
    ap.add_argument("--hold", type=float, default=2.0, help="seconds each call stays connected")
    ap.add_argument("--target", default="+4930998{n:05d}", help="target number; {n} is a counter over all calls")
    ap.add_argument("--first", type=int, default=0, help="first value of the counter")
    ap.add_argument("--rate", type=float, default=10.0, help="sessions started a second")
    ap.add_argument("--leave", choices=("off", "on-demand"), default="off", help="mode to leave the users in")
    ap.add_argument("--line-timeout", type=float, default=30.0, help="seconds for a line to come up")
    ap.add_argument("--call-timeout", type=float, default=30.0, help="seconds for a call to connect")
    ap.add_argument("--json", default="", metavar="FILE", help="also write the summary as JSON")
    args = ap.parse_args()
    if args.calls < 1 or args.rate <= 0:
        ap.error("--calls and --rate must be positive")
    creds = read_credentials(Path(args.credentials))
    creds = creds[: args.sessions or len(creds)]
    api = Api(args.api)
    driver = Driver(api, creds, args)
    streams = open_streams(api, creds, driver.on_event)
    try:
        took = driver.run()
    finally:
        for st in streams:
            st.close()
    summary = driver.summary(took)
    lost = [st.error for st in streams if st.error]
    summary["failed_sessions"] += lost
    summary["failures"] += len(lost)
    print_summary(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

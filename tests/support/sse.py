"""A server-sent-events reader in a background thread, for watching a user's live call events."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx


class EventWatcher:
    def __init__(self, url: str, token: str) -> None:
        self.events: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, token), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("event stream did not open")

    def _run(self, url: str, token: str) -> None:
        with httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as client, client.stream(
                "GET", url, headers={"Authorization": f"Bearer {token}"}) as r:
            kind = ""
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = json.loads(line.split(":", 1)[1])
                    if kind == "hello":
                        self._ready.set()
                    else:
                        self.events.append({"kind": kind, **data})

    def states(self, call_id: str | None = None, kind: str = "call") -> list[str]:
        return [e["state"] for e in self.events
                if e["kind"] == kind and (call_id is None or e.get("call_id") == call_id)]

    def wait_for(self, state: str, timeout: float = 20.0, kind: str = "call",
                 pred: Any = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in list(self.events):
                if e["kind"] == kind and e.get("state") == state and (pred is None or pred(e)):
                    return e
            time.sleep(0.05)
        raise AssertionError(f"no {kind} event {state!r} in {timeout}s; got {self.events}")

    def wait_event(self, kind: str, pred: Any = None, timeout: float = 20.0) -> dict[str, Any]:
        """The first event of ``kind`` (any event type, e.g. "voicemail", "desk") matching ``pred``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in list(self.events):
                if e["kind"] == kind and (pred is None or pred(e)):
                    return e
            time.sleep(0.05)
        raise AssertionError(f"no {kind} event in {timeout}s; got {self.events}")

    def close(self) -> None:
        self._stop.set()

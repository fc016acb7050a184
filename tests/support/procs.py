"""Real peers for end-to-end tests: the B2BUA process, SIPp, and a loopback packet capture.

Every helper owns the processes it starts and stops them by PID (terminate, then kill)."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "sipp-scenarios"
PY = sys.executable

_ports = itertools.count(0)


def port_block() -> int:
    """A fresh block of 10 SIP/HTTP ports and 2000 RTP ports per B2BUA instance in this test session."""
    return next(_ports)


def stop_process(p: subprocess.Popen[Any], timeout: float = 10.0) -> int | None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return p.returncode


@dataclass
class B2bua:
    """The real B2BUA process on loopback, with a generated config."""

    workdir: Path
    block: int = field(default_factory=port_block)
    extra_config: str = ""
    max_bridged_calls: int = 0
    rtp_port_count: int = 2000  # two per leg (RTP, RTCP): 500 bridged calls; more overlaps the next block's range
    max_call_rate: float | None = None  # None: the product's default
    max_call_burst: int = 0
    no_answer_timeout_s: float = 5.0
    token: str = "test-admin-token"
    env: dict[str, str] = field(default_factory=dict)
    routes_before: str = ""  # [[routes]] tried before the catch-all route to the far end
    trunk_cos: str = ""  # class of service for calls from the carrier trunk routed out again
    init: bool = True  # run `b2bua init` before the first start, as an operator does; False: start on what is there
    listen_ip: str = "127.0.0.1"  # sip.listen_ip ("::1": an IPv6 node)
    trunks_text: str | None = None  # [[trunks]] and [[routes]] instead of the default carrier/mobile ones
    proc: subprocess.Popen[bytes] | None = None
    _initialised: bool = field(default=False, init=False, repr=False)

    @property
    def sip_port(self) -> int:
        return 15060 + self.block * 10

    @property
    def far_port(self) -> int:
        """Where routed calls go: the far end (SIPp UAS / test phone) listens here on 127.0.0.3."""
        return 25060 + self.block * 10

    @property
    def http_port(self) -> int:
        return 18080 + self.block * 10

    @property
    def rtp_start(self) -> int:
        return 30000 + (self.block % 10) * 2000

    @property
    def log_path(self) -> Path:
        return self.workdir / "b2bua.log"

    def config_text(self) -> str:
        return f"""
[sip]
listen_ip = "{self.listen_ip}"
listen_port = {self.sip_port}
rtp_port_start = {self.rtp_start}
rtp_port_count = {self.rtp_port_count}
no_answer_timeout_s = {self.no_answer_timeout_s}
max_bridged_calls = {self.max_bridged_calls}
{"" if self.max_call_rate is None else f"max_call_rate = {self.max_call_rate}"}
max_call_burst = {self.max_call_burst}
retry_after_s = 7

[http]
listen_ip = "127.0.0.1"
port = {self.http_port}
admin_token = "{self.token}"

[store]
path = "{self.workdir / 'var' / 'b2bua.sqlite'}"

[logging]
level = "info"

{self._trunks()}
{self.extra_config.replace("@FAR_PORT@", str(self.far_port))}
"""

    def _trunks(self) -> str:
        if self.trunks_text is not None:
            return self.trunks_text
        return f"""[[trunks]]
name = "carrier"
inbound_acl = ["127.0.0.2/32"]
host = "127.0.0.3"
port = {self.far_port}
class_of_service = "{self.trunk_cos}"

[[trunks]]
name = "mobile"
host = "127.0.0.4"
port = {self.far_port}

{self.routes_before}

[[routes]]
pattern = "[0-9+]+"
trunk = "carrier"
"""

    def start(self, timeout: float = 20.0) -> B2bua:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "b2bua.toml"
        cfg.write_text(self.config_text())
        if self.init and not self._initialised:  # the first start only: a restart must find the database it left
            self.run_cli("init")
            self._initialised = True
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([PY, "-m", "b2bua", "run", "-c", str(cfg)], cwd=ROOT,
                                     stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"B2BUA exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.health()["engine"]["up"]:  # up; "status" may say degraded (a test's full disk)
                    return self
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"B2BUA did not become healthy:\n{self.log_tail()}")

    def run_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``b2bua <args> -c <this config>`` to its end (init, check-config; ``run`` exits early on errors)."""
        cfg = self.workdir / "b2bua.toml"
        p = subprocess.run([PY, "-m", "b2bua", *args, "-c", str(cfg)], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, **self.env}, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError(f"b2bua {' '.join(args)} exited with {p.returncode}:\n{p.stdout}{p.stderr}")
        return p

    def stop(self) -> int | None:
        rc = stop_process(self.proc) if self.proc else None
        if getattr(self, "_log", None):
            self._log.close()
        return rc

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def log_events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    out.append(json.loads(line))
        return out

    # ------------------------------------------------------------------ HTTP
    def http(self, method: str, path: str, token: str | None = "admin", body: Any = None) -> tuple[int, Any]:
        status, _, parsed = self.http_full(method, path, token, body)
        return status, parsed

    def http_full(self, method: str, path: str, token: str | None = "admin",
                  body: Any = None) -> tuple[int, dict[str, str], Any]:
        """Status, response headers (lower-case names) and the body, parsed if it is JSON."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", method=method)
        if token == "admin":
            token = self.token
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, data, timeout=5) as r:
                raw, status, headers = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            raw, status, headers = e.read(), e.code, e.headers
        hdrs = {k.lower(): v for k, v in headers.items()}
        try:
            return status, hdrs, json.loads(raw)
        except ValueError:
            return status, hdrs, raw.decode(errors="replace")

    def http_bytes(self, method: str, path: str, token: str | None = "admin") -> tuple[int, bytes]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", method=method)
        req.add_header("Authorization", f"Bearer {self.token if token == 'admin' else token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def health(self) -> dict[str, Any]:
        status, body = self.http("GET", "/health", token=None)
        if status != 200:
            raise OSError(f"health {status}")
        return dict(body)

    def metrics(self) -> dict[str, float]:
        """Prometheus text -> {'name{labels}': value}."""
        _, text = self.http("GET", "/metrics", token=None)
        out: dict[str, float] = {}
        for line in str(text).splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def metric(self, name: str, **labels: str) -> float:
        m = self.metrics()
        if not labels:
            return m.get(name, 0.0)
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for key, value in m.items():
            if key.startswith(name + "{"):
                got = ",".join(sorted(key[len(name) + 1 : -1].split(",")))
                if got == want:
                    return value
        return 0.0

    def wait_idle(self, timeout: float = 10.0) -> dict[str, float]:
        """Wait until no call and no leg is left; return the last metrics read."""
        deadline = time.monotonic() + timeout
        m: dict[str, float] = {}
        while time.monotonic() < deadline:
            m = self.metrics()
            if m.get("b2bua_active_calls", -1) == 0 and m.get("b2bua_active_legs", -1) == 0:
                return m
            time.sleep(0.1)
        raise AssertionError(f"legs/calls left: calls={m.get('b2bua_active_calls')} "
                             f"legs={m.get('b2bua_active_legs')}\n{self.log_tail()}")


@dataclass
class SippResult:
    rc: int
    out: str
    messages: list[str]  # every SIP message seen or sent, in order

    def first_lines(self) -> list[str]:
        return [m.splitlines()[0] for m in self.messages if m.strip()]

    def statuses(self) -> list[int]:
        return [int(x.split()[1]) for x in self.first_lines() if x.startswith("SIP/2.0 ")]

    def requests(self) -> list[str]:
        return [x.split()[0] for x in self.first_lines() if not x.startswith("SIP/2.0 ")]


def _parse_messages(path: Path) -> list[str]:
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    # SIPp separates messages with a line of dashes and a "sent/received" banner
    chunks = re.split(r"^-{10,}.*$", text, flags=re.M)
    out = []
    for c in chunks:
        lines = [ln for ln in c.strip().splitlines()
                 if not re.match(r"^(UDP|TCP) message (sent|received)", ln)]
        body = "\n".join(lines).strip()
        if re.match(r"^(SIP/2\.0 \d{3}|[A-Z]+ \S+ SIP/2\.0)", body):
            out.append(body)
    return out


_LIVE: set[subprocess.Popen[bytes]] = set()  # load tools and phones a test started and has not waited for


def stop_leftovers() -> int:
    """Stop whatever a failed test left running (by the PIDs it started); returns how many there were."""
    n = 0
    for p in list(_LIVE):
        if p.poll() is None:
            stop_process(p, 3)
            n += 1
    _LIVE.clear()
    return n


class Sipp:
    """One SIPp process run from sipp-scenarios/ (so scenarios find their pcaps)."""

    def __init__(self, workdir: Path, name: str, scenario: str, args: Sequence[str]) -> None:
        self.workdir = workdir
        self.name = name
        self.msg_file = workdir / f"{name}.msg"
        self.cmd = ["sipp", "-sf", scenario, "-nostdin", "-trace_msg", "-message_file", str(self.msg_file),
                    "-trace_err", "-error_file", str(workdir / f"{name}.err"), *args]
        self.proc: subprocess.Popen[bytes] | None = None
        self._out = workdir / f"{name}.out"

    def start(self) -> Sipp:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._fh = open(self._out, "wb")  # noqa: SIM115 - closed in result()
        self.proc = subprocess.Popen(self.cmd, cwd=SCENARIOS, stdout=self._fh, stderr=subprocess.STDOUT)
        _LIVE.add(self.proc)
        time.sleep(0.3)  # let it bind before the other side sends
        return self

    def wait(self, timeout: float = 60.0) -> SippResult:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)
            rc = -1
        return self.result(rc)

    def stop(self) -> SippResult:
        assert self.proc is not None
        return self.result(stop_process(self.proc, 3) or 0)

    def result(self, rc: int) -> SippResult:
        if self.proc is not None:
            _LIVE.discard(self.proc)
        self._fh.close()
        return SippResult(rc, self._out.read_text(errors="replace"), _parse_messages(self.msg_file))


def uas(b: B2bua, scenario: str, *, calls: int = 1, hold_ms: int = 0, name: str = "uas",
        extra: Sequence[str] = (), ip: str = "127.0.0.3", transport: str = "u1") -> Sipp:
    """A far-end SIPp on ``ip`` (127.0.0.3: the carrier trunk; 127.0.0.4: the mobile trunk); ``transport`` is
    SIPp's ``-t`` (u1: UDP, t1: TCP)."""
    return Sipp(b.workdir, name, scenario, [
        "-i", ip, "-p", str(b.far_port), "-mi", ip, "-mp", str(b.far_port + 2000),
        "-m", str(calls), "-d", str(hold_ms), "-t", transport, *extra]).start()


def uac(b: B2bua, scenario: str, *, calls: int = 1, hold_ms: int = 1000, called: str = "4930123456",
        caller: str = "15551230001", src_ip: str = "127.0.0.2", rate: float | None = None,
        limit: int | None = None, name: str = "uac", extra: Sequence[str] = (), instance: int = 0,
        transport: str = "u1") -> Sipp:
    """A trunk-side SIPp; ``instance`` shifts its SIP and media ports so several can run at once; ``transport`` is
    SIPp's ``-t`` (u1: UDP, t1: TCP)."""
    args = [f"127.0.0.1:{b.sip_port}", "-i", src_ip, "-p", str(b.sip_port + 1000 + instance), "-mi", src_ip,
            "-mp", str(b.sip_port + 3000 + 4 * instance), "-s", called, "-key", "caller", caller, "-m", str(calls),
            "-d", str(hold_ms), "-recv_timeout", "30000", "-t", transport, *extra]
    if rate is not None:
        args += ["-r", str(rate)]
    if limit is not None:
        args += ["-l", str(limit)]
    return Sipp(b.workdir, name, scenario, args)


@contextmanager
def capture(workdir: Path, name: str = "lo", bpf: str = "udp and not port 53") -> Iterator[Path]:
    """tcpdump on loopback for the duration of the block; yields the pcap path (complete after the block)."""
    path = workdir / f"{name}.pcap"
    workdir.mkdir(parents=True, exist_ok=True)
    err = open(workdir / f"{name}.tcpdump.err", "wb")  # noqa: SIM115
    p = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-n", "-s", "400", "-w", str(path), bpf],
                         stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and b"listening" not in (workdir / f"{name}.tcpdump.err").read_bytes():
        time.sleep(0.05)
    try:
        yield path
    finally:
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        err.close()



class PhoneProc:
    """tests/support/phone.py in its own process; its JSON events are read after it exits."""

    def __init__(self, workdir: Path, name: str, args: Sequence[str]) -> None:
        self.workdir = workdir
        self.name = name
        workdir.mkdir(parents=True, exist_ok=True)
        self._out = open(workdir / f"{name}.events", "wb")  # noqa: SIM115 - closed in wait()
        self._err = open(workdir / f"{name}.stderr", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([PY, str(ROOT / "tests" / "support" / "phone.py"), *args],
                                     stdout=self._out, stderr=self._err)
        _LIVE.add(self.proc)
        self.events: list[dict[str, Any]] = []

    def wait_ready(self, timeout: float = 10.0) -> PhoneProc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b'"ready"' in (self.workdir / f"{self.name}.events").read_bytes():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"phone {self.name} not ready: "
                           f"{(self.workdir / f'{self.name}.stderr').read_text(errors='replace')}")

    def wait(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)
        _LIVE.discard(self.proc)
        self._out.close()
        self._err.close()
        text = (self.workdir / f"{self.name}.events").read_text(errors="replace")
        self.events = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
        return self.events

    def kill(self) -> None:
        stop_process(self.proc, 3)

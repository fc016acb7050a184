"""Benchmark building blocks: SIPp load, captures, process probes and the set-up/CPS/callback measurements.

Not a test, and not run on its own: ``perf/run.py`` (``make -C perf bench``) composes these with
``rtp_concurrency``, ``sippy_b2bua`` and ``overload`` into the whole benchmark. The B2BUA is pinned to CPU 0 and
the load tools to CPU 1 (``taskset``).
"""

from __future__ import annotations

import csv
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from b2bua.media import pcap  # noqa: E402
from tests.support.procs import SCENARIOS, B2bua, stop_process  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
B2BUA_CPU, LOAD_CPU = "0", "1"


# ------------------------------------------------------------------------------------------ process probes
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kb(pid: int) -> tuple[int, int]:
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))]


# ------------------------------------------------------------------------------------------ SIPp runs
class Load:
    def __init__(self, work: Path, target: str, far_port: int, sip_port: int) -> None:
        self.work, self.target, self.far_port, self.sip_port = work, target, far_port, sip_port
        self.n = 0

    def _sipp(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        out = open(self.work / f"{name}.out", "wb")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(["taskset", "-c", LOAD_CPU, "sipp", "-nostdin", *args], cwd=SCENARIOS,
                                stdout=out, stderr=subprocess.STDOUT)

    def far(self, scenario: str, calls: int) -> subprocess.Popen[bytes]:
        self.n += 1
        return self._sipp(f"uas{self.n}", ["-sf", scenario, "-i", "127.0.0.3", "-p", str(self.far_port),
                                           "-mi", "127.0.0.3", "-mp", str(self.far_port + 2000),
                                           "-m", str(calls), "-d", "0"])

    def trunk(self, scenario: str, *, rate: float, calls: int, hold_ms: int, limit: int) -> tuple[
            subprocess.Popen[bytes], Path]:
        self.n += 1
        stat = self.work / f"uac{self.n}.stat.csv"
        self.uac_port = self.sip_port + 1000 + self.n
        args = ["-sf", scenario, self.target, "-i", "127.0.0.2", "-p", str(self.uac_port),
                "-mi", "127.0.0.2", "-mp", str(self.sip_port + 3000 + 4 * self.n), "-s", "4930123456",
                "-key", "caller", "15551230001", "-r", str(rate), "-m", str(calls), "-l", str(limit),
                "-d", str(hold_ms), "-trace_stat", "-stf", str(stat), "-fd", "1", "-recv_timeout", "10000"]
        return self._sipp(f"uac{self.n}", args), stat

    def next_uac_port(self) -> int:
        return self.sip_port + 1000 + self.n + 1


def setup_times_ms(path: Path, uac_port: int) -> list[float]:
    """INVITE sent by the trunk SIPp -> its first 200 OK for that INVITE, per Call-ID, from packet times."""
    sent: dict[bytes, float] = {}
    out: list[float] = []
    for pkt in pcap.read(path):
        data = pkt.payload
        if pkt.sport == uac_port and data.startswith(b"INVITE "):
            cid = _call_id(data)
            if cid and cid not in sent:
                sent[cid] = pkt.ts
        elif pkt.dport == uac_port and data.startswith(b"SIP/2.0 200") and b" INVITE\r\n" in data:
            cid = _call_id(data)
            if cid in sent:
                out.append(1000 * (pkt.ts - sent.pop(cid)))
    return out


def _call_id(msg: bytes) -> bytes:
    for line in msg.split(b"\r\n"):
        if line[:8].lower() == b"call-id:" or line[:2].lower() == b"i:":
            return line.split(b":", 1)[1].strip()
    return b""


class SipCapture:
    """tcpdump of one SIPp's SIP port, on the load CPU."""

    def __init__(self, work: Path, port: int) -> None:
        self.path = work / f"sip-{port}-{time.monotonic_ns()}.pcap"
        # --immediate-mode: packets are written as they come, so stopping loses none of the last second
        self.proc = subprocess.Popen(["taskset", "-c", LOAD_CPU, "tcpdump", "--immediate-mode", "-i", "lo", "-n", "-s",
                                      "2000", "-B", "65536", "-w", str(self.path), f"udp port {port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self) -> Path:
        time.sleep(0.2)
        self.proc.send_signal(2)
        self.proc.wait(10)
        return self.path


def final_stats(stat: Path) -> dict[str, int]:
    rows = list(csv.DictReader(stat.open(), delimiter=";")) if stat.exists() else []
    if not rows:
        return {"successful": 0, "failed": 0, "retransmissions": 0}
    last = rows[-1]
    return {"successful": int(last.get("SuccessfulCall(C)", 0)), "failed": int(last.get("FailedCall(C)", 0)),
            "retransmissions": int(last.get("Retransmissions(C)", 0))}


# ------------------------------------------------------------------------------------------ benchmarks
BENCH_CONFIG = """
[telecommuter]
home_country = "DE"
default_class_of_service = "bench"
[classes_of_service.bench]
allow = ["national", "mobile"]
max_concurrent_calls = 100
max_calls_per_minute = 10000
[[trunks]]
name = "targets"
host = "127.0.0.5"
port = @FAR_PORT@
"""
# callback users on the mobile trunk (127.0.0.4), callback targets on their own (127.0.0.5): a later phase's far
# end on 127.0.0.3 must not receive the lingering retransmissions of calls this phase abandoned
MOBILE_ROUTE = """
[[routes]]
pattern = "\\\\+49171.*"
trunk = "mobile"
[[routes]]
pattern = "\\\\+4930987.*"
trunk = "targets"
"""


def start_b2bua(work: Path, ceiling: int = 0, max_call_rate: float = 0, rtp_ports: int = 4000,
                ptime_ms: int = 20) -> B2bua:
    """The capacity runs switch the call-rate limit off (0) to find the raw limits; the overload run sets it.
    Each leg takes an RTP and an RTCP port: 4000 ports hold 1000 bridged calls. ``ptime_ms`` is the product's
    ``sip.ptime_ms`` (what the B2BUA sends and its bridge's frame; the load tools keep sending 20 ms).
    ``B2bua.start`` runs ``b2bua init`` first, as an operator does (a fresh work directory has no database)."""
    b = B2bua(work, block=90, max_bridged_calls=ceiling, max_call_rate=max_call_rate, no_answer_timeout_s=30,
              extra_config=BENCH_CONFIG, routes_before=MOBILE_ROUTE, rtp_port_count=rtp_ports,
              env={"B2BUA_SIP__PTIME_MS": str(ptime_ms)})
    b.start()
    assert b.proc is not None
    subprocess.run(["taskset", "-pc", B2BUA_CPU, str(b.proc.pid)], check=True, capture_output=True)
    # every thread of the process, not only the main one
    for tid in os.listdir(f"/proc/{b.proc.pid}/task"):
        subprocess.run(["taskset", "-pc", B2BUA_CPU, tid], capture_output=True)
    return b


def cps_ramp(b: B2bua, load: Load, rates: list[int], step_s: int) -> list[dict[str, Any]]:
    assert b.proc is not None
    steps = []
    for rate in rates:
        calls = rate * step_s
        far = load.far("uas_cps.xml", calls)
        time.sleep(0.3)
        cap = SipCapture(load.work, load.next_uac_port())
        c0, t0 = cpu_seconds(b.proc.pid), time.monotonic()
        uac, stat = load.trunk("uac_cps.xml", rate=rate, calls=calls, hold_ms=1000, limit=rate * 4)
        uac.wait(step_s * 4 + 30)
        c1, t1 = cpu_seconds(b.proc.pid), time.monotonic()
        stop_process(far, 5)
        st = final_stats(stat)
        rt = setup_times_ms(cap.stop(), load.uac_port)
        step: dict[str, Any] = {
                "rate": rate, **st, "offered": calls, "b2bua_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1),
                "cpu_ms_per_call": round(1000 * (c1 - c0) / max(1, st["successful"]), 3),
                "setup_p50_ms": _r(pct(rt, 50)), "setup_p99_ms": _r(pct(rt, 99))}
        steps.append(step)
        print("cps", step, flush=True)
        overloaded = not clean_step(st, calls)
        # calls the load tool abandoned are cleared by SIP timers (ACK wait, BYE retransmission: ~32 s each)
        step["clear_s"] = settle(b, 120 if overloaded else 30)
        if overloaded:
            break
    return steps


def clean_step(st: dict[str, int], offered: int) -> bool:
    """One rule for every ramp: each call completed and no INVITE or BYE had to be retransmitted (a B2BUA that
    needs the peer's timers to keep up is already past its capacity, whatever SIPp counts as successful)."""
    return not st["failed"] and st["successful"] >= offered and not st["retransmissions"]


def settle(b: B2bua, timeout: float) -> float | None:
    """Seconds until no call and no leg is left, or None if some were still there after ``timeout``."""
    t0 = time.monotonic()
    try:
        b.wait_idle(timeout)
    except AssertionError:
        return None
    return round(time.monotonic() - t0, 1)


def setup_latency(load: Load, rate: int, seconds: int, direct: bool) -> dict[str, Any]:
    calls = rate * seconds
    far = load.far("uas_cps.xml", calls)
    time.sleep(0.3)
    cap = SipCapture(load.work, load.next_uac_port())
    saved = load.target
    if direct:
        load.target = f"127.0.0.3:{load.far_port}"
    uac, stat = load.trunk("uac_cps.xml", rate=rate, calls=calls, hold_ms=200, limit=rate * 2)
    load.target = saved
    uac.wait(seconds * 3 + 30)
    stop_process(far, 5)
    rt = setup_times_ms(cap.stop(), load.uac_port)
    return {"rate": rate, "calls": calls, **final_stats(stat), "measured": len(rt), "p50_ms": _r(pct(rt, 50)),
            "p99_ms": _r(pct(rt, 99)), "mean_ms": _r(statistics.fmean(rt)) if rt else None}


def _r(x: float) -> float:
    return round(x, 3)


def callback_setup(b: B2bua, load: Load, work: Path, rate: float, calls: int) -> dict[str, Any]:
    """API request -> the target's 180 Ringing, for callback calls; both far ends answer at once.

    Calls overlap, so the n-th 180 in the capture need not belong to the n-th request: every call dials its own
    target number and each 180 is paired with its request by the number in its To header."""
    status, body = b.http("POST", "/v1/users", body={"name": "Bench", "extension": "2999",
                                                     "business_number": "+493012345678", "class_of_service": "bench"})
    assert status == 201, body
    uid, token = body["user"]["id"], body["token"]
    status, body = b.http("PUT", f"/v1/users/{uid}/telecommuter", token=token,
                          body={"mode": "on-demand", "number": "+491711234567"})
    assert status == 200, body
    user_side = load._sipp("uas-user", ["-sf", "uas_cps.xml", "-i", "127.0.0.4", "-p", str(load.far_port),
                                        "-mi", "127.0.0.4", "-mp", str(load.far_port + 2000), "-m", str(calls)])
    target = load._sipp("uas-target", ["-sf", "uas_cps.xml", "-i", "127.0.0.5", "-p", str(load.far_port),
                                       "-mi", "127.0.0.5", "-mp", str(load.far_port + 2000), "-m", str(calls)])
    time.sleep(0.5)
    cap = SipCapture(work, load.far_port)
    posted: dict[str, float] = {}  # target number as dialled (E.164) -> wall-clock time of its API request
    ids: list[str] = []
    t_next = time.monotonic()
    for i in range(calls):
        t_next += 1 / rate
        time.sleep(max(0.0, t_next - time.monotonic()))
        t = time.time()
        status, body = b.http("POST", f"/v1/users/{uid}/calls", token=token, body={"target": f"+4930987{i:05d}"})
        if status == 201:
            posted[body["target"]] = t
            ids.append(body["id"])
    time.sleep(1.0)
    for cid in ids:
        b.http("DELETE", f"/v1/calls/{cid}", token=token)
    path = cap.stop()

    def to_number(msg: bytes) -> str:
        for line in msg.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"to", b"t"):
                return value.split(b"sip:", 1)[-1].split(b"@", 1)[0].decode(errors="replace")
        return ""

    ringing: dict[str, float] = {}  # target number -> capture time of its first 180
    for p in pcap.read(path):
        if p.sport == load.far_port and p.src == "127.0.0.5" and p.payload.startswith(b"SIP/2.0 180"):
            ringing.setdefault(to_number(p.payload), p.ts)
    lat = [1000 * (ringing[n] - t) for n, t in posted.items() if n in ringing]
    stop_process(user_side, 10)
    stop_process(target, 10)
    return {"rate": rate, "requested": calls, "accepted": len(ids), "target_ringing": len(lat),
            "p50_ms": _r(pct(lat, 50)), "p99_ms": _r(pct(lat, 99)), "clear_s": settle(b, 60)}


def machine() -> dict[str, Any]:
    import pjsua2

    return {"python": platform.python_version(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "cpu_model": next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                               if ln.startswith("model name")), "?"),
            "sipp": subprocess.run(["sipp", "-v"], capture_output=True, text=True).stdout.strip().splitlines()[0:2],
            "pjsua2_build": getattr(pjsua2, "__b2bua_build__", "pypi"),
            "pjsua2_limits": getattr(pjsua2, "__b2bua_limits__", {})}

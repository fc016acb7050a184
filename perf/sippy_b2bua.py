"""Sippy B2BUA (PyPI ``sippy``, signalling only) under the same SIPp load as our B2BUA, for side-by-side figures.

The issue asks every benchmark run to measure a known Python B2BUA on the same core in the same run, so our
figures can be read as ratios to it rather than as absolute numbers that change with the machine. Sippy runs
pinned to CPU 0 (where our B2BUA runs) and the load tools stay on CPU 1, exactly as in ``perf.bench``; the
load, the packet capture and the statistics are perf.bench's own (imported, not copied), so both B2BUAs are
measured by the same code.

Sippy needs its own copies of the CPS scenarios (``sipp-scenarios/*_cps_sippy.xml``): it answers with
``Contact: Anonymous <sip:...>``, which SIPp copies into the ACK/BYE Request-URI and Sippy then cannot parse;
it rejects the upper-case ``transport=UDP`` SIPp writes in Contact; and under load its sender threads now and
then put a provisional response after the 200, which plain SIPp scenarios treat as a failed call.

Standalone: ``.venv/bin/python -m perf.sippy_b2bua --rates 50,100,150 --step 5`` prints JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from b2bua.media import pcap
from perf.bench import B2BUA_CPU, Load, SipCapture, _call_id, cpu_seconds, final_stats, pct, setup_times_ms
from tests.support.procs import stop_process

UAC_SCENARIO, UAS_SCENARIO = "uac_cps_sippy.xml", "uas_cps_sippy.xml"
PORT_OFFSET = 5  # Sippy listens at load.sip_port + 5: inside the bench's port block, never our B2BUA's port


def sippy_version() -> str | None:
    try:
        return metadata.version("sippy")
    except metadata.PackageNotFoundError:
        return None


def _udp_bound(ip: str, port: int) -> bool:
    """Whether some socket is bound to ip:port (from /proc/net/udp: Sippy sets SO_REUSEPORT, so a stale
    instance on the same port would silently share the load instead of failing to bind)."""
    want = f"{int.from_bytes(socket.inet_aton(ip), sys.byteorder):08X}:{port:04X}"  # kernel prints host order
    lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(line.split()[1] == want for line in lines)


class SippyB2bua:
    """One Sippy B2BUA process on 127.0.0.1:``sip_port`` forwarding every call to 127.0.0.3:``far_port``.

    ``variant="radius"`` is Sippy's full B2BUA (``sippy.b2bua``, the one its docs call b2bua_radius) with RADIUS
    auth and accounting off and a static route; ``"simple"`` is its ~100-line ``b2bua_simple`` demo. Neither
    relays media. It runs under ``timeout -k`` so it cannot outlive ``max_s`` even if this process dies.
    """

    def __init__(self, work: Path, sip_port: int, far_port: int, *, variant: str = "radius",
                 max_s: int = 900) -> None:
        if variant not in ("radius", "simple"):
            raise ValueError(f"unknown Sippy variant: {variant}")
        self.work, self.sip_port, self.far_port, self.variant, self.max_s = work, sip_port, far_port, variant, max_s
        self.ctl = work / "sippy.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0  # the Sippy interpreter (child of ``timeout``), whose CPU is measured

    @property
    def args(self) -> list[str]:
        """The Sippy command line (without the timeout/taskset wrappers)."""
        listen = ["-f", "-l", "127.0.0.1", "-p", str(self.sip_port)]
        if self.variant == "simple":
            return [sys.executable, "-m", "sippy.b2bua_simple", *listen, "-n", f"127.0.0.3:{self.far_port}"]
        # -u: no RADIUS auth, -A 0: no accounting, -s: route every call there, -c: control socket ('l' = calls)
        return [sys.executable, "-m", "sippy.b2bua", *listen, "-s", f"127.0.0.3:{self.far_port}", "-u", "-A", "0",
                "-c", str(self.ctl)]

    @property
    def cmd(self) -> list[str]:
        return ["timeout", "-k", "5", str(self.max_s), "taskset", "-c", B2BUA_CPU, *self.args]

    def start(self, timeout: float = 20.0) -> SippyB2bua:
        if _udp_bound("127.0.0.1", self.sip_port):
            raise RuntimeError(f"127.0.0.1:{self.sip_port} is already bound (a stale Sippy?)")
        self.work.mkdir(parents=True, exist_ok=True)
        log = open(self.work / "sippy.out", "ab")  # noqa: SIM115 - the child holds its own copy
        try:
            self.proc = subprocess.Popen(self.cmd, cwd=self.work, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "SIPLOG_BEND": "none"})
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Sippy exited with {self.proc.returncode}:\n{self.log_tail()}")
            if not self.pid:
                self.pid = self._child_pid()
            if self.pid and _udp_bound("127.0.0.1", self.sip_port):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Sippy did not bind 127.0.0.1:{self.sip_port} within {timeout} s:\n{self.log_tail()}")

    def _child_pid(self) -> int:
        """The process ``timeout`` started (taskset execs into the interpreter, so that is Sippy itself)."""
        assert self.proc is not None
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return 0
        return int(kids[0]) if kids else 0

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def idle(self) -> bool | None:
        """Whether Sippy's call map is empty, from its control socket's ``l`` command (None for ``simple``).

        Sippy 2.5.0's ``l`` lists "Total: 0" when idle but raises inside Sippy as soon as any call is in the map
        (SimpleAPI unpacks listActiveCalls() rows wrongly) and closes the connection: that reads as "not idle".
        """
        if self.variant != "radius":
            return None
        buf = b""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.ctl))
            s.sendall(b"l\n")
            while not (b"Total:" in buf and buf.endswith(b"\n")):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return b"Total: 0\n" in buf

    def settle(self, timeout: float) -> float | None:
        """Seconds until Sippy's call map is empty (None: still calls after ``timeout``, or unknown: ``simple``).

        Sippy keeps every ended call in its map for 32 s (``UA.godead_timeout``), so this is ~32 s even when all
        calls ended cleanly; waiting it out makes each step start empty, as perf.bench does for our B2BUA.
        Polled every 2 s: each poll of a non-empty map logs a traceback inside Sippy (see ``idle``).
        """
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            idle = self.idle()
            if idle is None:  # no way to ask: wait out the linger time anyway
                time.sleep(min(timeout, 33.0))
                return None
            if idle:
                return round(time.monotonic() - t0, 1)
            time.sleep(2.0)
        return None

    def stop(self) -> None:
        """Kill Sippy by PID (its SIGTERM handler waits for calls to end), then reap the timeout wrapper."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            stop_process(self.proc, 5)
        self.ctl.unlink(missing_ok=True)

    def log_tail(self, n: int = 2000) -> str:
        path = self.work / "sippy.out"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""


@contextlib.contextmanager
def sippy_for(load: Load, *, variant: str = "radius", max_s: int = 900) -> Iterator[SippyB2bua]:
    """Sippy in front of ``load``'s far end, with the load's target pointed at it for the duration."""
    sippy = SippyB2bua(load.work / "sippy", load.sip_port + PORT_OFFSET, load.far_port, variant=variant,
                       max_s=max_s).start()
    saved = load.target
    load.target = f"127.0.0.1:{sippy.sip_port}"
    try:
        yield sippy
    finally:
        load.target = saved
        sippy.stop()


def cpu_busy() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per CPU from /proc/stat; busy is user + nice + system + steal, leaving out irq and
    softirq (the kernel's packet work for Sippy's sockets, which is not in Sippy's own CPU time)."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name != "cpu":
            v = [int(x) for x in vals[:8]]
            out[name] = (v[0] + v[1] + v[2] + v[7], sum(v))
    return out


def busy_pct(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Busy % of each CPU between two cpu_busy() samples, to flag windows shared with other work on this box
    (``cpu0_shared``: CPU 0 busier than Sippy alone explains). Tick-sampled, so it reads low for bursty light
    load: a flag, not a measurement."""
    return {k: round(100 * (after[k][0] - before[k][0]) / max(1, after[k][1] - before[k][1]), 1) for k in after}


@contextlib.contextmanager
def tools(load: Load, far: subprocess.Popen[bytes]) -> Iterator[SipCapture]:
    """A capture of the next trunk SIPp's port; far end and tcpdump are stopped even if the step fails."""
    cap = None
    try:
        cap = SipCapture(load.work, load.next_uac_port())
        yield cap
    finally:
        stop_process(far, 5)
        if cap is not None and cap.proc.poll() is None:
            stop_process(cap.proc, 5)


def wait_or_stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a SIPp run; one that overstays its bound is stopped rather than left running."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc, 5)


def stop_capture(cap: SipCapture) -> Path:
    """SipCapture.stop after tcpdump's 1 s packet-buffer timeout: interrupted sooner, tcpdump drops the last
    block unwritten (the last ~0.5-1 s of calls), so the BYE cross-check below would come up short."""
    time.sleep(1.2)
    return cap.stop()


def dialog_checks(path: Path, uac_port: int) -> dict[str, int]:
    """From the trunk SIPp's capture: calls whose BYE got its 200 OK, proof that the in-dialog workaround works
    end to end (SIPp could take a retransmitted 200 to the INVITE for the BYE's answer and count the call as
    successful), and provisional responses that arrived after the call's 200 (the scenario ignores them)."""
    late = 0
    answered: set[bytes] = set()
    byes: set[bytes] = set()
    for pkt in pcap.read(path):
        data = pkt.payload
        if pkt.dport != uac_port or not data.startswith(b"SIP/2.0 "):
            continue
        cseq = next((ln for ln in data.split(b"\r\n") if ln[:5].lower() == b"cseq:"), b"")
        if cseq.endswith(b" BYE"):
            if data.startswith(b"SIP/2.0 200"):
                byes.add(_call_id(data))
        elif cseq.endswith(b" INVITE"):
            if data.startswith(b"SIP/2.0 200"):
                answered.add(_call_id(data))
            elif data.startswith(b"SIP/2.0 1"):
                late += _call_id(data) in answered
    return {"byes_answered": len(byes), "late_provisionals": late}


def cps_ramp_sippy(load: Load, rates: list[int], step_s: int, *, variant: str = "radius") -> list[dict[str, Any]]:
    """perf.bench.cps_ramp with Sippy in place of our B2BUA: same steps and fields; stops at the first failed
    call or retransmission (the rule perf.bench documents)."""
    steps: list[dict[str, Any]] = []
    with sippy_for(load, variant=variant, max_s=len(rates) * (step_s * 4 + 90) + 60) as sippy:
        for rate in rates:
            calls = rate * step_s
            far = load.far(UAS_SCENARIO, calls)
            time.sleep(0.3)
            with tools(load, far) as cap:
                c0, t0, b0 = sippy.cpu_seconds(), time.monotonic(), cpu_busy()
                uac, stat = load.trunk(UAC_SCENARIO, rate=rate, calls=calls, hold_ms=1000, limit=rate * 4)
                wait_or_stop(uac, step_s * 4 + 30)
                c1, t1, b1 = sippy.cpu_seconds(), time.monotonic(), cpu_busy()
                stop_process(far, 5)
                path = stop_capture(cap)
            st = final_stats(stat)
            rt = setup_times_ms(path, load.uac_port)
            step: dict[str, Any] = {
                "rate": rate, **st, "offered": calls, "sippy_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1),
                "cpu_ms_per_call": round(1000 * (c1 - c0) / max(1, st["successful"]), 3),
                "setup_p50_ms": round(pct(rt, 50), 3), "setup_p99_ms": round(pct(rt, 99), 3),
                **dialog_checks(path, load.uac_port), "cpu_busy_pct": busy_pct(b0, b1),
            "cpu0_shared": busy_pct(b0, b1).get(f"cpu{B2BUA_CPU}", 0.0) > 100 * (c1 - c0) / (t1 - t0) + 10}
            step["cpu0_shared"] = step["cpu_busy_pct"].get(f"cpu{B2BUA_CPU}", 0.0) > step["sippy_cpu_pct"] + 10
            steps.append(step)
            # perf.bench's docstring rule (its code ignores retransmissions): with them, setup p50 is seconds
            overloaded = bool(st["failed"] or st["successful"] < calls or st["retransmissions"])
            if not overloaded and rate != rates[-1]:  # after the last step Sippy is simply killed
                step["clear_s"] = sippy.settle(45)
            print("sippy cps", step, file=sys.stderr, flush=True)
            if overloaded:
                break
    return steps


def setup_latency_sippy(load: Load, rate: int, seconds: int, *, variant: str = "radius") -> dict[str, Any]:
    """perf.bench.setup_latency with Sippy in place of our B2BUA (INVITE sent -> 200 OK at the trunk SIPp)."""
    calls = rate * seconds
    with sippy_for(load, variant=variant, max_s=seconds * 3 + 120) as sippy:
        far = load.far(UAS_SCENARIO, calls)
        time.sleep(0.3)
        with tools(load, far) as cap:
            c0, t0, b0 = sippy.cpu_seconds(), time.monotonic(), cpu_busy()
            uac, stat = load.trunk(UAC_SCENARIO, rate=rate, calls=calls, hold_ms=200, limit=rate * 2)
            wait_or_stop(uac, seconds * 3 + 30)
            c1, t1, b1 = sippy.cpu_seconds(), time.monotonic(), cpu_busy()
            stop_process(far, 5)
            path = stop_capture(cap)
    rt = setup_times_ms(path, load.uac_port)
    cpu, busy = round(100 * (c1 - c0) / (t1 - t0), 1), busy_pct(b0, b1)
    return {"rate": rate, "calls": calls, **final_stats(stat), "measured": len(rt), "p50_ms": round(pct(rt, 50), 3),
            "p99_ms": round(pct(rt, 99), 3), "mean_ms": round(sum(rt) / len(rt), 3) if rt else None,
            "sippy_cpu_pct": cpu, **dialog_checks(path, load.uac_port), "cpu_busy_pct": busy,
            "cpu0_shared": busy.get(f"cpu{B2BUA_CPU}", 0.0) > cpu + 10}


def describe(load: Load, variant: str = "radius") -> dict[str, Any]:
    """What was measured, for the results file: version and the exact command line."""
    probe = SippyB2bua(load.work / "sippy", load.sip_port + PORT_OFFSET, load.far_port, variant=variant, max_s=0)
    command = " ".join(probe.cmd).replace(" -k 5 0 ", " -k 5 <run bound, s> ")
    return {"package": "sippy", "version": sippy_version(), "variant": variant, "env": {"SIPLOG_BEND": "none"},
            "command": command, "scenarios": [UAC_SCENARIO, UAS_SCENARIO]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="50,100,150", help="CPS steps, comma-separated")
    ap.add_argument("--step", type=int, default=5, help="seconds per CPS step")
    ap.add_argument("--latency-rate", type=int, default=50, help="CPS for the setup-latency run (0: skip it)")
    ap.add_argument("--latency-s", type=int, default=10, help="seconds of the setup-latency run")
    ap.add_argument("--variant", choices=("radius", "simple"), default="radius")
    ap.add_argument("--port", type=int, default=16010, help="SIP port block base (Sippy listens at +5)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (SIPp logs, captures, Sippy output)")
    args = ap.parse_args()
    if sippy_version() is None:
        print("sippy is not installed: .venv/bin/pip install -e '.[perf]'", file=sys.stderr)
        return 1
    rates = [int(r) for r in args.rates.split(",") if r.strip() and int(r) > 0]
    out: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "step_s": args.step}
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = Path(args.keep)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sippy-bench-")))
        load = Load(work, "", args.port + 10000, args.port)
        out["sippy"] = describe(load, args.variant)
        if args.latency_rate:
            out["setup_latency"] = setup_latency_sippy(load, args.latency_rate, args.latency_s, variant=args.variant)
            print("sippy setup", out["setup_latency"], file=sys.stderr, flush=True)
        if rates:
            out["cps_ramp"] = ramp = cps_ramp_sippy(load, rates, args.step, variant=args.variant)
            clean = [s for s in ramp if s["successful"] == s["offered"] and not (s["failed"] or s["retransmissions"])]
            out["cps_last_clean_step"] = clean[-1]["rate"] if clean else 0
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

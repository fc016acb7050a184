"""Overload benchmark: offer twice the configured call rate and check that admission control holds.

The B2BUA runs with ``sip.max_call_rate`` = CAPACITY; SIPp offers 2 x CAPACITY calls a second with
``uac_overload.xml`` (a 503 is an expected outcome, anything else that goes wrong fails the call). From a capture
of the trunk SIPp's signalling: admitted calls (INVITE -> 200) and their set-up p50/p99, refusals (503, and
whether each carried Retry-After), and the B2BUA's CPU. The goal: zero failed calls, admitted set-up p99 below
100 ms, the excess refused.

    .venv/bin/python -m perf.overload --capacity 150 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from b2bua.media import pcap
from perf.bench import (
    Load,
    SipCapture,
    _call_id,
    _r,
    cpu_seconds,
    final_stats,
    pct,
    settle,
    setup_times_ms,
    start_b2bua,
)
from tests.support.procs import stop_process


def overload(work: Path, capacity: int, seconds: int, hold_ms: int = 1000) -> dict[str, Any]:
    b = start_b2bua(work / "overload", max_call_rate=capacity)
    load = Load(work, f"127.0.0.1:{b.sip_port}", b.far_port, b.sip_port)
    offered_rate = 2 * capacity
    calls = offered_rate * seconds
    try:
        assert b.proc is not None
        far = load.far("uas_cps.xml", calls)
        time.sleep(0.3)
        cap = SipCapture(work, load.next_uac_port())
        c0, t0 = cpu_seconds(b.proc.pid), time.monotonic()
        uac, stat = load.trunk("uac_overload.xml", rate=offered_rate, calls=calls, hold_ms=hold_ms,
                               limit=offered_rate * 4)
        uac.wait(seconds * 4 + 30)
        c1, t1 = cpu_seconds(b.proc.pid), time.monotonic()
        stop_process(far, 5)
        path = cap.stop()
        refused = with_retry_after = 0
        seen: set[bytes] = set()
        for p in pcap.read(path):
            if p.dport == load.uac_port and p.payload.startswith(b"SIP/2.0 503"):
                cid = _call_id(p.payload)
                if cid in seen:  # a retransmitted 503
                    continue
                seen.add(cid)
                refused += 1
                with_retry_after += b"\r\nRetry-After:" in p.payload
        admitted = setup_times_ms(path, load.uac_port)
        st = final_stats(stat)
        return {"capacity_cps": capacity, "offered_cps": offered_rate, "offered": calls, **st,
                "admitted": len(admitted), "refused_503": refused, "refused_with_retry_after": with_retry_after,
                "admitted_cps": _r(len(admitted) / seconds), "b2bua_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1),
                "admitted_setup_p50_ms": _r(pct(admitted, 50)), "admitted_setup_p99_ms": _r(pct(admitted, 99)),
                "rejected_metric": b.metric("b2bua_invites_rejected_total", code="503", reason="over-rate"),
                "clear_s": settle(b, 60)}
    finally:
        b.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--capacity", type=int, default=150)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="b2bua-overload-") as tmp:
        print(json.dumps(overload(Path(tmp), args.capacity, args.seconds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

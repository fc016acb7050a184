"""Flood benchmark: what INVITEs from an untrusted source cost the B2BUA's memory (issue 16).

The B2BUA (default test config: only 127.0.0.2 is a trunk's source) first bridges one trusted call, so its pools
and media are warm as in service; then 127.0.0.9 sends COUNT INVITEs with SDP over SECONDS (``tests.support.
flood``: each final response ACKed). RSS is read before, right after, and after SETTLE seconds; a trusted call
must still work afterwards. Without patch 0009 every INVITE made a pjsua call (dialog, invite session, media
transport) before screening refused it; with it the source filter answers 403 (or drops it) statelessly.

    .venv/bin/python -m perf.flood --mode reject --runs 3 --out perf/results/flood-<build>-<mode>.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.flood import flood, rss_mb
from tests.support.procs import B2bua, uac, uas


def _trusted_call(b: B2bua, name: str) -> bool:
    far = uas(b, "uas_answer.xml", name=f"uas-{name}")
    r = uac(b, "uac_call.xml", hold_ms=300, name=f"uac-{name}").start().wait(20)
    return r.rc == 0 and far.wait(10).rc == 0


def run(work: Path, mode: str, count: int, seconds: float, settle_s: float) -> dict[str, Any]:
    b = B2bua(work, block=92, env={"B2BUA_SIP__UNTRUSTED": mode})
    b.start()
    try:
        assert b.proc is not None
        pid = b.proc.pid
        warm = _trusted_call(b, "warm")
        time.sleep(1.0)
        before = rss_mb(pid)
        result = flood(b.sip_port, "127.0.0.9", count, seconds)
        right_after = rss_mb(pid)
        time.sleep(settle_s)
        settled = rss_mb(pid)
        after_ok = _trusted_call(b, "after")
        return {
            "build": b.health()["limits"]["build"], "mode": mode, "source": "127.0.0.9",
            "invites": result.sent, "seconds": round(result.seconds, 2),
            "finals": {str(k): v for k, v in sorted(result.finals.items())}, "datagrams_back": result.datagrams,
            "rss_before_mb": round(before, 1), "rss_right_after_mb": round(right_after, 1),
            "rss_settled_mb": round(settled, 1), "settle_s": settle_s,
            "growth_right_after_mb": round(right_after - before, 1), "growth_settled_mb": round(settled - before, 1),
            "trusted_call_before": warm, "trusted_call_after": after_ok,
            "untrusted_metric": {a: b.metric("b2bua_untrusted_requests_total", action=a) for a in ("rejected",
                                                                                                   "dropped")},
            "screening_refused_metric": b.metric("b2bua_invites_rejected_total", code="403",
                                                 reason="untrusted-source"),
        }
    finally:
        b.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", choices=["reject", "drop"], default="reject")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--settle", type=float, default=40.0, help="seconds after the flood before the last RSS")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    a = ap.parse_args()
    runs = []
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="flood-") as tmp:
            runs.append(run(Path(tmp), a.mode, a.count, a.seconds, a.settle))
    res = {"runs": runs, **{f"median_{k}": statistics.median(r[k] for r in runs)
                             for k in ("growth_right_after_mb", "growth_settled_mb")}}
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where a running B2BUA's pjsip memory is: every pool pjsua's caching pool has handed out, by kind.

pjproject allocates nearly everything per call from pools (SIP dialogs, invite sessions and their SDP, kept
requests, media streams and transports, conference ports), so RSS per call is the sum of those pools' capacity.
This reads them from outside, without stopping the process: the address of ``pjsua_var`` (its first member is
the caching pool) comes from the pjsua2 module's symbol table, the pools from ``/proc/PID/mem``. Needs the same
user as the B2BUA (or root) and a 64-bit Linux build of pjproject 2.x.

``python -m perf.pool_census PID [--calls N]`` prints a table (kB per kind, and per call when N is given).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import struct
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# struct pj_caching_pool (64-bit): pj_pool_factory (policy: 4 words; 5 function pointers) = 72 bytes, then
# capacity, max_capacity, used_count, used_size, peak_used_size, free_list[16] (16-byte list heads), used_list.
USED_COUNT_OFF = 88
USED_LIST_OFF = 112 + 16 * 16
# struct pj_pool_t: prev, next, obj_name[32], factory, factory_data, capacity, ...
POOL_NAME_OFF, POOL_NAME_LEN, POOL_CAPACITY_OFF = 16, 32, 64
_ADDRESSY = re.compile(r"(0x)?[0-9a-f]{6,}|\d+")


@dataclass(frozen=True)
class Kind:
    name: str
    pools: int
    capacity: int


def _module_path() -> Path:
    spec = importlib.util.find_spec("_pjsua2")  # located, not loaded
    if spec is None or spec.origin is None:
        raise LookupError("no _pjsua2 module on this Python's path")
    return Path(spec.origin)


def _symbol_offset(module: Path, symbol: str) -> int:
    out = subprocess.run(["nm", str(module)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16)
    raise LookupError(f"{module}: no symbol {symbol} (a stripped build?)")


def _load_base(pid: int, module: Path) -> int:
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and Path(fields[5]).name == module.name and int(fields[2], 16) == 0:
            return int(fields[0].split("-")[0], 16)
    raise LookupError(f"process {pid} has not loaded {module.name}")


def kind_of(pool_name: str) -> str:
    """Pool names carry addresses and numbers ("dlg0x55d1...", "sip:123@10.0.0.1:5060"): fold them."""
    return _ADDRESSY.sub("#", pool_name)


def census(pid: int, module: Path | None = None) -> list[Kind]:
    """Every pool in use, grouped by kind, largest first. The walk is bounded: the process keeps running and
    its list may change under us, which at worst makes the figures a little stale, never loops."""
    module = module or _module_path()
    head = _load_base(pid, module) + _symbol_offset(module, "pjsua_var")
    caps: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    with open(f"/proc/{pid}/mem", "rb") as mem:
        def read(addr: int, n: int) -> bytes:
            mem.seek(addr)
            return mem.read(n)

        expected = struct.unpack("<Q", read(head + USED_COUNT_OFF, 8))[0]
        used_list = head + USED_LIST_OFF
        node = struct.unpack("<Q", read(used_list + 8, 8))[0]
        for _ in range(expected + 1000):
            if node == used_list:
                break
            raw = read(node, POOL_CAPACITY_OFF + 8)
            name = raw[POOL_NAME_OFF:POOL_NAME_OFF + POOL_NAME_LEN].split(b"\0")[0].decode(errors="replace")
            kind = kind_of(name)
            caps[kind] += struct.unpack("<Q", raw[POOL_CAPACITY_OFF:POOL_CAPACITY_OFF + 8])[0]
            counts[kind] += 1
            node = struct.unpack("<Q", raw[8:16])[0]
    return [Kind(k, counts[k], c) for k, c in caps.most_common()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pid", type=int)
    ap.add_argument("--calls", type=int, default=0, help="bridged calls up now: also print kB per call")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    kinds = census(args.pid)
    total = sum(k.capacity for k in kinds)
    print(f"{sum(k.pools for k in kinds)} pools, {total / 1024:.0f} kB")
    for k in kinds[: args.top]:
        per_call = f"  {k.capacity / 1024 / args.calls:7.1f} kB/call" if args.calls else ""
        print(f"{k.name[:28]:28s} {k.pools:6d} pools {k.capacity / 1024:9.0f} kB{per_call}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Cost of the local fleet per host: wall time of ``up`` (with a release running) and ``down``, and the memory
of the hosts' processes (PSS, so shared pages count once), for several fleet sizes.

Holds /tmp/lockstep-fleet.lock while a fleet exists (one local fleet per machine). Prints figures; asserts nothing.
Usage: .venv/bin/python bench/fleet_bench.py [--hosts 8 32 64 128] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[8, 32, 64, 128])
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    sys.path.insert(0, REPO)
    from lockstep_fleet import Fleet, fleet_lock

    rows = []
    with fleet_lock():
        fleet = Fleet(REPO)
        fleet.down()
        try:
            for n in args.hosts:
                ups, downs, mem = [], [], []
                for _ in range(args.runs):
                    start = time.monotonic()
                    fleet.up(hosts=n, version="1.0.0")
                    ups.append(time.monotonic() - start)
                    pids = [p for name in fleet.hosts for p in fleet.host_pids(name)]
                    mem.append(sum(pss_kib(p) for p in pids) / 1024)
                    start = time.monotonic()
                    fleet.down()
                    downs.append(time.monotonic() - start)
                row = (n, min(ups), statistics.median(ups), min(downs), statistics.median(mem), len(pids))
                rows.append(row)
                print("hosts=%d up min %.2fs median %.2fs down %.2fs hosts' PSS %.0f MiB (%d processes)"
                      % (n, row[1], row[2], row[3], row[4], row[5]), flush=True)
        finally:
            fleet.down()
    print("\n| hosts | `up --version 1.0.0` min / median | per host | `down` | hosts' memory (PSS) | per host |")
    print("|---|---|---|---|---|---|")
    for n, up_min, up_med, down, mib, _ in rows:
        print("| %d | %.2f / %.2f s | %.0f ms | %.2f s | %.0f MiB | %.1f MiB |"
              % (n, up_min, up_med, 1000 * up_min / n, down, mib, mib / n))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Seconds from a fault to "HAProxy sends that host nothing", with the guard (extensions/eda, a real
``ansible-rulebook`` process, as ``make guard`` starts it) polling every 1 and 2 s, on 4 real local hosts.

The fault is the one the guard exists for: on a fleet uniform on 2.1.0, h2's ``current`` is switched back to
releases/1.0.0 and its service restarted, outside any release. The clock starts when h2's new process first answers
(probed every 10 ms) and stops when HAProxy's own ``show stat`` (read every 5 ms) reports h2 in MAINT with no current
session. Also printed: how long h2 served 1.0.0 before that, counted from the swap command. Target: under 5 s.

Holds /tmp/lockstep-fleet.lock while the fleet is up. Usage: .venv/bin/python bench/guard_bench.py [--runs 2]
[--intervals 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "collections"))

from guard_helpers import GuardProcess, sends_nothing, swap_back  # noqa: E402 (after the sys.path lines above)
from operator_helpers import fleet_on_2_1_0  # noqa: E402 (same reason)

from lockstep_fleet import Fleet, fleet_lock  # noqa: E402 (after the sys.path lines above)


def version_of(url):
    try:
        with urllib.request.urlopen(url + "/version", timeout=0.5) as resp:
            return json.loads(resp.read()).get("version")
    except (OSError, ValueError):
        return None


def one_run(fleet, interval):
    fleet_on_2_1_0(fleet)
    with tempfile.TemporaryDirectory() as tmp, GuardProcess(Path(tmp), interval=interval) as guard:
        guard.wait_for("lockstep guard: watching 4 hosts")
        time.sleep(interval * 1.5)  # a few polls of the healthy fleet first
        swapped = time.monotonic()
        swap_back(fleet, "h2")
        while version_of("http://127.0.0.12:8080") != "1.0.0":
            if time.monotonic() - swapped > 30:
                sys.exit("h2 never served 1.0.0")
            time.sleep(0.01)
        fault = time.monotonic()
        while not sends_nothing(fleet, "h2"):
            if time.monotonic() - fault > 60:
                sys.exit("the guard did not take h2 out within 60 s:\n%s" % guard.out[-4000:])
            time.sleep(0.005)
        done = time.monotonic()
        return done - fault, done - swapped


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--intervals", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("ANSIBLE_CONFIG", os.path.join(REPO, "ansible.cfg"))
    results = {}
    with fleet_lock():
        fleet = Fleet(REPO)
        fleet.down()
        try:
            for interval in args.intervals:
                for _ in range(args.runs):
                    results.setdefault(interval, []).append(one_run(fleet, interval))
                    fleet.down()
        finally:
            fleet.down()
    print("poll interval  fault -> HAProxy sends h2 nothing (runs; min / median / max)   from the swap command")
    for interval, runs in results.items():
        lb = [r[0] for r in runs]
        total = [r[1] for r in runs]
        print("%5.1f s        %s; %.2f / %.2f / %.2f s   %s" % (
            interval, ", ".join("%.2f" % x for x in lb), min(lb), statistics.median(lb), max(lb),
            ", ".join("%.2f" % x for x in total)))
    worst = max(r[0] for runs in results.values() for r in runs)
    print("target under 5 s: %s (worst %.2f s)" % ("met" if worst < 5 else "NOT MET", worst))


if __name__ == "__main__":
    main()

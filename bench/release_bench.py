#!/usr/bin/env python3
"""Wall time of a clean lockstep release (watch window 0) against a naive playbook doing the same copy/switch/
restart with the same canary and waves and no safeguard, side by side on the same fresh fleet, for 8 and 32 hosts.

Prints figures and ratios; asserts nothing (performance targets live here, never in timed tests).
Usage: .venv/bin/python bench/release_bench.py [--hosts 8 32] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")


def timed_playbook(playbook, version, extra, cp_dir):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_SSH_CONTROL_PATH_DIR=cp_dir,
               PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", os.path.join(REPO, "inventory", "local"), playbook,
           "-e", json.dumps(dict(extra, lockstep_version=version))]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("%s failed:\n%s" % (playbook, proc.stdout[-3000:]))
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    sys.path.insert(0, REPO)
    from lockstep_fleet import Fleet

    fleet = Fleet(REPO)
    rows = []
    try:
        for n in args.hosts:
            best = {"lockstep": None, "naive": None}
            for _ in range(args.runs):
                for name, playbook, extra in (
                        ("lockstep", os.path.join(REPO, "playbooks", "release.yml"), {"lockstep_watch_seconds": 0}),
                        ("naive", os.path.join(REPO, "bench", "naive.yml"), {})):
                    fleet.up(hosts=n, version="1.0.0")
                    with tempfile.TemporaryDirectory() as cp:
                        t = timed_playbook(playbook, "2.1.0", extra, cp)
                    best[name] = t if best[name] is None else min(best[name], t)
            rows.append((n, best["lockstep"], best["naive"]))
            print("hosts=%d lockstep=%.1fs naive=%.1fs ratio=%.2f" % (n, best["lockstep"], best["naive"],
                                                                       best["lockstep"] / best["naive"]), flush=True)
    finally:
        fleet.down()
    print("\n| hosts | lockstep (every check) | naive playbook | ratio |\n|---|---|---|---|")
    for n, lk, nv in rows:
        print("| %d | %.1f s | %.1f s | %.2f |" % (n, lk, nv, lk / nv))


if __name__ == "__main__":
    main()

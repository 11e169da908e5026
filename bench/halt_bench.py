#!/usr/bin/env python3
"""Seconds from the start of ``playbooks/halt.yml`` until HAProxy sends nothing to any host (every server of the
backend in MAINT with no current session, read from HAProxy's own ``show stat`` every 5 ms), and until the whole
kill switch is done (every service stopped and confirmed), on 8 and 32 real local hosts.

Prints figures; asserts nothing but that the halt succeeded. Holds /tmp/lockstep-fleet.lock while the fleet is up.
Usage: .venv/bin/python bench/halt_bench.py [--hosts 8 32] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")


def backend_empty(fleet):
    rows = csv.DictReader(io.StringIO(fleet.haproxy("show stat").lstrip("# ")))
    servers = [r for r in rows if r["pxname"] == "order_router" and r["svname"] not in ("FRONTEND", "BACKEND")]
    return bool(servers) and all(r["status"] == "MAINT" and int(r["scur"] or 0) == 0 for r in servers)


def one_halt(fleet, n):
    fleet.up(hosts=n, version="1.0.0")
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(tmp, "cp"), LOCKSTEP_LEDGER_DIR=os.path.join(tmp, "l"),
                   PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
        cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", os.path.join(REPO, "inventory", "local"),
               os.path.join(REPO, "playbooks", "halt.yml")]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lb = None
        while lb is None and proc.poll() is None:
            if backend_empty(fleet):
                lb = time.monotonic() - start
            else:
                time.sleep(0.005)
        out = proc.communicate()[0]
        done = time.monotonic() - start
        if proc.returncode != 0:
            sys.exit("halt.yml failed:\n%s" % out[-3000:])
        if lb is None and backend_empty(fleet):
            lb = done
        return lb, done


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, REPO)
    from lockstep_fleet import Fleet, fleet_lock

    fleet = Fleet(REPO)
    with fleet_lock():
        try:
            for n in args.hosts:
                runs = [one_halt(fleet, n) for _ in range(args.runs)]
                lbs, dones = [r[0] for r in runs], [r[1] for r in runs]
                print("hosts=%-3d HAProxy sends nothing after min %.2f s, median %.2f s; halt.yml done (every service "
                      "stopped and confirmed) after min %.2f s, median %.2f s" % (
                          n, min(lbs), statistics.median(lbs), min(dones), statistics.median(dones)), flush=True)
        finally:
            fleet.down()


if __name__ == "__main__":
    main()

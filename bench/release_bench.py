#!/usr/bin/env python3
"""A clean lockstep release (watch window 0) against a naive playbook doing the same copy/switch/restart with the
same canary and waves and no safeguard, side by side on a fresh fleet each, for several fleet sizes.

Per playbook run: wall time; controller CPU seconds (user+sys of the ansible-playbook process tree, from
``getrusage(RUSAGE_CHILDREN)`` deltas: every process it waited for, ssh clients included, but not a detached
ControlPersist master); the hosts' CPU seconds (utime+stime+cutime+cstime of every process in the hosts' PID
namespaces, before/after: what the hosts' sshd, Python modules and services burned, including the processes that
exited, whose time their parent collected); and the machine's busy CPU seconds (/proc/stat), which holds the rest.
Several runs give min and median. Prints figures, ratios and growth with N; asserts nothing (performance targets
live here, never in timed tests). Holds /tmp/lockstep-fleet.lock for as long as a fleet exists.

Usage: .venv/bin/python bench/release_bench.py [--hosts 8 32 100] [--runs 3] [--runs-large 1] [-e JSON]
(``--runs-large`` applies to 100 hosts and more: such a run holds the only fleet of the machine for minutes.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
TICK = os.sysconf("SC_CLK_TCK")
LARGE = 100


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def machine_busy():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # everything but idle and iowait


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / TICK  # utime stime cutime cstime


def hosts_cpu(fleet):
    return sum(proc_cpu(pid) for name in fleet.hosts for pid in fleet.host_pids(name))


def run_playbook(fleet, playbook, extra, cp_dir, extra_env):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_SSH_CONTROL_PATH_DIR=cp_dir,
               PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""), **extra_env)
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", os.path.join(REPO, "inventory", "local"), playbook,
           "-e", json.dumps(extra)]
    h0, c0, m0, t0 = hosts_cpu(fleet), children_cpu(), machine_busy(), time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    c1, m1, h1 = children_cpu(), machine_busy(), hosts_cpu(fleet)
    if proc.returncode != 0:
        sys.exit("%s failed:\n%s" % (playbook, proc.stdout[-3000:]))
    return {"wall": wall, "ctl": c1 - c0, "hosts": h1 - h0, "machine": m1 - m0}


def fmt(values):
    return "%.1f / %.1f" % (min(values), statistics.median(values))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="+", default=[8, 32, 100])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--runs-large", type=int, default=1, help="runs for %d hosts and more" % LARGE)
    ap.add_argument("-e", dest="extra", default="{}", help="extra vars (JSON) for lockstep's run")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for both playbooks (ANSIBLE_FORKS=...)")
    ap.add_argument("--only", choices=["lockstep", "naive"], help="run one side only (option measurements)")
    args = ap.parse_args()
    extra_env = dict(e.split("=", 1) for e in args.env)
    sys.path.insert(0, REPO)
    from lockstep_fleet import Fleet, fleet_lock

    sides = [("lockstep", os.path.join(REPO, "playbooks", "release.yml"),
              dict({"lockstep_watch_seconds": 0}, **json.loads(args.extra))),
             ("naive", os.path.join(REPO, "bench", "naive.yml"), {})]
    sides = [s for s in sides if args.only in (None, s[0])]
    results = {}
    with fleet_lock():
        fleet = Fleet(REPO)
        try:
            for n in args.hosts:
                for run in range(args.runs_large if n >= LARGE else args.runs):
                    for name, playbook, extra in sides:
                        fleet.up(hosts=n, version="1.0.0")
                        with tempfile.TemporaryDirectory() as cp:
                            r = run_playbook(fleet, playbook, dict(extra, lockstep_version="2.1.0"), cp, extra_env)
                        results.setdefault((n, name), []).append(r)
                        print("hosts=%d run=%d %-8s wall %.1fs controller CPU %.1fs hosts CPU %.1fs machine %.1fs"
                              % (n, run + 1, name, r["wall"], r["ctl"], r["hosts"], r["machine"]), flush=True)
        finally:
            fleet.down()

    print("\nmin / median over runs; CPU in seconds (2 cores: the machine has 2 CPU-seconds per wall second)\n")
    print("| hosts | playbook | runs | wall s | controller CPU s | per host | hosts' CPU s | per host "
          "| machine CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (n, name), rs in results.items():
        col = {k: [r[k] for r in rs] for k in rs[0]}
        print("| %d | %s | %d | %s | %s | %.2f | %s | %.2f | %s |" % (
            n, name, len(rs), fmt(col["wall"]), fmt(col["ctl"]), statistics.median(col["ctl"]) / n,
            fmt(col["hosts"]), statistics.median(col["hosts"]) / n, fmt(col["machine"])))
    if not args.only:
        print("\n| hosts | wall ratio lockstep/naive (median) | controller CPU ratio | hosts' CPU ratio |")
        print("|---|---|---|---|")
        for n in args.hosts:
            lk, nv = results[(n, "lockstep")], results[(n, "naive")]

            def ratio(key, lk=lk, nv=nv):
                return statistics.median([r[key] for r in lk]) / statistics.median([r[key] for r in nv])
            print("| %d | %.2f | %.2f | %.2f |" % (n, ratio("wall"), ratio("ctl"), ratio("hosts")))
    sizes = sorted(args.hosts)
    if len(sizes) > 1:
        print("\ngrowth with N (median, per host; flat = linear):")
        for name, _, _ in sides:
            for key in ("wall", "ctl", "hosts"):
                per = ["%d: %.3f" % (n, statistics.median([r[key] for r in results[(n, name)]]) / n) for n in sizes]
                print("  %-8s %-5s per host  %s" % (name, key, "  ".join(per)))


if __name__ == "__main__":
    main()

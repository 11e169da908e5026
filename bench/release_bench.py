#!/usr/bin/env python3
"""A clean lockstep release (watch window 0) against a naive playbook doing the same copy/switch/restart with the
same canary and waves and no safeguard, side by side on a fresh fleet each, for several fleet sizes.

Per playbook run: wall time; controller CPU seconds (user+sys of the ansible-playbook process tree, from
``getrusage(RUSAGE_CHILDREN)`` deltas: every process it waited for, ssh clients included, but not a detached
ControlPersist master); the hosts' CPU seconds (utime+stime+cutime+cstime of every process in the hosts' PID
namespaces, before/after: what the hosts' sshd, Python modules and services burned, including the processes that
exited, whose time their parent collected); and the machine's busy CPU seconds (/proc/stat), which holds the rest.
Several runs give min and median. Prints figures, ratios and growth with N; asserts nothing (performance targets
live here, never in timed tests). Host results per host (what the controller forks a worker for: every task result
of a host, skipped ones included) are counted from the play recap, so both playbooks run with Ansible's default stdout
callback. At 8 and 32 hosts lockstep also runs with the rollback rehearsal off (``norehearse``): the rehearsal's own
cost, one extra switch pair on the canary (issue 20). Every size also runs a halted release (``halted``): a smoke
command that fails once every wave is out, so the whole fleet goes back wave by wave and is proven back (status
``rolled_back``, exit 2), the most a release can cost. Holds /tmp/lockstep-fleet.lock for as long as a fleet exists.

Usage: .venv/bin/python bench/release_bench.py [--hosts 8 32 100] [--runs 3] [--runs-large 1] [-e JSON]
           [--profile default mitogen forks64 ...] [--waves]
(``--runs-large`` applies to 100 hosts and more: such a run holds the only fleet of the machine for minutes.)

Profiles (``--profile``, or ``LOCKSTEP_BENCH_PROFILES="default mitogen"``), each run for both playbooks and printed
side by side with its ratio to the default: ``default`` (ansible.cfg as it is), ``forksN`` (ANSIBLE_FORKS=N) and
``mitogen`` (the optional faster profile: mitogen's ``mitogen_linear`` strategy, installed on demand with pip into
its own directory outside the repository, ``$LOCKSTEP_MITOGEN_DIR`` or ~/.cache/lockstep/mitogen-VERSION, and put on
the ansible-playbook process's PYTHONPATH only; never a requirement of ``make test`` or ``make demo``).
``--waves`` adds lockstep with waves [1, 10%, 50%, 100%] (the issue's clean-release target: under 45 s at 100 hosts);
the naive playbook keeps its own waves (bench/naive.yml is the fixed baseline).
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
MITOGEN_VERSION = "0.3.54"  # the release measured with ansible-core 2.19.14 (docs/performance.md)
WAVES_TARGET = 45.0


def mitogen_env():
    """The optional mitogen profile's environment, installing mitogen into its own directory on first use."""
    target = os.environ.get("LOCKSTEP_MITOGEN_DIR") or os.path.expanduser(
        "~/.cache/lockstep/mitogen-%s" % MITOGEN_VERSION)
    if not os.path.isdir(os.path.join(target, "ansible_mitogen")):
        subprocess.run([os.path.join(VENV_BIN, "pip"), "install", "--quiet", "--target", target,
                        "mitogen==%s" % MITOGEN_VERSION], check=True)
    return {"PYTHONPATH": os.pathsep.join(p for p in (target, os.environ.get("PYTHONPATH")) if p),
            "ANSIBLE_STRATEGY_PLUGINS": os.path.join(target, "ansible_mitogen", "plugins", "strategy"),
            "ANSIBLE_STRATEGY": "mitogen_linear"}


def profile_env(name):
    if name == "default":
        return {}
    if name == "mitogen":
        return mitogen_env()
    if name.startswith("forks") and name[5:].isdigit():
        return {"ANSIBLE_FORKS": name[5:]}
    sys.exit("unknown profile %r (default, mitogen, forksN)" % name)


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


def host_results(out, hosts):
    """Results per host of the application group, from the play recap (ok + failed + skipped + unreachable)."""
    counts = []
    for line in out.splitlines():
        name, sep, rest = line.partition(" : ")
        if sep and name.strip() in hosts:
            fields = dict(kv.split("=") for kv in rest.split())
            counts.append(sum(int(fields.get(k, 0)) for k in ("ok", "failed", "skipped", "unreachable")))
    return statistics.mean(counts) if counts else float("nan")


def run_playbook(fleet, playbook, extra, cp_dir, extra_env, expect=(0, None)):
    """One run; ``expect``: the exit code it must end with and a line its output must hold."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_SSH_CONTROL_PATH_DIR=cp_dir,
               PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_STDOUT_CALLBACK="default",
               **extra_env)
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", os.path.join(REPO, "inventory", "local"), playbook,
           "-e", json.dumps(extra)]
    h0, c0, m0, t0 = hosts_cpu(fleet), children_cpu(), machine_busy(), time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    c1, m1, h1 = children_cpu(), machine_busy(), hosts_cpu(fleet)
    rc, said = expect
    if proc.returncode != rc or (said and said not in proc.stdout):
        sys.exit("%s ended %d, not %d%s:\n%s" % (playbook, proc.returncode, rc, " with %r" % said if said else "",
                                                 proc.stdout[-3000:]))
    return {"wall": wall, "ctl": c1 - c0, "hosts": h1 - h0, "machine": m1 - m0,
            "results": host_results(proc.stdout, fleet.hosts)}


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
    ap.add_argument("--profile", nargs="+", default=os.environ.get("LOCKSTEP_BENCH_PROFILES", "default").split(),
                    help="default, mitogen, forksN: each run for both playbooks, side by side")
    ap.add_argument("--waves", action="store_true", help="also lockstep with waves [1, 10%%, 50%%, 100%%]")
    args = ap.parse_args()
    extra_env = dict(e.split("=", 1) for e in args.env)
    profiles = {name: dict(extra_env, **profile_env(name)) for name in args.profile}
    sys.path.insert(0, REPO)
    from lockstep_fleet import Fleet, fleet_lock

    sides = [("lockstep", os.path.join(REPO, "playbooks", "release.yml"),
              dict({"lockstep_watch_seconds": 0}, **json.loads(args.extra))),
             ("naive", os.path.join(REPO, "bench", "naive.yml"), {})]
    sides = [s for s in sides if args.only in (None, s[0])]
    if args.only in (None, "lockstep"):
        sides.append(("norehearse", os.path.join(REPO, "playbooks", "release.yml"),
                      dict(sides[0][2], lockstep_rehearse=False,
                           lockstep_rehearse_reason="bench: the rehearsal's cost")))
    if args.only in (None, "lockstep"):
        sides.append(("halted", os.path.join(REPO, "playbooks", "release.yml"),
                      dict(sides[0][2], lockstep_smoke_commands=["false"])))
    if args.waves:
        sides.append(("waves", sides[0][1] if sides and sides[0][0] == "lockstep" else
                      os.path.join(REPO, "playbooks", "release.yml"),
                      dict({"lockstep_watch_seconds": 0, "lockstep_waves": ["10%", "50%", "100%"]},
                           **json.loads(args.extra))))
    results = {}
    with fleet_lock():
        fleet = Fleet(REPO)
        try:
            for n in args.hosts:
                for run in range(args.runs_large if n >= LARGE else args.runs):
                    for prof, env in profiles.items():
                        for name, playbook, extra in sides:
                            if name == "norehearse" and n > 32:
                                continue
                            fleet.up(hosts=n, version="1.0.0")
                            with tempfile.TemporaryDirectory() as cp:
                                r = run_playbook(fleet, playbook, dict(extra, lockstep_version="2.1.0"), cp, env,
                                                 (2, "status rolled_back") if name == "halted" else (0, None))
                            results.setdefault((n, prof, name), []).append(r)
                            print("hosts=%d run=%d %-8s %-10s wall %.1fs controller CPU %.1fs hosts CPU %.1fs "
                                  "machine %.1fs host results/host %.1f" % (
                                      n, run + 1, prof, name, r["wall"], r["ctl"], r["hosts"], r["machine"],
                                      r["results"]), flush=True)
        finally:
            fleet.down()

    def med(n, prof, name, key):
        return statistics.median([r[key] for r in results[(n, prof, name)]])

    print("\nmin / median over runs; CPU in seconds (2 cores: the machine has 2 CPU-seconds per wall second)\n")
    print("| hosts | profile | playbook | runs | wall s | controller CPU s | per host | hosts' CPU s | per host "
          "| machine CPU s | host results per host |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (n, prof, name), rs in results.items():
        col = {k: [r[k] for r in rs] for k in rs[0]}
        print("| %d | %s | %s | %d | %s | %s | %.2f | %s | %.2f | %s | %.1f |" % (
            n, prof, name, len(rs), fmt(col["wall"]), fmt(col["ctl"]), statistics.median(col["ctl"]) / n,
            fmt(col["hosts"]), statistics.median(col["hosts"]) / n, fmt(col["machine"]),
            statistics.median(col["results"])))
    names = [s[0] for s in sides]
    if "norehearse" in names:
        print("\n| hosts | profile | the rollback rehearsal's cost: wall with / without "
              "| controller CPU with / without |")
        print("|---|---|---|---|")
        for n in args.hosts:
            for prof in profiles:
                if (n, prof, "norehearse") in results:
                    print("| %d | %s | %.1f / %.1f s (%.2fx) | %.1f / %.1f s (%.2fx) |" % (n, prof, *(
                        x for k in ("wall", "ctl") for x in (
                            med(n, prof, "lockstep", k), med(n, prof, "norehearse", k),
                            med(n, prof, "lockstep", k) / med(n, prof, "norehearse", k)))))
    if "halted" in names and "lockstep" in names:
        print("\n| hosts | profile | a halted release, the whole fleet rolled back: wall | controller CPU "
              "| hosts' CPU | host results per host | wall and controller CPU vs a clean release |")
        print("|---|---|---|---|---|---|---|")
        for n in args.hosts:
            for prof in profiles:
                if (n, prof, "halted") in results:
                    print("| %d | %s | %.1f s | %.1f s | %.1f s | %.1f | %.2fx, %.2fx |" % (
                        n, prof, *(med(n, prof, "halted", k) for k in ("wall", "ctl", "hosts", "results")),
                        *(med(n, prof, "halted", k) / med(n, prof, "lockstep", k) for k in ("wall", "ctl"))))
    if "lockstep" in names and "naive" in names:
        print("\n| hosts | profile | wall ratio lockstep/naive (median) | controller CPU ratio | hosts' CPU ratio "
              "| targets (issue 19) |")
        print("|---|---|---|---|---|---|")
        for n in args.hosts:
            for prof in profiles:
                print("| %d | %s | %.2f | %.2f | %.2f | %s |" % (n, prof, *(
                    med(n, prof, "lockstep", k) / med(n, prof, "naive", k) for k in ("wall", "ctl", "hosts")),
                    "-" if n < 32 else "controller CPU <= 1.1" + (", wall <= 0.8" if n >= LARGE else "")))
        print("target: at most 8 host results per host at 32 hosts (lockstep: %s)" % ", ".join(
            "%d hosts: %.1f" % (n, statistics.median([r["results"] for r in results[(n, prof, "lockstep")]]))
            for n in args.hosts for prof in profiles if prof == "default" and (n, prof, "lockstep") in results))
    if "default" in profiles and len(profiles) > 1:
        print("\n| hosts | profile | playbook | wall vs default | controller CPU vs default |")
        print("|---|---|---|---|---|")
        for n in args.hosts:
            for prof in profiles:
                if prof != "default":
                    for name in names:
                        print("| %d | %s | %s | %.2f | %.2f |" % (n, prof, name, *(
                            med(n, prof, name, k) / med(n, "default", name, k) for k in ("wall", "ctl"))))
    if "waves" in names:
        for n in args.hosts:
            for prof in profiles:
                w = med(n, prof, "waves", "wall")
                print("\nwaves [1, 10%%, 50%%, 100%%], %d hosts, %s: %.1f s (target < %.0f s at 100 hosts: %s)" % (
                    n, prof, w, WAVES_TARGET, ("met" if w < WAVES_TARGET else "not met") if n >= LARGE else "-"))
    sizes = sorted(args.hosts)
    if len(sizes) > 1:
        print("\ngrowth with N (median, per host; flat = linear):")
        for prof in profiles:
            for name in names:
                if not all((n, prof, name) in results for n in sizes):
                    continue
                for key in ("wall", "ctl", "hosts"):
                    per = ["%d: %.3f" % (n, med(n, prof, name, key) / n) for n in sizes]
                    print("  %-8s %-8s %-5s per host  %s" % (prof, name, key, "  ".join(per)))

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What a rollback costs the clients: a release halted at the canary, in the middle wave and after the last wave,
under steady orders through HAProxy. For each: requests sent and failed during the whole run, the most servers out
of HAProxy at once (sampled every 50 ms) against the largest rollout wave, and the run's wall time.

Prints figures; asserts nothing (performance targets live here, never in timed tests). Holds the fleet lock.
Usage: .venv/bin/python bench/rollback_bench.py [--hosts 8] [--rate 40]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
WAVES = {"lockstep_canary": 1, "lockstep_waves": ["25%", "100%"], "lockstep_watch_seconds": 0}


def hook_failing_after(directory, index):
    path = os.path.join(directory, "fail_after_%d.yml" % index)
    with open(path, "w") as f:
        f.write("- name: Bench - halt after wave %d\n  ansible.builtin.fail:\n    msg: injected\n"
                "  when: lockstep_waves_done | int == %d\n" % (index, index))
    return path


def out_of_service(fleet):
    rows = csv.DictReader(io.StringIO(fleet.haproxy("show stat").lstrip("# ")))
    return sum(1 for r in rows if r["pxname"] == "order_router" and r["svname"] not in ("FRONTEND", "BACKEND")
               and not r["status"].startswith("UP"))


def run_case(fleet, hosts, rate, extra, tmp):
    fleet.up(hosts=hosts, version="1.0.0")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_SSH_CONTROL_PATH_DIR=tmp,
               LOCKSTEP_LEDGER_DIR=os.path.join(tmp, "ledger"), PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", os.path.join(REPO, "inventory", "local"),
           os.path.join(REPO, "playbooks", "release.yml"), "-e", json.dumps(dict(WAVES, lockstep_version="2.1.0",
                                                                              **extra))]
    done, reports, worst = threading.Event(), [], [0]

    def clients():
        while not done.is_set():
            reports.append(fleet.traffic(rate=rate, seconds=1))

    def sampler():
        while not done.is_set():
            worst[0] = max(worst[0], out_of_service(fleet))
            time.sleep(0.05)

    threads = [threading.Thread(target=clients), threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    done.set()
    for t in threads:
        t.join()
    status = "rolled_back" if "lockstep rolled_back" in proc.stdout else "rc=%d" % proc.returncode
    return {"sent": sum(r["sent"] for r in reports), "failed": sum(r["failed"] for r in reports),
            "worst_out": worst[0], "seconds": elapsed, "status": status}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--rate", type=float, default=40)
    args = ap.parse_args()
    sys.path.insert(0, REPO)
    from ansible_collections.lockstep.release.plugins.plugin_utils.waves import batches, serial_list
    from lockstep_fleet import Fleet, fleet_lock

    largest = max(len(b) for b in batches(["h%d" % i for i in range(1, args.hosts + 1)],
                                          serial_list(1, WAVES["lockstep_waves"])))
    rows = []
    with fleet_lock():
        fleet = Fleet(REPO)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                for where, extra in (("canary", {"lockstep_hooks": {"after_wave": hook_failing_after(tmp, 1)}}),
                                     ("middle wave", {"lockstep_hooks": {"after_wave": hook_failing_after(tmp, 2)}}),
                                     ("after the last wave", {"lockstep_smoke_commands": ["false"]})):
                    r = run_case(fleet, args.hosts, args.rate, extra, tmp)
                    rows.append((where, r))
                    print("halt %-20s %s: %d requests, %d failed; at most %d of %d servers out at once "
                          "(largest rollout wave %d); %.1f s" % (where, r["status"], r["sent"], r["failed"],
                                                                r["worst_out"], args.hosts, largest, r["seconds"]),
                          flush=True)
        finally:
            fleet.down()
    print("\n| halt | requests | failed | most servers out at once | largest wave | run |\n|---|---|---|---|---|---|")
    for where, r in rows:
        print("| %s | %d | %d | %d of %d | %d | %.1f s |" % (where, r["sent"], r["failed"], r["worst_out"],
                                                         args.hosts, largest, r["seconds"]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Wall time of the fleet audit finding one stale host: 8, 16 and 32 real local hosts, each layer separately
(``bin/lockstep audit --http``; ``verify.yml`` with only the HTTP layer, only the SSH layer, and whole), and the HTTP
layer against 1000 simulated endpoints on 127.0.0.1 (one asyncio server in this process on 1000 kernel-chosen ports).

Prints figures; asserts nothing but that every audit named the stale host (performance targets live here, never in
timed tests). Holds /tmp/lockstep-fleet.lock while the fleet is up.
Usage: .venv/bin/python bench/audit_bench.py [--hosts 8 16 32] [--runs 3] [--simulated 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
LOCKSTEP = os.path.join(REPO, "bin", "lockstep")


def timed(cmd, env, stale):
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    out = proc.stdout + proc.stderr
    if proc.returncode == 0 or stale not in out:
        sys.exit("audit did not name %s (rc %s):\n%s" % (stale, proc.returncode, out[-3000:]))
    return elapsed


def figures(times):
    return "min %.2f s, median %.2f s" % (min(times), statistics.median(times))


def real_fleet(args):
    sys.path.insert(0, REPO)
    from lockstep_fleet import Fleet, fleet_lock

    fleet = Fleet(REPO)
    with fleet_lock():
        rows = []
        try:
            for n in args.hosts:
                fleet.up(hosts=n, version="1.0.0")
                fleet.install("2.1.0")
                stale = "h%d" % (n // 2)
                for host in fleet.hosts:
                    if host != stale:  # every host but one restarts onto 2.1.0: the stale one keeps 1.0.0 running
                        fleet.exec(host, "/srv/order-router/current/bin/ctl", "restart", check=True)
                fleet.wait_healthy()
                time.sleep(1)
                with tempfile.TemporaryDirectory() as tmp:
                    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                               ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(tmp, "cp"),
                               LOCKSTEP_LEDGER_DIR=os.path.join(tmp, "ledger"),
                               PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
                    playbook = [os.path.join(VENV_BIN, "ansible-playbook"), "-i",
                                os.path.join(REPO, "inventory", "local"), os.path.join(REPO, "playbooks", "verify.yml")]
                    cases = [
                        ("bin/lockstep audit --http", [LOCKSTEP, "audit", "--http"]),
                        ("verify.yml layers=http", playbook + ["-e", "lockstep_audit_layers=http"]),
                        ("verify.yml layers=ssh", playbook + ["-e", "lockstep_audit_layers=ssh"]),
                        ("verify.yml (http+ssh)", playbook),
                    ]
                    for name, cmd in cases:
                        times = [timed(cmd, env, stale) for _ in range(args.runs)]
                        rows.append((n, name, times))
                        print("hosts=%-3d %-26s %s" % (n, name, figures(times)), flush=True)
        finally:
            fleet.down()
        return rows


class Simulated:
    """N endpoints answering GET /version like the sample service, one of them stale, in one asyncio loop."""

    def __init__(self, n, stale):
        self.n, self.stale, self.ports = n, stale, []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait()

    def _body(self, i):
        version = "1.0.0" if i == self.stale else "2.1.0"
        return json.dumps({"version": version, "sha256": "x", "content_sha256": "y", "pid": 1000 + i,
                           "directory": "/srv/order-router/releases/%s" % version}).encode()

    def _handler(self, i):
        body = self._body(i)
        resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" \
            % len(body) + body

        async def handle(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(resp)
            await writer.drain()
            writer.close()
        return handle

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def start():
            for i in range(self.n):
                server = await asyncio.start_server(self._handler(i), "127.0.0.1", 0, backlog=64)
                self.ports.append(server.sockets[0].getsockname()[1])
        self.loop.run_until_complete(start())
        self.ready.set()
        self.loop.run_forever()


def simulated(args):
    n = args.simulated
    stale = n // 2 + 1
    sim = Simulated(n, stale - 1)
    with tempfile.TemporaryDirectory() as tmp:
        inv = os.path.join(tmp, "inventory")
        os.makedirs(os.path.join(inv, "group_vars"))
        hosts = {"s%d" % (i + 1): {"ansible_host": "127.0.0.1", "lockstep_service_url": "http://127.0.0.1:%d" % p}
                 for i, p in enumerate(sim.ports)}
        with open(os.path.join(inv, "hosts.yml"), "w") as f:
            json.dump({"all": {"children": {"app": {"hosts": hosts}}}}, f)  # JSON is YAML
        with open(os.path.join(inv, "group_vars", "all.yml"), "w") as f:
            f.write("lockstep_base: /srv/order-router\n")
        times = [timed([LOCKSTEP, "audit", "--http", "-i", inv], dict(os.environ), "s%d" % stale)
                 for _ in range(args.runs)]
    print("simulated=%d bin/lockstep audit --http  %s" % (n, figures(times)), flush=True)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, nargs="*", default=[8, 16, 32])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--simulated", type=int, default=1000)
    args = ap.parse_args()
    if args.simulated:
        simulated(args)
    if args.hosts:
        real_fleet(args)


if __name__ == "__main__":
    main()

"""The guard (extensions/eda) as a real ``ansible-rulebook`` process against the real local fleet."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import threading
import time

from release_helpers import REPO, VENV_BIN, env


class GuardProcess:
    """``ansible-rulebook -r lockstep.release.lockstep_guard -i inventory/local``, as ``make guard`` starts it, with
    this test's ledger directory; its output is collected in ``out``."""

    def __init__(self, tmp_path, interval=1.0, inventory=None):
        inventory = str(inventory or os.path.join(REPO, "inventory", "local"))
        cmd = [os.path.join(VENV_BIN, "ansible-rulebook"), "-r", "lockstep.release.lockstep_guard", "-i", inventory]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env(tmp_path, LOCKSTEP_GUARD_INTERVAL=interval,
                                                            LOCKSTEP_INVENTORY=inventory),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def out(self):
        return "".join(self.lines)

    def wait_for(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while text not in self.out:
            assert self.proc.poll() is None, "guard exited %s:\n%s" % (self.proc.returncode, self.out[-6000:])
            assert time.monotonic() < deadline, "no %r from the guard in %ss:\n%s" % (text, timeout, self.out[-6000:])
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def lb_rows(fleet):
    """``{server: (status, current sessions)}`` from HAProxy's own ``show stat``."""
    rows = csv.DictReader(io.StringIO(fleet.haproxy("show stat").lstrip("# ")))
    return {r["svname"]: (r["status"], int(r["scur"] or 0)) for r in rows
            if r["pxname"] == "order_router" and r["svname"] not in ("FRONTEND", "BACKEND")}


def sends_nothing(fleet, host):
    """HAProxy sends ``host`` nothing: its server in MAINT with no current session."""
    status, sessions = lb_rows(fleet)[host]
    return status == "MAINT" and sessions == 0


def swap_back(fleet, host, version="1.0.0"):
    """The fault: ``host``'s process swapped for ``version`` outside any release."""
    proc = fleet.exec(host, "sh", "-c", "ln -sfn releases/%s /srv/order-router/current.tmp && "
                      "mv -T /srv/order-router/current.tmp /srv/order-router/current && "
                      "/srv/order-router/current/bin/ctl restart >/dev/null" % version)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)

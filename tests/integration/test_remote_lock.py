"""The release lock on a fleet host that is not the controller (``lockstep_lock_host``), as teams keep it: on the
load balancer's machine, with releases started from AWX jobs whose containers share nothing.

A team's own inventory directory (the fleet's hosts plus a group_vars file putting the lock on h1, in h1's own
/run). Two controllers, each in its own working directory with its own ledger and SSH control directory: the first
release holds the lock on h1 while it waits after its canary; meanwhile

- ``bin/lockstep lock show -i INVENTORY`` reads the lock on h1 through Ansible and says who holds it (never "no
  release lock held": the controller has no lock file of its own);
- the second release is refused by that lock, and changes nothing;
- the guard, reading the lock through h1 too, stays silent although the fleet is mixed on purpose.

Then the first release succeeds, the lock on h1 is gone, and ``lock show`` says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import yaml
from guard_helpers import GuardProcess
from release_helpers import REPO, Run, assert_whole_fleet_on, env, records_in, release_cmd

LOCK = "/run/lockstep-release.lock"


def team_inventory(fleet, tmp_path, lock_host="h1"):
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    shutil.copy(fleet.inventory, inv / "hosts.yml")
    with open(os.path.join(REPO, "inventory", "local", "group_vars", "all.yml")) as f:
        group_vars = yaml.safe_load(f)
    group_vars.update(lockstep_artifact_dir=os.path.join(REPO, "artifacts"), lockstep_lock_host=lock_host,
                      lockstep_lock_path=LOCK)
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars, sort_keys=False))
    return inv


def controller(tmp_path, name):
    """A controller of its own (an AWX job's container): working directory, ledger, SSH control directory."""
    home = tmp_path / name
    home.mkdir()
    return home


def start(home, inv, version, extra=None):
    cmd = release_cmd(version, extra=extra, inventory=str(inv))
    return subprocess.Popen(cmd, cwd=str(home), env=env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, stdin=subprocess.DEVNULL)


def finish(home, proc, timeout=600):
    out, _ = proc.communicate(timeout=timeout)
    return Run(proc.returncode, out, records_in(home))


def lock_show(home, inv):
    return subprocess.run([os.path.join(REPO, "bin", "lockstep"), "lock", "show", "-i", str(inv)], cwd=str(home),
                          env=env(home), capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_the_lock_on_another_host_refuses_a_second_controller_and_keeps_the_guard_silent(fleet, tmp_path):
    fleet.up(hosts=3, version="1.0.0")
    inv = team_inventory(fleet, tmp_path)
    first_home, second_home = controller(tmp_path, "job-1"), controller(tmp_path, "job-2")
    # The first release waits after its canary: the fleet is mixed, the lock held on h1.
    pause = first_home / "after_wave.yml"
    pause.write_text("- name: Test hook - hold the mixed fleet\n  ansible.builtin.pause:\n    seconds: 12\n"
                     "  when: ansible_play_batch == ['h1']\n")
    with GuardProcess(tmp_path, interval=1, inventory=inv) as guard:
        guard.wait_for("lockstep guard: watching 3 hosts")
        first = start(first_home, inv, "2.1.0", extra={"lockstep_hooks": {"after_wave": str(pause)}})
        deadline = time.monotonic() + 120
        while "2.1.0" not in {h.get("version") for h in fleet.status()["hosts"]}:
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
            time.sleep(0.2)

        held = lock_show(second_home, inv)
        assert held.returncode == 0, held.stdout + held.stderr
        assert "no release lock held" not in held.stdout and "h1" in held.stdout, held.stdout
        # The run record is kept next to the lock, on h1, though HAProxy runs elsewhere: what a controller that
        # dies here leaves for the next run to put back.
        lock = json.loads(fleet.exec("h1", "cat", LOCK, check=True).stdout)
        run_record = json.loads(fleet.exec("h1", "cat", LOCK + ".run", check=True).stdout)
        assert run_record["run_id"] == lock["run_id"] and run_record["version"] == "2.1.0", (run_record, lock)

        second = finish(second_home, start(second_home, inv, "2.1.0"))
        assert second.rc != 0 and second.status == "refused", second
        assert "lock" in second.out, second

        done = finish(first_home, first)
        assert done.rc == 0 and done.status == "succeeded", done
        assert "lockstep guard: fault" not in guard.out and "RECORD PROBLEM" not in guard.out, guard.out
    assert_whole_fleet_on(fleet, "2.1.0")
    assert fleet.exec("h1", "test", "-e", LOCK).returncode != 0, "the lock was left on h1"
    assert not os.path.exists(os.path.join(fleet.dir, "lockstep-release.lock")), "a lock on the controller"
    free = lock_show(second_home, inv)
    assert free.returncode == 0 and "no release lock held" in free.stdout, free.stdout + free.stderr


def test_the_lock_host_lost_after_the_canary_halts_the_release_and_the_canary_still_goes_back(fleet, tmp_path):
    """The lock's host goes dark after the canary (its sshd stopped): every load balancer step keeps the run record
    there, so the next wave's drain cannot, and the lock cannot be given back. Each is that step's error (the
    actions' guard, plugin_utils/guard.py), never the batch's host dropped as unreachable, which would leave the
    switched canary out of the rollback: the wave halts before any of its hosts switches, the canary goes back (its
    steps note the lost record and go on), the run says the lock is stuck, and it exits 2, never 4. Seen failing
    without the guard: exit 4, rollback_failed."""
    fleet.up(hosts=4, version="1.0.0")
    inv = team_inventory(fleet, tmp_path, lock_host="h4")
    home = controller(tmp_path, "job")
    dark = home / "after_wave.yml"
    dark.write_text("- name: Test hook - the lock's host goes dark right after the canary\n"
                    "  ansible.builtin.command: %s sshd h4 stop\n"
                    "  delegate_to: localhost\n  run_once: true\n  changed_when: true\n"
                    "  when: lockstep_waves_done | int == 1\n" % os.path.join(REPO, "bin", "fleet"))
    run = finish(home, start(home, inv, "2.1.0", extra={"lockstep_hooks": {"after_wave": str(dark)}}))
    assert run.rc == 2, "a host dropped as Ansible-unreachable (exit 4), or no halt: %s" % run
    assert run.status == "rolled_back", run
    assert "RELEASE LOCK NOT GIVEN BACK" in run.out, run
    fleet.sshd("h4", "start")
    assert_whole_fleet_on(fleet, "1.0.0")

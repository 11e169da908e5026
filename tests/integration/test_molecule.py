"""Every molecule scenario, run as CI runs them: `molecule test --all` from the repository root.

Each scenario brings up the real local fleet (3 hosts on 1.0.0), runs a release (converge), checks every host over
SSH with testinfra (verify) and brings the fleet down: default (a clean release of 2.1.0, then a second one that
changes nothing) and rollback_failure (fails unless the release ended rollback_failed for its own reason). The
stale-host, flag-reuse, unreachable and check-mode releases are pytest's alone (test_release_halts, test_knight,
test_release_clean): one fleet scenario runs once per `make test`. Here the ledgers scenario default left behind
are checked again from outside, with `bin/lockstep`.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess

from release_helpers import REPO, VENV_BIN, ledger

# .config/molecule/config.yml: LOCKSTEP_LEDGER_DIR (kept after the run; molecule prunes its ephemeral directory).
LEDGER_DIR = os.path.join(REPO, ".lockstep", "molecule", "default", "ledger")
SCENARIOS = ["default", "rollback_failure"]
LOCKSTEP = os.path.join(REPO, "bin", "lockstep")
HOSTS = ["h1", "h2", "h3"]


def ledger_names():
    return set(os.listdir(LEDGER_DIR)) if os.path.isdir(LEDGER_DIR) else set()


def molecule_env():
    # Whatever the caller set for Ansible, lockstep or molecule (make exports ANSIBLE_CONFIG) stays out: the
    # scenario must work from its own molecule.yml.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_", "MOLECULE_"))}
    env.update({"PATH": VENV_BIN + os.pathsep + env.get("PATH", ""), "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1"})
    return env


def lockstep_ledger(action, path):
    return subprocess.run([LOCKSTEP, "ledger", action, path], cwd=REPO, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=molecule_env())


def test_every_molecule_scenario_passes_and_default_leaves_a_verified_ledger(fleet):
    # The `fleet` fixture holds the machine's fleet lock for the whole molecule run, brings down a fleet left over
    # from an earlier test first, and this one's if molecule could not.
    assert sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(
        REPO, "molecule", "*", "molecule.yml"))) == SCENARIOS
    before = ledger_names()
    proc = subprocess.run([os.path.join(VENV_BIN, "molecule"), "test", "--all"], cwd=REPO,
                          env=molecule_env(), capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-12000:]
    assert "lockstep: wave" in out, out[-12000:]  # the ledger callback printed its wave progress during converge
    assert not os.path.exists(os.path.join(REPO, "inventory", "local", "hosts.yml")), "molecule left the fleet up"
    recap = out[out.rindex("SCENARIO RECAP"):]
    for name in SCENARIOS:  # every scenario ran every action of its sequence, none failed or was missing
        line = re.search(r"^%s\s+: (.*)$" % name, recap, re.M)
        assert line and "failed=0" in line.group(1) and "missing=0" in line.group(1), recap
    # testinfra ran its checks over SSH in every scenario (19 per scenario: 6 per host and HAProxy's view)
    assert out.count("19 passed") == len(SCENARIOS), out[-12000:]

    new = sorted(ledger_names() - before)  # names start with the UTC time: run order
    releases = [n for n in new if "-converge-" in n]
    assert len(releases) == 1, new  # converge ran the release playbook once, in one ansible-playbook process
    path = os.path.join(LEDGER_DIR, releases[0])

    verify = lockstep_ledger("verify", path)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.rstrip().endswith(", chain intact, complete"), verify.stdout
    show = lockstep_ledger("show", path)
    assert show.returncode == 0, show.stdout + show.stderr
    assert "succeeded" in show.stdout, show.stdout

    records = ledger.read_records(path)
    assert records[0]["event"] == "release_started", records[0]
    phases = [r["phase"] for r in records if r["event"] == "phase_enter"]
    assert {"preflight", "rollout", "verify", "smoke", "finish"} <= set(phases), phases
    last = records[-1]
    assert last["event"] == "release_finished", last
    assert last["status"] == "succeeded" and last["status_source"] == "playbook", last
    assert last["version_before"] == "1.0.0" and last["version_after"] == "2.1.0", last
    assert {h: (last["hosts"][h]["before"], last["hosts"][h]["after"]) for h in HOSTS} == dict.fromkeys(
        HOSTS, ("1.0.0", "2.1.0")), last["hosts"]

    # Every other playbook of the run (create, side_effect, destroy) was recorded too, and its ledger is intact;
    # the directory form of `ledger verify` checks the newest of them (destroy's).
    assert any("-create-" in n for n in new) and any("-side_effect-" in n for n in new), new
    assert "-destroy-" in new[-1], new
    for name in new:
        verify = lockstep_ledger("verify", os.path.join(LEDGER_DIR, name))
        assert verify.returncode == 0, verify.stdout + verify.stderr
    verify_dir = lockstep_ledger("verify", LEDGER_DIR)
    assert verify_dir.returncode == 0, verify_dir.stdout + verify_dir.stderr
    assert new[-1] in verify_dir.stdout and "chain intact, complete" in verify_dir.stdout, verify_dir.stdout

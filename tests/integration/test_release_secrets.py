"""A vault-encrypted inventory variable used in a smoke URL and in a restart command never leaves the run: not in
stdout (Ansible's own lines included: lockstep's actions scrub their messages at the source), not in the ledger, its
anchor, the JUnit file or any other file the run writes; on real releases of the second service on the fleet, one
halted by its smoke check and one by a switch that fails."""

from __future__ import annotations

import os
import stat
import subprocess

from release_helpers import REPO, env, records_in, release_cmd
from test_any_service import VARS, build, served

# Built at run time, so that no value appears in this file or in a traceback of it.
KEY = "Sm0ke" + "Key" + "Vault" + "4417"
VAULT = os.path.join(REPO, ".venv", "bin", "ansible-vault")


def inventory_with_vaulted_key(tmp_path):
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(open(os.path.join(REPO, "inventory", "local", "hosts.yml")).read())
    password = tmp_path / "vault-password"
    password.write_text("a vault password for this test\n")
    # A name no secret pattern matches: only its encryption makes it secret.
    proc = subprocess.run([VAULT, "encrypt_string", "--vault-password-file", str(password), "--name", "smoke_key", KEY],
                          capture_output=True, text=True, timeout=60, env=env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    # Next to the fleet's own group_vars (the restart command and the smoke checks are templated on every host).
    (inv / "group_vars" / "all.yml").write_text(
        open(os.path.join(REPO, "inventory", "local", "group_vars", "all.yml")).read() + proc.stdout)
    assert KEY not in (inv / "group_vars" / "all.yml").read_text()
    return str(inv / "hosts.yml"), str(password)


def run(tmp_path, version, extra, inventory, password):
    before = set(os.listdir(tmp_path / "ledger")) if (tmp_path / "ledger").exists() else set()
    proc = subprocess.run(
        release_cmd(version, extra) + ["-i", inventory, "--vault-password-file", password], cwd=REPO,
        env=env(tmp_path, LOCKSTEP_LEDGER_JUNIT_FILE=tmp_path / "junit" / (version + ".xml")),
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    return proc, records_in(tmp_path, before)


def status(records):
    return next(r["status"] for r in reversed(records) if r.get("event") == "release_finished")


def test_a_vaulted_key_in_a_smoke_url_and_a_restart_command_is_never_shown(fleet, tmp_path):
    fleet.up(hosts=3)
    build(tmp_path, "1.0.0")
    build(tmp_path, "2.0.0")
    build(tmp_path, "3.0.0", healthy=False)
    inventory, password = inventory_with_vaulted_key(tmp_path)
    checks = [c for c in VARS["lockstep_smoke_checks"] if c.get("per_host", True)] + [
        {"name": "version with the key", "url": "{url}/version?key={{ smoke_key }}", "body_contains": "{version}"}]
    extra = dict(VARS, lockstep_artifact_dir=str(tmp_path / "artifacts"), lockstep_smoke_checks=checks,
                 # The restart says the key on stderr and passes it to a program that ignores it.
                 lockstep_restart_command=["sh", "-c", 'echo "restart with key $0" >&2; exec %s/current/bin/ctl '
                                           'restart "$1"' % VARS["lockstep_base"], "{{ smoke_key }}",
                                           "{{ ansible_host }}"])
    (tmp_path / "junit").mkdir()
    outputs = []

    first, records = run(tmp_path, "1.0.0", extra, inventory, password)
    outputs.append(first.stdout + first.stderr)
    assert KEY not in outputs[-1]
    assert first.returncode == 0 and status(records) == "succeeded", outputs[-1][-4000:]

    # Halted by a smoke check whose URL carries the key (it passes on the fleet as it is, 1.0.0, and on its way
    # back): the halt message quotes the URL.
    still_one = {"name": "still 1.0.0", "url": "{url}/version?key={{ smoke_key }}", "body_contains": "1.0.0"}
    halted, records = run(tmp_path, "2.0.0", dict(extra, lockstep_smoke_checks=checks + [still_one]), inventory,
                          password)
    outputs.append(halted.stdout + halted.stderr)
    assert KEY not in outputs[-1], [line for line in outputs[-1].splitlines() if KEY in line]
    assert halted.returncode != 0 and status(records) == "rolled_back", outputs[-1][-4000:]
    assert "/version?key=********" in outputs[-1], outputs[-1][-4000:]

    # Halted by a switch that fails (the release's health check): the failed deploy's result is printed.
    broken, records = run(tmp_path, "3.0.0", extra, inventory, password)
    outputs.append(broken.stdout + broken.stderr)
    assert broken.returncode != 0 and status(records) == "rolled_back", outputs[-1][-4000:]
    assert set(served(fleet).values()) == {"1.0.0"}, served(fleet)

    for i, out in enumerate(outputs):
        assert KEY not in out, (i, [line for line in out.splitlines() if KEY in line])
    written = []
    for root, _dirs, files in os.walk(tmp_path):
        for name in files:
            if not stat.S_ISREG(os.lstat(os.path.join(root, name)).st_mode):
                continue  # ssh's ControlPersist sockets
            with open(os.path.join(root, name), "rb") as f:
                if KEY.encode() in f.read():
                    written.append(os.path.join(root, name))
    assert written == []
    assert len(os.listdir(tmp_path / "junit")) == 3 and os.listdir(tmp_path / "anchors")

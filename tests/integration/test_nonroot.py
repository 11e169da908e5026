"""lockstep as teams run it: every host logged into as a deploy user with sudo, the service running as its own
unprivileged user (bin/fleet up --login-user deploy --service-user order-router).

- Without become the release is refused at preflight for what it is, a privilege problem (the login cannot read the
  service's /proc entries), never "the fleet is already mixed", and nothing changes. With become but no password
  for sudo: refused, and the reason names the password.
- With lockstep_become and the sudo password as a vaulted ansible_become_password: a clean release, the audit, the
  kill switch and resume.yml, a halted release rolled back, every one as that user, the service still running as
  its own user after each. sudo without a password is molecule's scenario default (the same fleet, NOPASSWD).
"""

from __future__ import annotations

import json
import subprocess
import time

from operator_helpers import audit_records, frontend_status
from release_helpers import REPO, VENV_BIN, assert_whole_fleet_on, lb_status, release
from test_release_halts import assert_halted, stale_pidfile

BECOME = {"lockstep_become": True}
SERVICE_USER = "order-router"


def service_users(fleet):
    """``{host: user}`` of the process serving each host's port (the one the service reports)."""
    users = {}
    for h in fleet.status()["hosts"]:
        pid = h.get("service_pid")
        proc = fleet.exec(h["name"], "ps", "-o", "user=", "-p", str(pid)) if pid else None
        users[h["name"]] = proc.stdout.strip() if proc and proc.returncode == 0 else None
    return users


def pids(fleet):
    return {h["name"]: h.get("service_pid") for h in fleet.status()["hosts"]}


def settled(fleet, seconds=10):
    """HAProxy's view once its health checks settle: a check that ran while a service was starting shows as
    `UP 1/2` until the next one."""
    deadline = time.monotonic() + seconds
    while set(lb_status(fleet).values()) != {"UP"} and time.monotonic() < deadline:
        time.sleep(0.5)
    return set(lb_status(fleet).values())


def test_a_deploy_login_with_a_vaulted_sudo_password_releases_audits_halts_resumes_and_rolls_back(fleet, tmp_path):
    fleet.up(hosts=2, version="1.0.0", login_user="deploy", sudo_password="s3cret-sudo", service_user=SERVICE_USER)
    assert service_users(fleet) == {"h1": SERVICE_USER, "h2": SERVICE_USER}
    before = pids(fleet)
    vault_pass = tmp_path / "vault-pass"
    vault_pass.write_text("vault-key\n")
    secrets = tmp_path / "become.yml"
    secrets.write_text("ansible_become_password: s3cret-sudo\n")
    subprocess.run([f"{VENV_BIN}/ansible-vault", "encrypt", "--vault-password-file", str(vault_pass), str(secrets)],
                   cwd=REPO, check=True, capture_output=True)
    assert "s3cret-sudo" not in secrets.read_text()
    vaulted = ["-e", "@%s" % secrets, "--vault-password-file", str(vault_pass)]

    refused = release(tmp_path, "2.1.0", args=vaulted)
    assert refused.rc != 0 and refused.status == "refused", refused
    assert "cannot read its release state as user deploy" in refused.out and "(privilege;" in refused.out, refused
    assert "already mixed" not in refused.out, refused
    # become without the password sudo asks for: refused before anything changed, and the reason says which.
    missing = release(tmp_path, "2.1.0", extra=BECOME)
    assert missing.rc != 0 and missing.status == "refused", missing
    assert "password" in missing.out.lower(), missing
    assert pids(fleet) == before
    assert_whole_fleet_on(fleet, "1.0.0")

    clean = release(tmp_path, "2.1.0", extra=BECOME, args=vaulted)
    assert clean.rc == 0 and clean.status == "succeeded", clean
    assert "s3cret-sudo" not in clean.out and "s3cret-sudo" not in json.dumps(clean.records)
    assert_whole_fleet_on(fleet, "2.1.0")
    assert service_users(fleet) == {"h1": SERVICE_USER, "h2": SERVICE_USER}

    audited = release(tmp_path, None, extra=BECOME, args=vaulted, playbook="verify.yml")
    assert audited.rc == 0 and "LOCKSTEP FLEET AUDIT (http+ssh): PASSED, version 2.1.0" in audited.out, audited
    assert all(h["from_active"] for h in audit_records(audited)[-1]["hosts"].values()), audit_records(audited)

    stopped = release(tmp_path, None, extra=BECOME, args=vaulted, playbook="halt.yml")
    assert stopped.rc == 0 and "LOCKSTEP HALT: every host stopped" in stopped.out, stopped
    assert set(lb_status(fleet).values()) == {"MAINT"} and frontend_status() == 503
    resumed = release(tmp_path, None, extra=BECOME, args=vaulted, playbook="resume.yml")
    assert resumed.rc == 0, resumed
    assert settled(fleet) == {"UP"}, lb_status(fleet)
    assert_whole_fleet_on(fleet, "2.1.0")
    assert service_users(fleet) == {"h1": SERVICE_USER, "h2": SERVICE_USER}

    # Last: the stale pidfile it leaves behind would keep the kill switch from confirming h2 stopped.
    stale_pidfile(fleet, "h2")
    halted = release(tmp_path, "2.2.0", extra=dict(BECOME, lockstep_switch_timeout=5), args=vaulted)
    assert_halted(halted, "rolled_back", "h2", "running-version check failed")
    assert_whole_fleet_on(fleet, "2.1.0")
    assert set(lb_status(fleet).values()) == {"UP"}, lb_status(fleet)

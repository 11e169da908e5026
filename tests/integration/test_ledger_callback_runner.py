"""Under ansible-runner (how AWX runs playbooks) the ledger is written and runner's events still arrive."""

from __future__ import annotations

import os
import shutil

import ansible_runner
import pytest
from _ledger_helpers import HALTED, PROJECT, REPO, VENV_BIN, ledger, only_ledger, records

pytestmark = pytest.mark.without_fleet  # localhost only: runs beside the fleet tests (tests/run_all.py)


def test_release_under_ansible_runner(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    for name in list(os.environ):
        if name.startswith(("ANSIBLE_", "LOCKSTEP_")):
            monkeypatch.delenv(name)
    shutil.copytree(PROJECT, tmp_path / "project")
    (tmp_path / "inventory").mkdir()
    shutil.copy(os.path.join(PROJECT, "inventory.yml"), tmp_path / "inventory" / "hosts.yml")

    r = ansible_runner.run(
        private_data_dir=str(tmp_path),
        playbook="release.yml",
        extravars=HALTED,
        envvars={
            "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"),
            "ANSIBLE_CALLBACKS_ENABLED": "lockstep.release.ledger",
            "ANSIBLE_NOCOLOR": "1",
        },
        quiet=True,
    )
    assert r.rc == 2, r.stdout.read()

    # default directory: .lockstep/ledger relative to the working directory, which is runner's project dir
    path = only_ledger(tmp_path / "project" / ".lockstep" / "ledger")
    assert ledger.verify(path).complete
    recs = records(path)
    assert [r_["phase"] for r_ in recs if r_["event"] == "phase_enter"] == [
        "preflight", "rollout", "verify", "rollback", "finish"]
    assert recs[-1]["status"] == "rolled_back"

    events = list(r.events)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "playbook_on_start" and "playbook_on_stats" in kinds
    assert kinds.count("runner_on_ok") > 10 and "runner_on_failed" in kinds
    stats = next(e for e in events if e["event"] == "playbook_on_stats")
    artifact = stats["event_data"]["artifact_data"]
    # The playbook's set_stats, shown as it published them (lockstep's finish role adds lockstep_ledger:
    # test_awx.py).
    assert artifact["lockstep_status"] == "rolled_back"

    stdout = r.stdout.read()
    assert "lockstep: wave 2/2 [h2,h3] version 1.1.0: 3/3 hosts done" in stdout
    assert "LOCKSTEP RELEASE SUMMARY: status rolled_back" in stdout

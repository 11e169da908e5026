"""Helpers of the ledger callback integration tests: run real ansible-playbook on the local test project."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ansible_collections.lockstep.release.plugins.module_utils import ledger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT = os.path.join(REPO, "tests", "integration", "ledger_project")
INVENTORY = os.path.join(PROJECT, "inventory.yml")
VENV_BIN = os.path.join(REPO, ".venv", "bin")
LOCKSTEP = os.path.join(REPO, "bin", "lockstep")
GOLDEN = os.path.join(REPO, "tests", "integration", "golden")



HALTED = {"lockstep_version": "1.1.0", "halt_gate": "verify", "halt_host": "h2",
          "halt_message": "h2 runs 1.0.0 from a stale directory"}
SUCCEEDED = {"lockstep_version": "1.1.0"}


def env_for(ledger_dir, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_"))}
    env.update({
        "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"),
        "ANSIBLE_CALLBACKS_ENABLED": "lockstep.release.ledger",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": os.path.join(str(ledger_dir), "..", "ansible-tmp"),
        "LOCKSTEP_LEDGER_DIR": str(ledger_dir),
        # the anchors of the test's ledgers stay in the test's directory, outside the ledger directory
        "LOCKSTEP_LEDGER_ANCHOR_DIR": os.path.join(str(ledger_dir), "..", "anchors"),
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def playbook_cmd(playbook, extra_vars):
    return [os.path.join(VENV_BIN, "ansible-playbook"), "-i", INVENTORY, os.path.join(PROJECT, playbook),
            "-e", json.dumps(extra_vars)]


def run_playbook(tmp_path, playbook="release.yml", extra_vars=None, **env_extra):
    ledger_dir = tmp_path / "ledger"
    proc = subprocess.run(playbook_cmd(playbook, extra_vars or {}), cwd=tmp_path, env=env_for(ledger_dir, **env_extra),
                          capture_output=True, text=True, timeout=300)
    return proc, ledger_dir


def only_ledger(ledger_dir):
    files = sorted(p for p in os.listdir(ledger_dir) if p.endswith(".jsonl"))
    assert len(files) == 1, files
    return os.path.join(ledger_dir, files[0])


def records(path):
    return ledger.read_records(path)


def lockstep(*args):
    return subprocess.run([sys.executable, LOCKSTEP, *args], capture_output=True, text=True, timeout=60)


def summary_block(stdout, ledger_path):
    """The summary table printed at the end of the run, the ledger path replaced by <LEDGER>."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("LOCKSTEP RELEASE SUMMARY"))
    block = []
    for line in lines[start:]:
        block.append(line.replace(ledger_path, "<LEDGER>"))
        if line.startswith("ledger: "):
            break
    return "\n".join(block) + "\n"


def check_golden(name, text):
    """Compare with tests/integration/golden/<name>; LOCKSTEP_REGEN_GOLDEN=1 rewrites the file instead."""
    path = os.path.join(GOLDEN, name)
    if os.environ.get("LOCKSTEP_REGEN_GOLDEN") == "1":
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        assert text == f.read(), f"{name} differs from the golden file (LOCKSTEP_REGEN_GOLDEN=1 regenerates it)"

"""Secrets from the inventory never leave the run: vault-encrypted values (inline, and a group_vars file encrypted
whole) and a secret-named host var, used in a smoke URL and header, a restart command, a gate, a wave line, a no_log
fact and set_stats, are absent from the ledger, its fallback, the JUnit file, the custom stats and every line the
ledger callback prints. Also: the files' modes, and the anchor that makes a cut tail detectable (real callback)."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from _ledger_helpers import INVENTORY, LOCKSTEP, PROJECT, VENV_BIN, env_for, records, summary_block

from ansible_collections.lockstep.release.plugins.module_utils import ledger

pytestmark = pytest.mark.without_fleet  # localhost only: runs beside the fleet tests (tests/run_all.py)

# Built at run time, so that no value appears in this file or in a traceback of it
SMOKE_AUTH = "Sm0ke" + "Auth" + "Vaulted" + "7731"  # inline !vault in group_vars/app/main.yml (not a secret name)
RESTART_AUTH = "Rest" + "artWhole" + "File" + "9254"  # group_vars/app/vault.yml, encrypted whole
DB_PASSWORD = "Host" + "VarPass" + "word" + "5120"  # host_vars/h1.yml, plain text under a secret name
FETCHED = "Fetched" + "42Token" + "8837"  # the stdout of a no_log task of vault.yml, in no variable
SECRETS = (SMOKE_AUTH, RESTART_AUTH, DB_PASSWORD, FETCHED)


def vault(*args, cwd):
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env=env_for(cwd / "unused"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def make_inventory(tmp_path):
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "app").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    password = tmp_path / "vault-password"
    password.write_text("correct horse battery staple\n")
    password.chmod(0o600)
    (inv / "hosts.yml").write_text(open(INVENTORY).read())
    inline = vault("encrypt_string", "--vault-password-file", str(password), "--name", "smoke_auth", SMOKE_AUTH,
                   cwd=tmp_path)
    (inv / "group_vars" / "app" / "main.yml").write_text("---\n" + inline)
    whole = inv / "group_vars" / "app" / "vault.yml"
    whole.write_text("---\nrestart_auth: %s\n" % RESTART_AUTH)
    vault("encrypt", "--vault-password-file", str(password), str(whole), cwd=tmp_path)
    (inv / "host_vars" / "h1.yml").write_text("---\ndb_password: %s\n" % DB_PASSWORD)
    for path in (inv / "group_vars" / "app" / "main.yml", whole):
        assert not any(s in path.read_text() for s in SECRETS)  # really encrypted
    return inv / "hosts.yml", password


def test_inventory_secrets_are_absent_from_every_output(tmp_path):
    inventory, password = make_inventory(tmp_path)
    ledger_dir = tmp_path / "ledger"
    ledger_dir.mkdir()
    junit = tmp_path / "reports" / "junit.xml"
    lock_path = tmp_path / "lockhost" / "run" / "release.lock"
    env = env_for(ledger_dir, LOCKSTEP_LEDGER_JUNIT_FILE=junit, TMPDIR=tmp_path, ANSIBLE_SHOW_CUSTOM_STATS="1")
    # The ledger lives on its own small filesystem, which the playbook fills once the lock is held.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "lockstep-test-vault-ledger", str(ledger_dir)],
                   check=True)
    try:
        proc = subprocess.run(
            [os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(inventory), os.path.join(PROJECT, "vault.yml"),
             "--vault-password-file", str(password),
             "-e", "lock_path=%s ledger_dir=%s fill_ledger=true" % (lock_path, ledger_dir)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
            preexec_fn=lambda: os.umask(0))  # the most permissive umask: the modes must not depend on it
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        files = sorted(p for p in os.listdir(ledger_dir) if p.endswith(".jsonl"))
        assert len(files) == 1, files
        path = str(ledger_dir / files[0])
        ledger_text = open(path).read()
        ledger_mode = stat.S_IMODE(os.stat(path).st_mode)
        dir_mode = stat.S_IMODE(os.stat(ledger_dir).st_mode)
    finally:
        subprocess.run(["umount", str(ledger_dir)], check=True)

    fallbacks = [p for p in os.listdir(tmp_path) if p.startswith("lockstep-ledger-fallback-")]
    assert len(fallbacks) == 1, (fallbacks, out)
    fallback = str(tmp_path / fallbacks[0])
    fallback_text = open(fallback).read()
    junit_text = junit.read_text()
    summary = summary_block(proc.stdout, fallback)
    callback_lines = [line for line in out.splitlines() if line.startswith("lockstep")]
    stats_at = proc.stdout.index("CUSTOM STATS:")
    custom_stats = proc.stdout[stats_at:proc.stdout.index("LOCKSTEP RELEASE SUMMARY")]
    anchors = tmp_path / "anchors"
    anchor_texts = [p.read_text() for p in anchors.iterdir()]

    # the secrets really went through everything below: the smoke URL, the header, the restart command, the stats
    assert "smoke check 'health with a token' failed: GET http://127.0.0.1:9/health?auth=********" in fallback_text
    # (the no_log fact, derived from a vaulted value, is scrubbed whole)
    assert "smoke command 'echo restart refused for ******** / ******** / ******** >&2; exit 3' exited 3: " \
        "restart refused for ******** / ******** / ********" in fallback_text
    assert "lockstep: wave 1/1 [h1] version 1.1.0+********.********: 1/3 hosts done" in callback_lines
    assert "halted by gate smoke on host h1: gate smoke halted the release on h1: smoke check 'health with a token' " \
        "failed: GET http://127.0.0.1:9/health?auth=********: " in summary
    # published from the restart's result, scrubbed at the source before any callback ran: the no_log result too,
    # which only the ledger callback knew to be secret
    assert "restart refused for ******** / ******** / ********" in custom_stats, custom_stats
    for name, text in (("ledger", ledger_text), ("fallback", fallback_text), ("junit", junit_text),
                       ("summary", summary), ("custom stats", custom_stats),
                       ("callback lines", "\n".join(callback_lines)), ("anchors", "\n".join(anchor_texts))):
        for secret in SECRETS:
            assert secret not in text, (name, secret)
    # the ledger broke after the lock was taken: the rest is in the fallback, which ends the release
    recs = records(fallback)
    assert recs[0]["event"] == "ledger_fallback" and recs[-1]["event"] == "release_finished"
    assert recs[-1]["status"] == "rolled_back"
    assert "auth=********: [Errno 111] Connection refused" in recs[-1]["halted_by"]["message"]

    # modes, whatever the umask: the ledger directory 0700, ledger, fallback, JUnit and anchors 0600, the lock 0600 in
    # a 0700 directory
    assert dir_mode == 0o700 and ledger_mode == 0o600
    assert stat.S_IMODE(os.stat(fallback).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(junit).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(anchors).st_mode) == 0o700
    assert len(anchor_texts) == 2
    for anchor in anchors.iterdir():
        assert stat.S_IMODE(os.stat(anchor).st_mode) == 0o600, anchor
    assert stat.S_IMODE(os.stat(lock_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(lock_path.parent).st_mode) == 0o700

    # the fallback is anchored: whole it verifies, cut it fails (verify finds its anchor in the run's configured
    # anchor directory, never where the ledger says)
    verified = subprocess.run([LOCKSTEP, "ledger", "verify", fallback], capture_output=True, text=True, timeout=60,
                              env=env)
    assert verified.returncode == 0 and "anchored at seq" in verified.stdout, verified
    lines = open(fallback).read().splitlines(keepends=True)
    with open(fallback, "w") as f:
        f.writelines(lines[:-2])
    cut = subprocess.run([LOCKSTEP, "ledger", "verify", fallback], capture_output=True, text=True, timeout=60,
                         env=env)
    assert cut.returncode == 1 and "truncated: " in cut.stderr, cut
    assert ledger.verify(fallback).ok  # the chain alone cannot tell


def test_a_release_ledger_cut_at_its_tail_fails_verify(tmp_path):
    from _ledger_helpers import SUCCEEDED, only_ledger, run_playbook
    proc, ledger_dir = run_playbook(tmp_path, extra_vars=SUCCEEDED)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = only_ledger(ledger_dir)
    env = env_for(ledger_dir)  # the run's configuration: its anchor directory
    whole = subprocess.run([LOCKSTEP, "ledger", "verify", path], capture_output=True, text=True, timeout=60, env=env)
    assert whole.returncode == 0, whole
    assert whole.stdout.rstrip().endswith(", chain intact, complete") and "anchored at seq" in whole.stdout
    lines = open(path).read().splitlines(keepends=True)
    with open(path, "w") as f:  # the tail cut just after a gate: a ledger that looks like a killed run
        f.writelines(lines[:len(lines) // 2])
    cut = subprocess.run([LOCKSTEP, "ledger", "verify", path], capture_output=True, text=True, timeout=60, env=env)
    assert cut.returncode == 1, cut
    assert "BROKEN: truncated: the anchor " in cut.stderr and "record(s) missing from its tail" in cut.stderr, cut

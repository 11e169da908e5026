"""A record nobody can forge without the key (issue 17 item 5).

The forgery: a ``rolled_back`` ledger rewritten as ``succeeded``, its whole chain recomputed, its first record
pointing at an anchor written elsewhere. ``bin/lockstep ledger verify`` finds the anchor where the configuration says
(``$LOCKSTEP_LEDGER_ANCHOR_DIR``), never where the ledger says, so the forgery fails while the genuine ledger passes;
an anchor is required once the anchor directory exists (or the ledger says it was anchored); and with a key
(``$LOCKSTEP_LEDGER_KEY``) the chain is HMAC-SHA256: a chain recomputed without the key fails, a keyed ledger does not
verify without the key, and an unkeyed ledger fails when a key is configured (no downgrade). The callback writes
keyed ledgers from its ``key`` option (env), its key file and a (vaulted) extra var.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys

import pytest

from ansible_collections.lockstep.release.plugins.module_utils import ledger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCKSTEP = os.path.join(REPO, "bin", "lockstep")
VENV_BIN = os.path.dirname(sys.executable)
# Built at run time, so that no key appears in this file or in a traceback of it
KEY = "lockstep-" + "test-key-" + "4f1c9a07d2b8e6" + "35"
OTHER_KEY = "lockstep-" + "other-key-" + "aa11bb22cc33dd44"
RELEASE = [
    {"event": "release_started", "version": "2.1.0", "ts": "t0"},
    {"event": "phase_enter", "phase": "rollout", "ts": "t1"},
    {"event": "gate", "gate": "verify", "passed": False, "halted": [{"host": "h2", "message": "stale"}], "ts": "t2"},
    {"event": "rollback_step", "phase": "rollback", "host": "h2", "task": "rollback : switch back", "status": "changed",
     "ts": "t3"},
    {"event": "release_finished", "status": "rolled_back", "halted_by": {"gate": "verify", "host": "h2"}, "ts": "t4"},
]


@pytest.fixture(autouse=True)
def configuration(tmp_path, monkeypatch):
    """The configured anchor directory (not created: the writer creates it with the first anchor), no key; the
    bin/lockstep processes inherit this environment."""
    monkeypatch.setenv(ledger.ANCHOR_DIR_ENV, str(tmp_path / "anchors"))
    monkeypatch.delenv(ledger.KEY_ENV, raising=False)
    monkeypatch.delenv(ledger.KEY_FILE_ENV, raising=False)


def lockstep(*args, **env):
    return subprocess.run([sys.executable, LOCKSTEP, "ledger", *args], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **env))


def write(path, events=RELEASE, anchors=None, key=None):
    """A genuine ledger, written as the callback writes one: anchored in ``anchors`` (its first record naming the
    anchor), keyed with ``key`` (text)."""
    path = str(path)
    anchor = ledger.anchor_path(str(anchors), path) if anchors else None
    writer = ledger.LedgerWriter(path, anchor=anchor, key=key.encode() if key else None)
    writer.append(dict(events[0], **({"anchor": anchor} if anchor else {})))
    for event in events[1:]:
        writer.append(event)
    writer.close()
    assert writer.anchor_error is None
    return path, anchor


def bodies(path):
    return [{k: v for k, v in r.items() if k not in ("seq", "prev", "hash")} for r in ledger.read_records(path)]


def rechain(path, records, key=None):
    """The forger's tool: write ``records`` as a whole new chain, every ``seq``, ``prev`` and ``hash`` recomputed -
    sha256, or an HMAC with the key he guessed - keeping whatever the records say (a ``mac`` among it)."""
    prev, lines = ledger.GENESIS, []
    for seq, body in enumerate(records):
        rec = dict(body, seq=seq, prev=prev)
        data = ledger.canonical(rec)
        rec["hash"] = hmac.new(key.encode(), data, hashlib.sha256).hexdigest() if key else \
            hashlib.sha256(data).hexdigest()
        prev = rec["hash"]
        lines.append(ledger.line_of(rec))
    with open(path, "wb") as f:
        f.writelines(lines)
    return prev


def as_succeeded(records):
    forged = [dict(r) for r in records]
    assert forged[-1]["status"] == "rolled_back"
    forged[-1].update(status="succeeded", halted_by=None)
    return forged


# --- the anchor: where the configuration says, never where the ledger says ----------------------------------------

def test_the_forgery_fails_and_the_genuine_ledger_passes(tmp_path):
    path, anchor = write(tmp_path / "ledger" / "release.jsonl", anchors=tmp_path / "anchors")
    genuine = lockstep("verify", path)
    assert genuine.returncode == 0, genuine
    assert genuine.stdout.rstrip().endswith("OK, 5 records, anchored at seq 4, chain intact, complete"), genuine
    real_anchor = open(anchor).read()

    # The forger rewrites the outcome, recomputes the whole chain, writes an anchor of his own elsewhere and points
    # the ledger's first record at it.
    fake = str(tmp_path / "elsewhere" / "release.anchor.json")
    records = as_succeeded(bodies(path))
    records[0]["anchor"] = fake
    head = rechain(path, records)
    ledger.write_anchor(fake, path, len(records) - 1, head)
    result = ledger.verify(path)
    assert result.ok and result.complete and result.anchor == fake  # a flawless chain: only the anchor can tell

    assert ledger.check_anchor(result, path).state == "diverged"
    out = lockstep("verify", path)
    assert out.returncode == 1 and out.stdout == "", out
    assert f"BROKEN: record seq 4 differs from the anchor {anchor} " in out.stderr, out
    assert open(anchor).read() == real_anchor  # the real anchor untouched, and the one that decided
    shown = lockstep("show", path)  # show reads what the ledger says; verify is what proves it
    assert "status succeeded" in shown.stdout


def test_a_ledger_naming_an_anchor_where_none_is_configured_fails(tmp_path, monkeypatch):
    # Verifying where the configured anchor directory does not exist: the forged ledger's own anchor is never used,
    # and a ledger that says it was anchored is not taken for an unanchored one.
    monkeypatch.setenv(ledger.ANCHOR_DIR_ENV, str(tmp_path / "no-such-anchors"))
    path, anchor = write(tmp_path / "ledger" / "release.jsonl", anchors=tmp_path / "elsewhere")
    assert ledger.check_anchor(ledger.verify(path), path).state == "missing"
    out = lockstep("verify", path)
    assert out.returncode == 1, out
    assert "but the ledger says it was anchored (the ledger names the anchor %s: not used)" % anchor in out.stderr
    # the operator, not the ledger, may name it
    given = lockstep("verify", "--anchor", anchor, path)
    assert given.returncode == 0 and "anchored at seq 4" in given.stdout, given
    assert lockstep("verify", "--anchor", str(tmp_path / "nothing.json"), path).returncode == 1


def test_a_configured_anchor_directory_makes_an_unanchored_ledger_fail(tmp_path, monkeypatch):
    path, _ = write(tmp_path / "ledger" / "plain.jsonl")  # no anchor, and none named
    assert lockstep("verify", path).returncode == 0  # no anchor directory: nothing anchors here, unanchored is OK
    os.mkdir(tmp_path / "anchors")  # anchors are kept on this controller: every ledger must have its own
    assert ledger.check_anchor(ledger.verify(path), path).state == "missing"
    out = lockstep("verify", path)
    assert out.returncode == 1, out
    assert "BROKEN: no anchor at %s, yet anchors are kept in %s" % (
        ledger.anchor_path(str(tmp_path / "anchors"), path), tmp_path / "anchors") in out.stderr, out
    # anchoring explicitly off in the configuration: unanchored, and said so
    off = lockstep("verify", path, **{ledger.ANCHOR_DIR_ENV: ""})
    assert off.returncode == 0 and "unanchored (anchoring off)" in off.stdout, off
    # the forger who strips the anchor from a genuine ledger meets its real anchor
    genuine, _ = write(tmp_path / "ledger" / "release.jsonl", anchors=tmp_path / "anchors")
    records = as_succeeded(bodies(genuine))
    del records[0]["anchor"]
    rechain(genuine, records)
    out = lockstep("verify", genuine)
    assert out.returncode == 1 and "differs from the anchor" in out.stderr, out


def test_a_record_appended_after_the_anchored_end_fails(tmp_path):
    path, _ = write(tmp_path / "ledger" / "release.jsonl", anchors=tmp_path / "anchors")
    records = bodies(path)
    rechain(path, records + [dict(records[-1], status="succeeded", halted_by=None, ts="t5")])
    assert ledger.verify(path).ok  # one more link of a valid chain
    assert ledger.check_anchor(ledger.verify(path), path).state == "extended"
    out = lockstep("verify", path)
    assert out.returncode == 1, out
    assert "1 record(s) after the anchored head seq 4" in out.stderr and "a release_finished that ended the " \
        "ledger" in out.stderr, out


def test_a_release_finished_past_the_anchor_of_an_unkeyed_ledger_is_not_proven(tmp_path):
    # A killed run's ledger ends at its anchor; a release_finished appended to it sits where a run stopped between
    # its two writes would have left its last record: tolerated, never called complete in a plain chain.
    path, _ = write(tmp_path / "ledger" / "killed.jsonl", events=RELEASE[:4], anchors=tmp_path / "anchors")
    assert lockstep("verify", path).stdout.rstrip().endswith("INCOMPLETE (no release_finished; last event "
                                                             "rollback_step)")
    records = bodies(path)
    rechain(path, records + [dict(RELEASE[-1], status="succeeded", halted_by=None)])
    out = lockstep("verify", path)
    assert out.returncode == 0, out
    assert out.stdout.rstrip().endswith(", chain intact, INCOMPLETE (its last record, release_finished, is past the "
                                        "anchor in an unkeyed chain: not proven)"), out
    # In a keyed chain that record carries the key's MAC: the run's own, complete.
    keyed, anchor = write(tmp_path / "ledger" / "keyed.jsonl", anchors=tmp_path / "anchors", key=KEY)
    result = ledger.verify(keyed, key=KEY.encode())
    ledger.write_anchor(anchor, keyed, 3, result.hashes[3])  # the run stopped before its last anchor write
    out = lockstep("verify", keyed, LOCKSTEP_LEDGER_KEY=KEY)
    assert out.returncode == 0, out
    assert "anchored at seq 3, one record after it" in out.stdout and out.stdout.rstrip().endswith(
        ", keyed chain intact (hmac-sha256), complete"), out


# --- the keyed chain --------------------------------------------------------------------------------------------

@pytest.fixture
def keyed(tmp_path, monkeypatch):
    """A genuine keyed ledger, anchoring off: only the key protects it here."""
    monkeypatch.setenv(ledger.ANCHOR_DIR_ENV, "")
    path, _ = write(tmp_path / "ledger" / "keyed.jsonl", key=KEY)
    return path


def test_a_keyed_ledger_verifies_with_its_key(keyed, tmp_path):
    text = open(keyed).read()
    assert KEY not in text
    records = ledger.read_records(keyed)
    assert records[0]["mac"] == ledger.MAC and all("mac" not in r for r in records[1:])
    assert records[0]["hash"] == hmac.new(KEY.encode(), ledger.canonical(
        {k: v for k, v in records[0].items() if k != "hash"}), hashlib.sha256).hexdigest()
    assert ledger.verify(keyed, key=KEY.encode()).ok
    out = lockstep("verify", keyed, LOCKSTEP_LEDGER_KEY=KEY)
    assert out.returncode == 0, out
    assert out.stdout.rstrip().endswith("OK, 5 records, unanchored (anchoring off): a cut tail would not be detected, "
                                        "keyed chain intact (hmac-sha256), complete"), out
    key_file = tmp_path / "ledger.key"
    key_file.write_text(KEY + "\n")
    assert lockstep("verify", keyed, LOCKSTEP_LEDGER_KEY_FILE=str(key_file)).returncode == 0
    assert lockstep("verify", "--key-file", str(key_file), keyed).returncode == 0
    assert lockstep("show", "--key-file", str(key_file), keyed).returncode == 0
    wrong = lockstep("verify", keyed, LOCKSTEP_LEDGER_KEY=OTHER_KEY)
    assert wrong.returncode == 1 and "BROKEN at record seq 0 (line 1): record MAC does not match" in wrong.stderr


def test_a_keyed_ledger_rewritten_without_the_key_fails_with_it(keyed):
    # The forger keeps "mac" and recomputes the chain with sha256, or with an HMAC under a key he guessed.
    genuine = bodies(keyed)
    for guess in (None, OTHER_KEY):
        rechain(keyed, as_succeeded(genuine), key=guess)
        assert ledger.read_records(keyed)[0]["mac"] == ledger.MAC
        result = ledger.verify(keyed, key=KEY.encode())
        assert not result.ok and result.bad_seq == 0 and "record MAC does not match" in result.reason, result
        out = lockstep("verify", keyed, LOCKSTEP_LEDGER_KEY=KEY)
        assert out.returncode == 1, out
        assert "BROKEN at record seq 0 (line 1): record MAC does not match its content" in out.stderr, out


def test_a_keyed_ledger_does_not_verify_without_the_key(keyed):
    result = ledger.verify(keyed)
    assert not result.ok and result.no_key
    out = lockstep("verify", keyed)
    assert out.returncode == 1 and out.stdout == "", out
    assert "CANNOT VERIFY: keyed ledger (hmac-sha256): no key to verify its MAC" in out.stderr, out
    shown = lockstep("show", keyed)
    assert shown.returncode == 1 and "WARNING: not verified: keyed ledger" in shown.stderr, shown
    # nor does one rewritten with plain sha256 behind its "mac": no key, no verdict
    rechain(keyed, as_succeeded(bodies(keyed)))
    assert ledger.verify(keyed).no_key
    out = lockstep("verify", keyed)
    assert out.returncode == 1 and "CANNOT VERIFY" in out.stderr, out


def test_a_keyed_ledger_downgraded_to_a_plain_chain_fails_with_the_key(keyed, tmp_path):
    records = as_succeeded(bodies(keyed))
    del records[0]["mac"]
    rechain(keyed, records)
    assert ledger.verify(keyed).ok  # a valid plain chain: without the key, nothing can tell
    result = ledger.verify(keyed, key=KEY.encode())
    assert not result.ok and result.downgraded and result.bad_seq == 0
    out = lockstep("verify", keyed, LOCKSTEP_LEDGER_KEY=KEY)
    assert out.returncode == 1, out
    assert "BROKEN at record seq 0 (line 1): unkeyed ledger but a key is configured" in out.stderr, out
    # a ledger written without a key fails the same way once a key is configured
    plain, _ = write(tmp_path / "ledger" / "plain.jsonl")
    assert lockstep("verify", plain, LOCKSTEP_LEDGER_KEY=KEY).returncode == 1
    assert lockstep("verify", plain).returncode == 0


def test_key_rules(tmp_path):
    assert ledger.load_key() is None and ledger.load_key("", "") is None
    assert ledger.load_key(" " + KEY + "\n") == KEY.encode()
    with pytest.raises(ValueError, match="shorter than 16 bytes"):
        ledger.load_key("short-key")
    with pytest.raises(ValueError, match="cannot read the ledger key file"):
        ledger.load_key(key_file=str(tmp_path / "missing.key"))
    path, _ = write(tmp_path / "ledger" / "keyed.jsonl", key=KEY)
    out = lockstep("verify", path, LOCKSTEP_LEDGER_KEY="short-key")
    assert out.returncode == 1 and "shorter than 16 bytes" in out.stderr, out
    out = lockstep("verify", path, LOCKSTEP_LEDGER_KEY_FILE=str(tmp_path / "missing.key"))
    assert out.returncode == 1 and "cannot read the ledger key file" in out.stderr, out
    # only the writer says whether a chain is keyed; an unknown mode is refused
    assert "mac" not in ledger.seal({"event": "x", "mac": ledger.MAC}, 0, ledger.GENESIS)
    records = bodies(path)
    records[0]["mac"] = "sha1"
    rechain(path, records)
    assert "unknown chain mode" in ledger.verify(path, key=KEY.encode()).reason


def test_a_lock_break_is_keyed_like_the_releases(tmp_path):
    proc = subprocess.Popen(["true"])
    proc.wait()
    lock = {"run_id": "20260801T093000-%d-2.2.0" % proc.pid, "user": "ops", "controller": socket.gethostname(),
            "pid": proc.pid, "version": "2.2.0", "started": "2026-08-01T09:30:00Z"}
    lock_path = tmp_path / "release.lock"
    lock_path.write_text(json.dumps(lock))
    env = dict(os.environ, LOCKSTEP_LEDGER_DIR=str(tmp_path / "ledger"))
    refused = subprocess.run([sys.executable, LOCKSTEP, "lock", "break", "--run-id", lock["run_id"], str(lock_path)],
                             capture_output=True, text=True, timeout=60, env=dict(env, LOCKSTEP_LEDGER_KEY="short"))
    assert refused.returncode == 1 and "lock NOT broken" in refused.stderr, refused
    assert lock_path.exists() and not (tmp_path / "ledger").exists()
    out = subprocess.run([sys.executable, LOCKSTEP, "lock", "break", "--run-id", lock["run_id"], str(lock_path)],
                         capture_output=True, text=True, timeout=60, env=dict(env, LOCKSTEP_LEDGER_KEY=KEY))
    assert out.returncode == 0 and not lock_path.exists(), out
    (path,) = (tmp_path / "ledger").glob("*.jsonl")
    assert ledger.read_records(str(path))[0]["mac"] == ledger.MAC
    verified = lockstep("verify", str(path), LOCKSTEP_LEDGER_KEY=KEY)
    assert verified.returncode == 0 and "anchored at seq 0, keyed chain intact (hmac-sha256), complete" in \
        verified.stdout, verified
    assert "CANNOT VERIFY" in lockstep("verify", str(path)).stderr


# --- the callback writes keyed ledgers ---------------------------------------------------------------------------

def run_callback(tmp_path, name, *args, **env):
    """One real ansible-playbook on localhost with the ledger callback; returns (process, ledger path or None)."""
    work = tmp_path / name
    work.mkdir()
    (work / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = False\n")
    (work / "play.yml").write_text(json.dumps([{"name": "keyed", "hosts": "localhost", "gather_facts": False,
                                                "tasks": [{"ansible.builtin.debug": {"msg": "task-ran"}}]}]))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_"))}
    base.update(ANSIBLE_CONFIG=str(work / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "collections"),
                ANSIBLE_CALLBACKS_ENABLED="lockstep.release.ledger", ANSIBLE_HOME=str(work / "home"),
                ANSIBLE_LOCAL_TEMP=str(work / "tmp"), ANSIBLE_NOCOLOR="1", LOCKSTEP_LEDGER_DIR=str(work / "ledger"),
                LOCKSTEP_LEDGER_ANCHOR_DIR=str(tmp_path / "anchors"))
    base.update(env)
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", "play.yml",
                           *args], cwd=work, env=base, capture_output=True, text=True, timeout=300)
    files = sorted((work / "ledger").glob("*.jsonl")) if (work / "ledger").exists() else []
    return proc, str(files[0]) if files else None


def test_the_callback_keys_its_ledger(tmp_path):
    key_file = tmp_path / "ledger.key"
    key_file.write_text(OTHER_KEY + "\n")
    vault_password = tmp_path / "vault-password"
    vault_password.write_text("correct horse battery staple\n")
    vaulted_key = KEY[::-1]
    encrypted = subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), "encrypt_string", "--vault-password-file",
                                str(vault_password), "--name", "lockstep_ledger_key", vaulted_key],
                               capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert encrypted.returncode == 0, encrypted.stderr
    (tmp_path / "key-vars.yml").write_text("---\n" + encrypted.stdout)
    plain_var_key = OTHER_KEY[::-1]
    runs = {  # name: (arguments, environment, the key the ledger must be keyed with)
        "env": ((), {"LOCKSTEP_LEDGER_KEY": KEY}, KEY),
        "file": ((), {"LOCKSTEP_LEDGER_KEY_FILE": str(key_file)}, OTHER_KEY),
        "extra-var": (("-e", "lockstep_ledger_key=" + plain_var_key), {"LOCKSTEP_LEDGER_KEY": KEY}, plain_var_key),
        "vaulted": (("-e", "@" + str(tmp_path / "key-vars.yml"), "--vault-password-file", str(vault_password)), {},
                    vaulted_key),
    }
    for name, (args, env, key) in runs.items():
        proc, path = run_callback(tmp_path, name, *args, **env)
        assert proc.returncode == 0 and path, (name, proc.stdout + proc.stderr)
        text = open(path).read()
        assert key not in text and KEY not in text and OTHER_KEY not in text, name
        first = ledger.read_records(path)[0]
        assert first["mac"] == ledger.MAC, name
        if name in ("extra-var", "vaulted"):
            assert first["extra_vars"]["lockstep_ledger_key"] == ledger.REDACTED, first["extra_vars"]
        verified = lockstep("verify", path, LOCKSTEP_LEDGER_KEY=key)  # the anchors: as configured (fixture)
        assert verified.returncode == 0, (name, verified)
        assert "anchored at seq" in verified.stdout and verified.stdout.rstrip().endswith(
            "keyed chain intact (hmac-sha256), complete"), (name, verified)
        keyless = lockstep("verify", path)
        assert keyless.returncode == 1 and "CANNOT VERIFY" in keyless.stderr, (name, keyless)
    # A key that cannot be used is a ledger that cannot be created: no ledger keyed otherwise than asked, the records
    # go to the fallback and the run's tasks are told (lockstep's plan refuses on it; this playbook has none).
    proc, path = run_callback(tmp_path, "short", LOCKSTEP_LEDGER_KEY="short-key", TMPDIR=str(tmp_path))
    assert path is None, proc.stdout + proc.stderr
    assert "shorter than 16 bytes" in proc.stdout + proc.stderr
    (fallback,) = tmp_path.glob("lockstep-ledger-fallback-*.jsonl")
    recs = ledger.read_records(str(fallback))
    assert recs[0]["event"] == "ledger_fallback" and "shorter than 16 bytes" in recs[0]["message"], recs[0]
    assert recs[-1]["event"] == "release_finished" and recs[-1]["status"] == "ledger_failed", recs[-1]

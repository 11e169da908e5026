"""The ledger's anchor (its head kept outside the ledger directory) and the modes of what the writer creates."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.lockstep.release.plugins.module_utils import ledger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCKSTEP = os.path.join(REPO, "bin", "lockstep")
EVENTS = [{"event": "release_started", "ts": "t0"}, {"event": "gate", "gate": "preflight", "passed": True},
          {"event": "wave", "index": 1}, {"event": "release_finished", "status": "succeeded"}]


@pytest.fixture(autouse=True)
def configuration(tmp_path, monkeypatch):
    """The anchor directory these tests configure (verify finds anchors only there, never where a ledger says), no
    key; bin/lockstep inherits both."""
    monkeypatch.setenv(ledger.ANCHOR_DIR_ENV, str(tmp_path / "anchors"))
    monkeypatch.delenv(ledger.KEY_ENV, raising=False)
    monkeypatch.delenv(ledger.KEY_FILE_ENV, raising=False)


def anchored_ledger(tmp_path, events=EVENTS):
    path = str(tmp_path / "ledger" / "a.jsonl")
    anchor = ledger.anchor_path(str(tmp_path / "anchors"), path)
    writer = ledger.LedgerWriter(path, anchor=anchor)
    writer.append(dict(events[0], anchor=anchor))
    for event in events[1:]:
        writer.append(event)
    writer.close()
    assert writer.anchor_error is None
    return path, anchor


def cut(path, keep):
    lines = open(path).read().splitlines(keepends=True)
    with open(path, "w") as f:
        f.writelines(lines[:keep])


def verify(*args):
    return subprocess.run([sys.executable, LOCKSTEP, "ledger", "verify", *args], capture_output=True, text=True,
                          timeout=60)


def test_whole_ledger_is_anchored_and_a_cut_tail_is_truncated(tmp_path):
    path, anchor = anchored_ledger(tmp_path)
    assert ledger.check_anchor(ledger.verify(path), path).state == "anchored"
    whole = verify(path)
    assert whole.returncode == 0 and "anchored at seq 3, chain intact, complete" in whole.stdout, whole
    cut(path, 2)
    result = ledger.verify(path)
    assert result.ok  # the chain alone cannot tell
    assert ledger.check_anchor(result, path).state == "truncated"
    out = verify(path)
    assert out.returncode == 1, out
    assert "BROKEN: truncated: the anchor %s holds record seq 3 but the ledger ends at seq 1 (2 record(s) missing " \
        "from its tail)" % anchor in out.stderr


def test_one_record_past_the_anchor_is_a_stopped_run_more_is_not(tmp_path):
    path, anchor = anchored_ledger(tmp_path)
    # a run stopped between its ledger write and its anchor write: the anchor one record behind
    ledger.write_anchor(anchor, path, 2, ledger.verify(path).hashes[2])
    assert ledger.check_anchor(ledger.verify(path), path).state == "behind"
    assert verify(path).returncode == 0
    ledger.write_anchor(anchor, path, 1, ledger.verify(path).hashes[1])
    assert ledger.check_anchor(ledger.verify(path), path).state == "extended"
    assert verify(path).returncode == 1


def test_a_rewritten_ledger_diverges_and_a_removed_anchor_is_missing(tmp_path):
    path, anchor = anchored_ledger(tmp_path)
    records = ledger.read_records(path)
    os.unlink(path)
    forged = ledger.LedgerWriter(path)  # a new, valid chain with the same first record and another history
    forged.append({k: v for k, v in records[0].items() if k not in ("seq", "prev", "hash")})
    for _ in range(3):
        forged.append({"event": "release_finished", "status": "succeeded", "ts": "t9"})
    forged.close()
    assert ledger.check_anchor(ledger.verify(path), path).state == "diverged"
    os.unlink(anchor)
    assert ledger.check_anchor(ledger.verify(path), path).state == "missing"
    out = verify(path)
    assert out.returncode == 1 and "BROKEN: no anchor at %s, yet anchors are kept in " % anchor in out.stderr, out
    os.rmdir(os.path.dirname(anchor))  # no anchor directory at all: the ledger still says it was anchored
    out = verify(path)
    assert out.returncode == 1 and "but the ledger says it was anchored" in out.stderr, out


def test_a_ledger_without_anchor_is_unanchored(tmp_path, monkeypatch):
    monkeypatch.setenv(ledger.ANCHOR_DIR_ENV, str(tmp_path / "anchors"))
    path = str(tmp_path / "plain.jsonl")
    writer = ledger.LedgerWriter(path)
    for event in EVENTS:
        writer.append(event)
    writer.close()
    env = dict(os.environ)
    out = subprocess.run([sys.executable, LOCKSTEP, "ledger", "verify", path], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0 and "unanchored (no anchor at " in out.stdout, out
    required = subprocess.run([sys.executable, LOCKSTEP, "ledger", "verify", "--require-anchor", path],
                              capture_output=True, text=True, timeout=60, env=env)
    assert required.returncode == 1 and "NOT PROVEN COMPLETE" in required.stderr, required


def test_modes_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        existing = tmp_path / "existing"
        existing.mkdir(mode=0o755)
        path, anchor = anchored_ledger(tmp_path)
        writer = ledger.LedgerWriter(str(existing / "b.jsonl"))
        writer.close()
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, 0o1777)
        ledger.LedgerWriter(str(shared / "fallback.jsonl"), private_directory=False).close()
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(path) == 0o600 and mode(os.path.dirname(path)) == 0o700
    assert mode(anchor) == 0o600 and mode(os.path.dirname(anchor)) == 0o700
    assert mode(existing / "b.jsonl") == 0o600 and mode(existing) == 0o700  # an existing ledger directory tightened
    assert mode(shared / "fallback.jsonl") == 0o600 and mode(shared) == 0o1777  # a shared one left alone

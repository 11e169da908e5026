"""Unit tests of plugins/module_utils/ledger.py: hash chain, secrets, summary table (golden files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.lockstep.release.plugins.module_utils import ledger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


GOLDEN = os.path.join(REPO, "tests", "unit", "golden")


def check_golden(name, text):
    """Compare with tests/unit/golden/<name>; LOCKSTEP_REGEN_GOLDEN=1 rewrites the file instead."""
    path = os.path.join(GOLDEN, name)
    if os.environ.get("LOCKSTEP_REGEN_GOLDEN") == "1":
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        assert text == f.read(), f"{name} differs from the golden file (LOCKSTEP_REGEN_GOLDEN=1 regenerates it)"


def write_ledger(path, events):
    w = ledger.LedgerWriter(str(path))
    for ev in events:
        w.append(ev)
    w.close()
    return str(path)


EVENTS = [
    {"event": "release_started", "version": "1.1.0", "ts": "t0"},
    {"event": "phase_enter", "phase": "preflight", "ts": "t1"},
    {"event": "gate", "gate": "preflight", "passed": True, "hosts": {"h1": {}}, "halted": [], "ts": "t2"},
    {"event": "phase_leave", "phase": "preflight", "ts": "t3"},
    {"event": "release_finished", "status": "succeeded", "ts": "t4"},
]


def test_records_are_chained(tmp_path):
    path = write_ledger(tmp_path / "a.jsonl", EVENTS)
    recs = ledger.read_records(path)
    assert [r["seq"] for r in recs] == [0, 1, 2, 3, 4]
    assert recs[0]["prev"] == ledger.GENESIS
    for a, b in zip(recs, recs[1:], strict=False):
        assert b["prev"] == a["hash"]
    for r in recs:
        assert r["hash"] == ledger.record_hash(r)
    result = ledger.verify(path)
    assert result.ok and result.complete and result.records == 5


def test_canonical_form_is_sorted_and_compact():
    assert ledger.canonical({"b": 1, "a": [1, {"d": 2, "c": "é"}]}) == '{"a":[1,{"c":"é","d":2}],"b":1}'.encode()
    rec = ledger.seal({"event": "x"}, 0, ledger.GENESIS)
    assert ledger.line_of(rec) == ledger.canonical(rec) + b"\n"


@pytest.mark.parametrize("tamper, bad_seq", [
    ("edit", 2), ("delete", 2), ("swap", 2), ("insert", 3), ("duplicate", 3), ("garbage", 2), ("drop_first", 0),
])
def test_tampering_names_the_first_bad_record(tmp_path, tamper, bad_seq):
    path = write_ledger(tmp_path / "a.jsonl", EVENTS)
    with open(path) as f:
        lines = f.read().splitlines(keepends=True)
    if tamper == "edit":
        lines[2] = lines[2].replace('"passed":true', '"passed":false')
    elif tamper == "delete":
        del lines[2]
    elif tamper == "swap":
        lines[2], lines[3] = lines[3], lines[2]
    elif tamper == "insert":
        lines.insert(2, ledger.line_of(ledger.seal({"event": "forged"}, 2, json.loads(lines[1])["hash"])).decode())
    elif tamper == "duplicate":
        lines.insert(3, lines[2])
    elif tamper == "garbage":
        lines[2] = "not json\n"
    elif tamper == "drop_first":
        del lines[0]
    with open(path, "w") as f:
        f.writelines(lines)
    result = ledger.verify(path)
    assert not result.ok
    assert result.bad_seq == bad_seq, result
    out = subprocess.run([sys.executable, os.path.join(REPO, "bin", "lockstep"), "ledger", "verify", path],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert f"BROKEN at record seq {bad_seq} " in out.stderr


def test_incomplete_and_empty_ledgers(tmp_path):
    path = write_ledger(tmp_path / "a.jsonl", EVENTS[:3])
    result = ledger.verify(path)
    assert result.ok and not result.complete and result.last_event == "gate"
    empty = tmp_path / "b.jsonl"
    empty.write_text("")
    assert not ledger.verify(str(empty)).ok
    torn = tmp_path / "c.jsonl"
    torn.write_bytes(open(path, "rb").read() + b'{"seq":3')
    r = ledger.verify(str(torn))
    assert not r.ok and r.bad_seq == 3 and "newline" in r.reason


def test_writer_refuses_to_reuse_a_file(tmp_path):
    write_ledger(tmp_path / "a.jsonl", EVENTS[:1])
    with pytest.raises(FileExistsError):
        ledger.LedgerWriter(str(tmp_path / "a.jsonl"))


def test_newest_ledger(tmp_path):
    a = write_ledger(tmp_path / "a.jsonl", EVENTS)
    b = write_ledger(tmp_path / "b.jsonl", EVENTS)
    os.utime(a, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    os.utime(b, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    (tmp_path / "notes.txt").write_text("x")
    assert ledger.newest_ledger(str(tmp_path)) == a
    assert ledger.newest_ledger(str(tmp_path / "missing")) is None


def test_redact_and_scrub():
    patterns = ledger.DEFAULT_SECRET_PATTERNS
    redacted, secrets = ledger.redact_vars(
        {"DB_Password": "hunter2hunter2", "api_token": ["tok-123456"], "vault_x": {"k": "vvvvvv"},
         "nested": {"aws_secret_key": "AKIA-SECRET", "region": "eu"}, "lockstep_version": "1.1.0", "short": "ab"},
        patterns)
    assert redacted == {"DB_Password": "********", "api_token": "********", "vault_x": "********",
                        "nested": {"aws_secret_key": "********", "region": "eu"}, "lockstep_version": "1.1.0",
                        "short": "ab"}
    assert secrets == {"hunter2hunter2", "tok-123456", "vvvvvv", "AKIA-SECRET"}
    assert ledger.scrub({"msg": "login hunter2hunter2 failed", "list": ["x tok-123456"], "n": 3,
                         "hunter2hunter2": True}, secrets) == {
        "msg": "login ******** failed", "list": ["x ********"], "n": 3, "********": True}
    assert ledger.is_secret_name("MY_TOKEN", ["*token*"]) and not ledger.is_secret_name("tokenizer", ["*_token"])


def test_state_version():
    assert ledger.state_version({"version": "1.0"}) == "1.0"
    assert ledger.state_version({"active_version": "1.0", "running_version": "1.1"}) == "1.1"
    assert ledger.state_version({"running": {"version": "2.0"}}) == "2.0"
    assert ledger.state_version({"x": 1}) is None and ledger.state_version("1.0") is None


SUMMARIES = {
    "summary_rolled_back.txt": {
        "status": "rolled_back", "version_before": "2.0.0", "version_after": "2.0.0",
        "hosts": {
            "h10": {"before": "2.0.0", "after": "2.0.0", "phase": "rollback", "result": "rolled_back"},
            "h2": {"before": "2.0.0", "after": "2.1.0", "phase": "smoke", "result": "failed"},
            "h1": {"before": "2.0.0", "after": "2.0.0", "phase": "rollback", "result": "rolled_back"},
            "lb": {"before": None, "after": None, "phase": "finish", "result": "ok"},
        },
        "halted_by": {"gate": "smoke", "host": "h2", "message": "child orders 3 for 1 parent (expected 1)"},
        "ledger": ".lockstep/ledger/20250101T000000000000Z-release-1.jsonl",
    },
    "summary_succeeded.txt": {
        "status": "succeeded", "version_before": "2.0.0", "version_after": "2.1.0",
        "hosts": {"h1": {"before": "2.0.0", "after": "2.1.0", "phase": "finish", "result": "released"}},
        "halted_by": None,
    },
    "summary_empty.txt": {"status": "ledger_failed", "hosts": {}},
}


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_summary_golden(name):
    check_golden(name, ledger.format_summary(SUMMARIES[name]) + "\n")


def test_story_golden(tmp_path):
    path = write_ledger(tmp_path / "a.jsonl", EVENTS + [
        {"event": "host_failed", "host": "h2", "phase": "smoke", "task": "smoke : orders", "message": "boom",
         "ignored": False, "ts": "t5"},
        {"event": "wave", "index": 1, "count": 2, "done": 1, "total": 2, "ts": "t6"},
    ])
    check_golden("story.txt", ledger.format_story(ledger.read_records(path)) + "\n")

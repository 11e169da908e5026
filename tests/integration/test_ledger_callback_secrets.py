"""Secrets (a secret extra var, a no_log task's values) never reach the ledger, the JUnit file or the summary."""

from __future__ import annotations

import pytest
from _ledger_helpers import only_ledger, records, run_playbook, summary_block

pytestmark = pytest.mark.without_fleet  # localhost only: runs beside the fleet tests (tests/run_all.py)

SECRET_EXTRA_VAR = "Sup3rS3cretDbPassw0rd"
NO_LOG_VALUE = "NoLogValue4711"
NO_LOG_FACT = "Ticket" + "FromNoLog8812"  # set by a no_log set_fact (tests/integration/ledger_project/nolog.yml)
NO_LOG_OUTPUT = "Output" + "OfNoLog6633"  # registered by a no_log command


def test_secrets_are_absent_from_every_output(tmp_path):
    junit = tmp_path / "junit.xml"
    proc, ledger_dir = run_playbook(
        tmp_path, playbook="nolog.yml",
        extra_vars={"db_password": SECRET_EXTRA_VAR, "api_token": "tok-" + SECRET_EXTRA_VAR, "release_note": "hello"},
        LOCKSTEP_LEDGER_JUNIT_FILE=junit)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = only_ledger(ledger_dir)
    ledger_text = open(path).read()
    junit_text = junit.read_text()
    summary = summary_block(proc.stdout, path)

    for name, text in (("ledger", ledger_text), ("junit", junit_text), ("summary", summary)):
        assert SECRET_EXTRA_VAR not in text, name
        assert NO_LOG_VALUE not in text, name
        assert NO_LOG_FACT not in text and NO_LOG_OUTPUT not in text, name
    # nor any line this callback prints during the run (ansible-core 2.19's own default callback does print the
    # message of a failing no_log `fail` action in its "[ERROR]: Task failed" line: upstream, not ours)
    for line in proc.stdout.splitlines():
        if line.startswith("lockstep"):
            assert NO_LOG_VALUE not in line and SECRET_EXTRA_VAR not in line

    recs = records(path)
    extra = recs[0]["extra_vars"]
    assert extra["db_password"] == "********" and extra["api_token"] == "********"
    assert extra["release_note"] == "hello"
    # both failures are recorded (their rescues let the play go on; they are failures, not ignored ones)
    assert [(r["host"], r["task"], r["ignored"]) for r in recs if r["event"] == "host_failed"] == [
        ("h1", "A no_log task that fails with a secret in its message", False),
        ("h1", "A task that fails on a message quoting the secret extra var", False),
        ("h1", "A task that fails on a message quoting no_log values", False)]
    assert "rescued=3" in proc.stdout
    failed = {(r["host"], r["task"]): r["message"] for r in recs if r["event"] == "host_failed"}
    assert failed[("h1", "A no_log task that fails with a secret in its message")] == "output hidden (no_log)"
    # a non-no_log message quoting the secret extra var is scrubbed
    assert failed[("h1", "A task that fails on a message quoting the secret extra var")] == \
        "cannot log in with ********"
    assert failed[("h1", "A task that fails on a message quoting no_log values")] == "refused ******** and ********"
    # the no_log gate result is not recorded at all
    assert [r["gate"] for r in recs if r["event"] == "gate"] == ["preflight"]


FACT_SECRET = "Fact" + "Secret9017"  # set by a set_fact (tests/integration/ledger_project/facts_between_plays.yml)
REGISTERED_SECRET = "Registered" + "Token5005"  # registered under a secret name there
PLAY_SECRET = "h1Play" + "Secret321"  # a play's own variable there, a template of the host's name


def test_a_secret_named_fact_or_register_of_one_play_is_scrubbed_in_the_next(tmp_path):
    """The ledger reads the hosts' variables at a play's start only where a task since the last read may have
    changed them (a set_fact or register of a name not lockstep's own): a play's secret-named fact, and another's
    secret-named register, are secrets of every later play; a play's own secret-named variable, a template, is
    rendered on each of its hosts all the same."""
    proc, ledger_dir = run_playbook(tmp_path, playbook="facts_between_plays.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = only_ledger(ledger_dir)
    text = open(path).read()
    assert FACT_SECRET not in text and REGISTERED_SECRET not in text and PLAY_SECRET not in text
    failed = [r["message"] for r in records(path) if r["event"] == "host_failed"]
    assert failed == ["cannot use ********"] * 3, failed

"""No setting a user brings turns a refusal into a crash or a halt into a mixed fleet (issue 17, item 3).

Judged on the real fleet by what every host serves afterwards, not by what the run says of itself.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from release_helpers import REPO, Run, assert_whole_fleet_on, env, records_in, release, release_cmd
from test_release_halts import stale_pidfile

from ansible_collections.lockstep.release.plugins.module_utils import ledger


def pids(fleet):
    return {h["name"]: h["service_pid"] for h in fleet.status()["hosts"]}


REFUSED_INPUTS = [
    ({"lockstep_waves": ["banana", "100%"]}, "wave 'banana' is neither a host count"),
    ({"lockstep_waves": "banana"}, "lockstep_waves must be a non-empty list"),
    ({"lockstep_canary": "x"}, "wave 'x' is neither a host count"),
    ({"lockstep_canary": 5}, "lockstep_canary 5 is larger than the fleet (4 host(s)"),
    ({"lockstep_canary": 4}, "lockstep_canary 4 is all of the fleet"),
    ({"lockstep_keep_releases": "abc"}, "argument 'lockstep_keep_releases' is of type str"),
]


def test_every_refused_input_ends_as_a_refusal_with_a_complete_ledger(fleet, tmp_path):
    # One fleet for every input: a refusal touches nothing, so each finds the fleet as the first did.
    fleet.up(hosts=4, version="1.0.0")
    before = pids(fleet)
    for extra, reason in REFUSED_INPUTS:
        run = release(tmp_path, "2.1.0", extra=extra)
        assert run.rc not in (0, 250) and "Traceback" not in run.out, (extra, run)
        assert run.status == "refused", (extra, run)
        finished = [r for r in run.records if r.get("event") == "release_finished"][-1]
        assert reason in finished["halted_by"]["message"], (extra, finished)
        files = sorted((tmp_path / "ledger").glob("*.jsonl"))
        assert ledger.verify(str(files[-1])).complete, files
        assert not os.path.exists(os.path.join(fleet.dir, "lockstep-release.lock")), "the lock was left behind"
    assert pids(fleet) == before  # not one service restarted
    assert_whole_fleet_on(fleet, "1.0.0")


def user_playbook(tmp_path, keywords):
    """lockstep's release playbook as a team's own copy, with ``keywords`` set on every play."""
    with open(os.path.join(REPO, "playbooks", "release.yml")) as f:
        plays = yaml.safe_load(f)
    for play in plays:
        if "hosts" in play:  # an import_playbook entry takes no play keywords
            play.update(keywords)
    path = tmp_path / "team-release.yml"
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return str(path)


def run_playbook(tmp_path, cmd, **environment):
    proc = subprocess.run(cmd, cwd=REPO, env=env(tmp_path, **environment), capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    return Run(proc.returncode, proc.stdout + proc.stderr, records_in(tmp_path))


@pytest.mark.parametrize("how", ["any_errors_fatal", "ignore_errors"])
def test_a_halt_under_error_settings_still_rolls_every_host_back_and_no_wave_runs_past_it(fleet, tmp_path, how):
    # Knight's mixed fleet under one common setting: one host's restart silently does nothing. In the last wave
    # with others (any_errors_fatal would fail its batch-mates out of the rollback), or alone in the middle wave
    # (ignore_errors would let the next wave start past the halt). any_errors_fatal comes both ways a team sets it,
    # ANSIBLE_ANY_ERRORS_FATAL (the default of every play, which lockstep's plays pin) and the keyword on every
    # play of a team's copy (which overrides that pin): the second is the harder case, and one run holds both.
    fleet.up(hosts=4, version="1.0.0")
    stale = "h2" if how == "ignore_errors" else "h3"
    waves = [1, 1, "100%"] if how == "ignore_errors" else [1, "100%"]
    stale_pidfile(fleet, stale)
    before = pids(fleet)
    cmd = release_cmd("2.1.0") + ["-e", json.dumps({"lockstep_waves": waves})]
    environment = {}
    if how == "any_errors_fatal":
        environment["ANSIBLE_ANY_ERRORS_FATAL"] = "True"
        cmd[3] = user_playbook(tmp_path, {"any_errors_fatal": True, "max_fail_percentage": 0,
                                          "force_handlers": True})
    else:
        cmd[3] = user_playbook(tmp_path, {"ignore_errors": True})
    run = run_playbook(tmp_path, cmd, **environment)
    assert run.rc != 0, run
    assert run.status == "rolled_back", run
    assert_whole_fleet_on(fleet, "1.0.0")
    if how == "ignore_errors":
        after = pids(fleet)
        assert (after["h3"], after["h4"]) == (before["h3"], before["h4"]), "a wave ran past the halt"


def test_a_task_selection_is_refused_never_a_silent_success(fleet, tmp_path):
    fleet.up(hosts=2, version="1.0.0")
    before = pids(fleet)
    for selection in (["--tags", "deploy"], ["--skip-tags", "always"],
                      ["--start-at-task", "Preflight | take the fleet's release lock"]):
        run = run_playbook(tmp_path, release_cmd("2.1.0") + selection)
        assert run.rc != 0, (selection, run)
        assert run.status == "refused", (selection, run)
        finished = run.records[-1]
        assert finished["halted_by"]["gate"] == "input", (selection, finished)
        assert "would run part of the release without its gates" in finished["halted_by"]["message"], finished
        assert not os.path.exists(os.path.join(fleet.dir, "lockstep-release.lock")), "the lock was left behind"
    assert pids(fleet) == before
    assert_whole_fleet_on(fleet, "1.0.0")

"""Every input the plan refuses ends as a refusal (issue 17, item 3): the parts that need no fleet."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from ansible import context
from ansible.module_utils.common.collections import ImmutableDict
from test_load_balancer_interface import FLEET, plan

from ansible_collections.lockstep.release.plugins.filter.lockstep import serial
from ansible_collections.lockstep.release.plugins.plugin_utils.guard import selection_problem


def test_serial_is_the_plan_or_one_batch_when_the_plan_refuses_the_waves():
    assert serial(1, ["25%", "100%"]) == [1, "25%", "100%"]
    # ansible-core would crash on these in serial (exit 250, no status): one batch, whose tasks all skip.
    for canary, waves in ((1, ["banana", "100%"]), (1, "banana"), ("x", ["100%"]), (1, []), (None, None)):
        assert serial(canary, waves) == ["100%"], (canary, waves)


def test_a_canary_of_the_whole_fleet_or_more_is_refused(run_play, tmp_path):
    n = len(FLEET)
    run_play(
        (dict(plan(tmp_path, lb="none", canary=n + 1)), [
            "out is failed", "'lockstep_canary %d is larger than the fleet' in out.msg" % (n + 1)]),
        (dict(plan(tmp_path, lb="none", canary=n)), [
            "out is failed", "'is all of the fleet' in out.msg"]),
        (dict(plan(tmp_path, lb="none", canary=1)), ["out is not failed"]),
    )


@pytest.fixture
def cli_args():
    saved = context.CLIARGS

    def use(**args):
        context.CLIARGS = ImmutableDict(dict({"tags": ("all",), "skip_tags": (), "start_at_task": None,
                                              "step": False}, **args))
    yield use
    context.CLIARGS = saved


@pytest.mark.parametrize("args, named", [
    ({"tags": ("deploy",)}, "--tags deploy"),
    ({"skip_tags": ("notest", "always")}, "--skip-tags always"),
    ({"start_at_task": "Rollout | wave"}, "--start-at-task 'Rollout | wave'"),
    ({"step": True}, "--step"),
])
def test_a_task_selection_is_refused(cli_args, args, named):
    cli_args()
    assert selection_problem() is None
    cli_args(skip_tags=("molecule-notest", "notest"))  # molecule's: no lockstep task carries them
    assert selection_problem() is None
    cli_args(**args)
    assert named in selection_problem() and "without its gates and rollback" in selection_problem()


def test_a_release_the_ledger_does_not_record_is_refused(run_play, tmp_path):
    # run_play's ansible-playbook has no callback enabled: exactly an installed user's project without the line.
    run_play(
        (dict(plan(tmp_path, lb="none", require_ledger=True)), [
            "out is failed", "'the ledger is not recording this run' in out.msg",
            "'callbacks_enabled = lockstep.release.ledger' in out.msg"]),
        (dict(plan(tmp_path, lb="none", require_ledger=False)), ["out is not failed"]),
    )


def test_the_plans_input_refusals_each_name_their_cause(run_play, tmp_path):
    # Each refused before any host is contacted, by the plan itself (its message), never by a later crash.
    (tmp_path / "2.0.0.manifest.json").write_text('{"version": "1.9.9"}')
    (tmp_path / "3.0.0.manifest.json").write_text('{"version": "3.0.0", "sha256": "0"}')
    (tmp_path / "4.0.0.tar.gz").write_bytes(b"changed after the manifest was written")
    (tmp_path / "4.0.0.manifest.json").write_text('{"version": "4.0.0", "sha256": "%s"}' % ("a" * 64))
    base = plan(tmp_path, lb="none")["lockstep.release.plan"]

    def case(**args):
        return {"lockstep.release.plan": dict(base, **args)}

    run_play(
        (case(version="../1.0.0"), ["out is failed", "'is not a plain version string' in out.msg"]),
        (case(group_hosts=[]), ["out is failed", "'has no hosts: there is no fleet' in out.msg"]),
        (case(version="9.9.9"), ["out is failed", "'unknown version 9.9.9: no manifest' in out.msg"]),
        (case(version="2.0.0"), ["out is failed", "out.msg is search(\"is for version '1.9.9'\")"]),
        (case(version="3.0.0"), ["out is failed", "'artifact ' in out.msg and 'is missing' in out.msg"]),
        (case(version="4.0.0"), ["out is failed", "'is corrupted' in out.msg and 'artifact-integrity' in out.msg"]),
        (case(rehearse=False), ["out is failed", "'lockstep_rehearse_reason is empty' in out.msg"]),
        (case(rehearse=False, rehearse_reason="CHG-1"),
         ["out is not failed", "'rollback rehearsal: OFF (CHG-1)' in out.msg"]),
        (case(), ["out is not failed", "'rollback rehearsal: on the canary after its gate' in out.msg"]),
    )


@pytest.mark.parametrize("playbook", ["release.yml", "rollback.yml", "halt.yml", "resume.yml", "verify.yml"])
def test_an_inventory_without_the_fleet_is_refused_never_an_exit_0(playbook, tmp_path):
    """A wrong ``-i`` path or a group typo matched no host: every play would match nothing and exit 0, and a
    pipeline would read a release, a kill switch or an audit as done on a fleet nobody looked at."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    empty = tmp_path / "empty.ini"
    empty.write_text("")
    other = tmp_path / "other.ini"
    other.write_text("[app]\nh1 ansible_host=127.0.0.250\n")
    for inventory, group in ((empty, "app"), (other, "apps")):
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(repo, "ansible.cfg"),
                   LOCKSTEP_LEDGER_DIR=str(tmp_path / "ledger"), LOCKSTEP_LEDGER_ANCHOR_DIR=str(tmp_path / "anchors"))
        proc = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
             str(inventory), os.path.join(repo, "playbooks", playbook), "-e", "lockstep_version=2.1.0",
             "-e", "lockstep_group=%s" % group],
            capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode != 0, proc.stdout
        assert "group '%s' has no hosts: there is no fleet to act on" % group in proc.stdout, proc.stdout
        assert "127.0.0.250" not in proc.stdout + proc.stderr  # no play ever reached for the host

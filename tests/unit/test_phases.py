"""The one rule that names a task's phase for the ledger, the progress output and the report."""

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.lockstep.release.plugins.plugin_utils.phases import phase_of


def task(role):
    return SimpleNamespace(_role=None if role is None else SimpleNamespace(get_name=lambda: role))


def test_a_task_is_in_its_roles_phase_and_the_rollouts_waves_back_are_the_rollback():
    waves_back = "Lockstep | rollback: canary, then waves, back to the previous release"
    assert phase_of(task("lockstep.release.verify"), "Lockstep | verify and smoke the whole fleet") == "verify"
    assert phase_of(task("lockstep.release.rollout"), "Lockstep | rollout: canary, then waves") == "rollout"
    assert phase_of(task("lockstep.release.rollout"), waves_back) == "rollback"
    assert phase_of(task("lockstep.release.common"), waves_back) == "common"
    assert phase_of(task(None), waves_back) is None

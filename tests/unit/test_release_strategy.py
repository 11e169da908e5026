"""lockstep runs only under a strategy that finishes each task on the whole batch before the next one: under `free`
or `host_pinned` a host would run ahead of its wave's drain and gate. The plan refuses them before any host is
contacted, whether the play or ANSIBLE_STRATEGY chose them (issue 11: the strategies users reach for)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import _clean_env
from test_load_balancer_interface import plan


def plays(tmp_path, strategies):
    out = []
    for strategy in strategies:
        play = {"name": "plan under %s" % (strategy or "the configured strategy"), "hosts": "localhost",
                "gather_facts": False, "tasks": [
                    {"name": "plan", "block": [dict(plan(tmp_path, lb="none"), register="out")],
                     "rescue": [{"name": "refused", "ansible.builtin.debug": {"msg": "{{ out.msg }}"}}]},
                    {"name": "verdict", "ansible.builtin.debug": {
                        "msg": "VERDICT {{ 'refused' if out is failed else 'planned' }}: {{ out.msg }}"}}]}
        if strategy:
            play["strategy"] = strategy
        out.append(play)
    path = tmp_path / "playbook.yml"
    path.write_text(json.dumps(out))
    return path


def verdicts(tmp_path, strategies, env_strategy=None):
    env = _clean_env(str(tmp_path))
    if env_strategy:
        env["ANSIBLE_STRATEGY"] = env_strategy
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=%s" % sys.executable, str(plays(tmp_path, strategies))],
        capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = [line.split('"VERDICT ', 1)[1].rstrip('"') for line in proc.stdout.splitlines() if '"VERDICT ' in line]
    assert len(found) == len(strategies), proc.stdout
    return found


def test_linear_plans_and_a_strategy_that_lets_hosts_run_ahead_is_refused(tmp_path):
    linear, free, pinned = verdicts(tmp_path, ["linear", "free", "host_pinned"])
    assert linear.startswith("planned:"), linear
    for verdict, name in ((free, "free"), (pinned, "host_pinned")):
        assert verdict.startswith("refused: refused before touching any host: the '%s' strategy lets a host run "
                                  "ahead" % name), verdict
        assert "unset ANSIBLE_STRATEGY" in verdict, verdict


@pytest.mark.parametrize("env_strategy, expected", [(None, "planned"), ("free", "refused")])
def test_the_configured_strategy_is_the_one_checked(tmp_path, env_strategy, expected):
    (verdict,) = verdicts(tmp_path, [None], env_strategy)
    assert verdict.startswith(expected + ":"), verdict

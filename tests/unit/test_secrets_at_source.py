"""lockstep's actions scrub their own results before Ansible prints them: secrets leave no message, URL or command,
and the data the release acts on (versions, host maps) is never rewritten."""

from __future__ import annotations

from ansible.executor.stats import AggregateStats

from ansible_collections.lockstep.release.plugins.plugin_utils.ledger_summary import scrub_custom_stats
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import (
    RunSecrets,
    action_secrets,
    scrub_text,
    scrubbed,
)

TOKEN = "tok-" + "4f1d9a"
TASK_VARS = {"deploy_api_token": TOKEN, "lockstep_version": "2.1.0", "groups": {"app": ["h1"]}}


def test_messages_urls_and_commands_are_scrubbed_and_data_is_not():
    result = {
        "msg": "GET http://h1/version?t=%s: HTTP 404" % TOKEN,
        "lockstep_gate": {"passed": False, "halted": [{"host": "h1", "message": "t=%s" % TOKEN}],
                          "hosts": {"h1": {"health": "GET http://h1/?t=%s: 404" % TOKEN}}},
        "befores": {"h1": TOKEN},
        "results": [{"cmd": "restart --token %s" % TOKEN, "rc": 3, "stderr": TOKEN}],
    }
    out = scrub_text(result, action_secrets(TASK_VARS))
    assert TOKEN not in out["msg"] and "********" in out["msg"]
    assert TOKEN not in str(out["lockstep_gate"]["halted"]) and TOKEN not in str(out["lockstep_gate"]["hosts"])
    assert TOKEN not in str(out["results"])
    # Data the release acts on stays as it was.
    assert out["befores"] == {"h1": TOKEN}
    assert out["lockstep_gate"]["passed"] is False


def test_every_action_result_goes_through_it():
    class Action:
        @scrubbed
        def run(self, tmp=None, task_vars=None):
            return {"failed": True, "msg": "restart --token %s failed" % TOKEN}

    assert Action().run(task_vars=TASK_VARS) == {"failed": True, "msg": "restart --token ******** failed"}


def test_nothing_secret_nothing_changed():
    result = {"msg": "all good", "servers": {"h1": {"serving": True}}}
    assert scrub_text(result, action_secrets({"lockstep_version": "2.1.0"})) == result


def test_an_action_scrubs_what_the_ledger_callback_met_before_its_task_began():
    # A no_log task's stdout is in no variable: only the ledger callback's secrets part knew it, and the action's
    # worker (forked from the controller) starts with them.
    fetched = "Fetched" + "Token" + "5521"
    run = RunSecrets(["*token*"])
    run.add(fetched)
    try:
        assert fetched in action_secrets({"lockstep_version": "2.1.0"})
        assert scrub_text({"msg": "restart %s" % fetched}, action_secrets({})) == {"msg": "restart ********"}
    finally:
        RunSecrets(["*token*"])  # the next run's part, as a new callback starts one


def test_custom_stats_are_scrubbed_for_the_callbacks_after_the_ledger():
    stats = AggregateStats()
    stats.set_custom_stats("note", "restart --token %s failed" % TOKEN)
    stats.update_custom_stats("note", {"url": "http://h1/?t=%s" % TOKEN}, "h1")
    scrub_custom_stats(stats, {TOKEN})
    assert TOKEN not in str(stats.custom) and "********" in str(stats.custom["_run"])


def test_a_delegated_tasks_other_host_is_walked_and_ansibles_copy_of_every_variable_is_not():
    become = "Sudo" + "Pass" + "9931"
    secrets = action_secrets({"ansible_delegated_vars": {"lb1": {"ansible_become_password": become,
                                                                  "hostvars": {"h1": {"x": "y"}}}},
                              "vars": {"deploy_api_token": "never-walked-twice"}, "deploy_api_token": TOKEN})
    assert become in secrets and TOKEN in secrets


def test_a_task_may_set_variables_unless_it_is_lockstep_s_own_or_sets_nothing():
    """What makes the ledger read every host's variables again at the next play: anything but lockstep's own
    registers and facts, its own modules, and the builtins that set nothing."""
    from types import SimpleNamespace

    from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import may_set_variables

    def task(action, register=None, **args):
        return SimpleNamespace(action=action, register=register, args=args)

    quiet = [task("lockstep.release.deploy", register="__lockstep_switch"),
             task("ansible.builtin.meta", _raw_params="end_host"),
             task("ansible.builtin.set_fact", __lockstep_record={}, cacheable=False), task("include_role", name="x"),
             task("ansible.builtin.debug", msg="hi"), task("ansible.builtin.stat", register="__lockstep_st", path="/")]
    assert [may_set_variables(t) for t in quiet] == [False] * len(quiet)
    setting = [task("ansible.builtin.debug", register="deploy_token", msg="x"), task("set_fact", service_password="x"),
               task("ansible.builtin.set_fact", __lockstep_x=1, other=2), task("ansible.builtin.copy", dest="/x"),
               task("ansible.builtin.include_vars", file="x.yml"), task("ansible.builtin.add_host", name="h9"),
               task("ansible.builtin.meta", _raw_params="refresh_inventory"), task("community.general.x", a=1)]
    assert [may_set_variables(t) for t in setting] == [True] * len(setting)

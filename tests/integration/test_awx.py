"""lockstep as AWX / Automation Controller runs it.

The job templates and the workflow (awx/controller.yml, applied by awx/configure.yml) are checked against the
awx.awx modules' argument specs and against the playbooks they launch; then releases run through
``ansible_runner.run()`` on a private data dir laid out as AWX lays it out (``env/extravars``, ``inventory/``,
``project/`` = a checkout of this repository), against the real local fleet, and the job is judged as AWX judges
it: runner status, events and the ``set_stats`` artifacts.
"""

from __future__ import annotations

import json
import os
import shutil

import ansible_runner
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from awx_module_specs import (
    SPECS,
    SURVEY_TYPES,
    UNIFIED_JOB_TEMPLATE_TYPES,
    WORKFLOW_NODE_KEYS,
    WORKFLOW_RELATED_KEYS,
)
from release_helpers import REPO, VENV_BIN, assert_whole_fleet_on, lb_status

CONTROLLER = yaml.safe_load(open(os.path.join(REPO, "awx", "controller.yml")))
CONFIGURE = yaml.safe_load(open(os.path.join(REPO, "awx", "configure.yml")))
TEMPLATES = {t["name"]: t for t in CONTROLLER["lockstep_awx_job_templates"]}
WORKFLOW = CONTROLLER["lockstep_awx_workflow"]


def configure_task(module):
    [task] = [t for t in CONFIGURE[0]["tasks"] if module in t]
    return task[module]


def validate(module, params):
    result = ArgumentSpecValidator(SPECS[module]).validate(params)
    assert not result.error_messages, (module, params.get("name"), result.error_messages)


def test_configure_yml_passes_only_options_the_awx_modules_have():
    for module, spec in SPECS.items():
        args = configure_task(module)
        assert set(args) <= set(spec), (module, set(args) - set(spec))
        assert {k for k, v in spec.items() if v.get("required")} <= set(args), module


def test_every_job_template_is_valid_for_awx_awx_job_template():
    shared = {"organization": CONTROLLER["lockstep_awx_organization"], "project": "lockstep",
              "inventory": CONTROLLER["lockstep_awx_inventory"], "credentials": [CONTROLLER["lockstep_awx_credential"]],
              "execution_environment": "lockstep-ee"}
    assert set(TEMPLATES) == {"lockstep release", "lockstep partial release", "lockstep rollback", "lockstep verify",
                              "lockstep halt", "lockstep halt proven hosts"}
    for template in TEMPLATES.values():
        validate("awx.awx.job_template", dict(shared, **template))
        assert os.path.isfile(os.path.join(REPO, template["playbook"])), template["playbook"]
        # No job slicing: a slice sees part of the fleet, and the fleet-wide gates must see all of it.
        assert template["job_slice_count"] == 1 and template["ask_job_slice_count_on_launch"] is False
    # A release is one per fleet: AWX must not start a second while one runs.
    for name in ("lockstep release", "lockstep partial release", "lockstep rollback"):
        assert TEMPLATES[name]["allow_simultaneous"] is False, name
    assert TEMPLATES["lockstep partial release"]["extra_vars"] == {"lockstep_allow_partial": True}
    project = {k: v for k, v in CONTROLLER["lockstep_awx_project"].items()}
    validate("awx.awx.project", dict(project, organization="Default", default_environment="lockstep-ee"))
    validate("awx.awx.execution_environment", dict(CONTROLLER["lockstep_awx_execution_environment"],
                                                   organization="Default"))


def surveys():
    for name, template in TEMPLATES.items():
        if template.get("survey_enabled"):
            yield name, template
    yield WORKFLOW["name"], WORKFLOW


@pytest.mark.parametrize("name", [n for n, _ in surveys()])
def test_survey_questions_are_valid_and_set_variables_lockstep_reads(name):
    template = dict(surveys())[name]
    spec = template["survey_spec"]
    assert spec["name"] and spec["description"] and spec["spec"], spec
    playbook = template.get("playbook", "playbooks/release.yml")
    read = open(os.path.join(REPO, playbook)).read() + open(os.path.join(
        REPO, "roles", "preflight", "meta", "argument_specs.yml")).read()
    variables = [q["variable"] for q in spec["spec"]]
    assert len(variables) == len(set(variables)), variables
    for q in spec["spec"]:
        assert q["type"] in SURVEY_TYPES, q
        assert q["question_name"] and isinstance(q["required"], bool), q
        assert q["variable"].startswith("lockstep_") and q["variable"] in read, (q["variable"], playbook)
        if q["type"] in ("multiplechoice", "multiselect"):
            choices = q["choices"] if isinstance(q["choices"], list) else q["choices"].split("\n")
            defaults = q.get("default", "").split("\n") if q["type"] == "multiselect" else [q.get("default")]
            assert set(defaults) <= set(choices), q
        if q["type"] in ("text", "textarea", "integer"):
            assert q["min"] <= q["max"], q
    if template.get("playbook", "playbooks/release.yml") == "playbooks/release.yml":
        assert "lockstep_version" in variables


def test_the_workflow_is_release_then_verify_and_halt_only_proven_hosts():
    validate("awx.awx.workflow_job_template", dict(WORKFLOW, organization="Default", inventory="lockstep fleet",
                                                   destroy_current_nodes=True))
    nodes = {n["identifier"]: n for n in WORKFLOW["workflow_nodes"]}
    assert len(nodes) == len(WORKFLOW["workflow_nodes"])
    for node in nodes.values():
        assert set(node) <= WORKFLOW_NODE_KEYS, node
        assert set(node.get("related", {})) <= WORKFLOW_RELATED_KEYS, node
        assert node["unified_job_template"]["type"] in UNIFIED_JOB_TEMPLATE_TYPES, node
        assert node["unified_job_template"]["name"] in TEMPLATES, node
        for targets in node.get("related", {}).values():
            assert all(t["identifier"] in nodes for t in targets), node

    def next_of(identifier, outcome):
        related = nodes[identifier].get("related", {}).get(outcome + "_nodes", [])
        return [(t["identifier"], nodes[t["identifier"]]["unified_job_template"]["name"]) for t in related]

    roots = set(nodes) - {t["identifier"] for n in nodes.values() for ts in n.get("related", {}).values() for t in ts}
    assert roots == {"release"} and nodes["release"]["unified_job_template"]["name"] == "lockstep release"
    [(ok_verify, ok_name)] = next_of("release", "success")
    [(bad_verify, bad_name)] = next_of("release", "failure")
    assert ok_name == bad_name == "lockstep verify"
    # Never the operator's halt (no host list means every host): only the hosts the audit proved wrong.
    assert next_of(bad_verify, "failure") == [("halt proven hosts", "lockstep halt proven hosts")]
    assert "lockstep halt" not in {n["unified_job_template"]["name"] for n in nodes.values()}
    assert next_of(bad_verify, "success") == [] and next_of(ok_verify, "failure") == []  # nothing more to do
    assert not nodes["halt proven hosts"].get("related")


# --- jobs through ansible-runner, as AWX runs them ---------------------------------------------------------------

def private_data_dir(tmp_path, extravars, drop_hosts=()):
    """AWX's layout: project/ is a checkout of the repository (the job runs there, with its ansible.cfg),
    inventory/ is the AWX inventory (the fleet's hosts and the sample service's group_vars, with the site's
    absolute artifact and lock paths), env/extravars the survey answers."""
    pdd = tmp_path / "job"
    shutil.copytree(REPO, pdd / "project", symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", ".fleet", ".lockstep", "artifacts", "dist", "*_cache", ".ansible", "hosts.yml"))
    inventory = yaml.safe_load(open(os.path.join(REPO, "inventory", "local", "hosts.yml")))
    for host in drop_hosts:
        del inventory["all"]["children"]["app"]["hosts"][host]
    (pdd / "inventory" / "group_vars").mkdir(parents=True)
    (pdd / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
    group_vars = yaml.safe_load(open(os.path.join(REPO, "inventory", "local", "group_vars", "all.yml")))
    group_vars.update({"lockstep_artifact_dir": os.path.join(REPO, "artifacts"),
                       "lockstep_lock_path": os.path.join(REPO, ".fleet", "lockstep-release.lock"),
                       "lockstep_watch_seconds": 0})
    (pdd / "inventory" / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    (pdd / "env").mkdir()
    (pdd / "env" / "extravars").write_text(json.dumps(extravars))
    (pdd / "env" / "envvars").write_text(json.dumps({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_SSH_CONTROL_PATH_DIR": str(
        tmp_path / "cp")}))
    return pdd


def run_job(pdd, playbook="playbooks/release.yml", monkeypatch=None):
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    for name in list(os.environ):
        if name.startswith(("ANSIBLE_", "LOCKSTEP_", "MOLECULE_")):
            monkeypatch.delenv(name)
    r = ansible_runner.run(private_data_dir=str(pdd), playbook=playbook, quiet=True)
    events = list(r.events)
    [stats] = [e for e in events if e["event"] == "playbook_on_stats"]
    return r, events, stats["event_data"].get("artifact_data") or {}


def survey_answers(version):
    # What AWX puts in extra vars from the release template's survey with its defaults (multiselect: a list).
    questions = {q["variable"]: q for q in TEMPLATES["lockstep release"]["survey_spec"]["spec"]}
    return {"lockstep_version": version, "lockstep_canary": questions["lockstep_canary"]["default"],
            "lockstep_waves": questions["lockstep_waves"]["default"].split("\n")}


def test_release_job_succeeds_and_reports_its_status_artifact(fleet, tmp_path, monkeypatch):
    fleet.up(hosts=3, version="1.0.0")
    r, events, artifacts = run_job(private_data_dir(tmp_path, survey_answers("2.1.0")), monkeypatch=monkeypatch)
    assert r.status == "successful" and r.rc == 0, r.stdout.read()[-6000:]
    assert artifacts["lockstep_status"] == "succeeded", artifacts
    assert artifacts["lockstep_version_after"] == "2.1.0" and artifacts["lockstep_halted_by"] is None, artifacts
    assert {h: v["result"] for h, v in artifacts["lockstep_hosts"].items()} == dict.fromkeys(
        ["h1", "h2", "h3"], "released"), artifacts
    # The ledger went to the project checkout's .lockstep/ledger, and the release tells AWX where (the finish role
    # publishes what the ledger callback named).
    assert artifacts["lockstep_ledger"]["path"].startswith(str(tmp_path / "job" / "project" / ".lockstep")), artifacts
    assert os.path.isfile(artifacts["lockstep_ledger"]["path"]), artifacts
    assert artifacts["lockstep_ledger"]["status"] == "succeeded" and artifacts["lockstep_ledger"]["broken"] is None
    assert_whole_fleet_on(fleet, "2.1.0")


def test_halted_release_is_a_failed_job_with_the_status_artifact(fleet, tmp_path, monkeypatch):
    fleet.up(hosts=3, version="1.0.0")
    # h3's restart silently does nothing (tests/integration/test_release_halts.py::stale_pidfile).
    fleet.exec("h3", "sh", "-c", "setsid sleep 600 >/dev/null 2>&1 </dev/null & echo $! > "
               "/srv/order-router/run/router.pid", check=True)
    answers = dict(survey_answers("2.1.0"), lockstep_switch_timeout=5)
    r, events, artifacts = run_job(private_data_dir(tmp_path, answers), monkeypatch=monkeypatch)
    assert r.status == "failed" and r.rc == 2, r.stdout.read()[-6000:]
    assert artifacts["lockstep_status"] == "rolled_back", artifacts
    assert artifacts["lockstep_halted_by"]["gate"] == "running-version", artifacts
    assert artifacts["lockstep_halted_by"]["host"] == "h3", artifacts
    assert any(e["event"] == "runner_on_failed" and e["event_data"]["host"] == "h3" for e in events)
    assert_whole_fleet_on(fleet, "1.0.0")


def test_unreachable_host_is_a_failed_host_event_and_the_release_is_refused(fleet, tmp_path, monkeypatch):
    fleet.up(hosts=3, version="1.0.0")
    fleet.sshd("h2", "stop")
    r, events, artifacts = run_job(private_data_dir(tmp_path, survey_answers("2.1.0")), monkeypatch=monkeypatch)
    assert r.status == "failed", r.stdout.read()[-6000:]
    # lockstep's host actions turn "unreachable" into a failure the phase handles (the host stays in the run and
    # is named by the gate): AWX sees runner_on_failed for h2, never runner_on_unreachable, which would drop h2
    # from the rest of the play.
    assert not [e for e in events if e["event"] == "runner_on_unreachable"]
    failed = [e["event_data"] for e in events if e["event"] == "runner_on_failed" and e["event_data"]["host"] == "h2"]
    assert any("unreachable" in json.dumps(f["res"]).lower() for f in failed), failed
    assert artifacts["lockstep_status"] == "refused" and artifacts["lockstep_halted_by"]["host"] == "h2", artifacts
    assert r.stats["failures"] and not r.stats["dark"], r.stats  # no host left the run as "dark"
    fleet.sshd("h2", "start")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_a_job_slice_of_the_fleet_is_refused_at_preflight(fleet, tmp_path, monkeypatch):
    """AWX job slicing gives each slice job the inventory's hosts of that slice only. The slice that lacks h3
    must not release: HAProxy still sends traffic to h3, which this run cannot see or change."""
    fleet.up(hosts=3, version="1.0.0")
    r, events, artifacts = run_job(private_data_dir(tmp_path, survey_answers("2.1.0"), drop_hosts=["h3"]),
                                   monkeypatch=monkeypatch)
    out = r.stdout.read()
    assert r.status == "failed", out[-6000:]
    assert artifacts["lockstep_status"] == "refused", artifacts
    assert artifacts["lockstep_halted_by"]["host"] == "h3", artifacts
    assert "serves traffic through the load balancer" in out, out[-6000:]
    assert_whole_fleet_on(fleet, "1.0.0")
    assert set(lb_status(fleet).values()) == {"UP"}

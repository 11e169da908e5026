"""The AWX release workflow (awx/controller.yml) may take out only the hosts the audit PROVES wrong.

A failed AWX node cannot say why it failed: a release refused because a host is in MAINT, a cancelled job that
left the lock, an operator's DRAIN all fail the verify after it. So the kill switch does not hang on a failure
alone: the verify job publishes ``lockstep_audit_proof`` (``plugin_utils/audit.py`` ``proven_wrong``), AWX passes
every ancestor's artifacts to the next job as extra vars, and the workflow's halt job (``awx/halt_proven.yml``) takes
out those hosts only, refusing and touching nothing when there are none.

The workflow graph is built from the validated node data and walked as AWX walks it (``dag_workflow.py``: a job
that failed, errored or was cancelled follows ``failure_nodes`` + ``always_nodes``, a successful one
``success_nodes`` + ``always_nodes``; a node's extra vars are its template's, overridden by the ancestors'
artifacts, overridden by the workflow's survey answers). The release node is the input (its status and artifacts,
and the fleet it leaves); every other node runs its real playbook through ansible-runner (what AWX runs) against a
stand-in fleet on this machine: one HTTP service per host on 127.0.0.1 (kernel-chosen ports), a load balancer that
is a ``lockstep_lb: tasks`` task file over a JSON file, and a stop command that marks the host stopped. Never the
local fleet.
"""

from __future__ import annotations

import json
import os
import sys

import ansible_runner
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from awx_module_specs import SPECS, UNIFIED_JOB_TEMPLATE_TYPES, WORKFLOW_NODE_KEYS, WORKFLOW_RELATED_KEYS

from ansible_collections.lockstep.release.plugins.plugin_utils.audit import PROOF_OUTCOMES, judge, proven_wrong

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTROLLER = yaml.safe_load(open(os.path.join(REPO, "awx", "controller.yml")))
TEMPLATES = {t["name"]: t for t in CONTROLLER["lockstep_awx_job_templates"]}
WORKFLOW = CONTROLLER["lockstep_awx_workflow"]
HOSTS = ("h1", "h2", "h3")
OLD, NEW = "1.0.0", "2.0.0"


# --- the workflow as data, validated as test_awx.py validates it ------------------------------------------------

def workflow_nodes():
    result = ArgumentSpecValidator(SPECS["awx.awx.workflow_job_template"]).validate(
        dict(WORKFLOW, organization="Default", inventory="lockstep fleet", destroy_current_nodes=True))
    assert not result.error_messages, result.error_messages
    nodes = {n["identifier"]: n for n in WORKFLOW["workflow_nodes"]}
    assert len(nodes) == len(WORKFLOW["workflow_nodes"])
    for node in nodes.values():
        assert set(node) <= WORKFLOW_NODE_KEYS, node
        assert set(node.get("related", {})) <= WORKFLOW_RELATED_KEYS, node
        assert node["unified_job_template"]["type"] in UNIFIED_JOB_TEMPLATE_TYPES, node
        assert node["unified_job_template"]["name"] in TEMPLATES, node
        for targets in node.get("related", {}).values():
            assert all(t["identifier"] in nodes for t in targets), node
    for template in TEMPLATES.values():
        result = ArgumentSpecValidator(SPECS["awx.awx.job_template"]).validate(
            dict(template, organization="Default", project="lockstep", inventory="lockstep fleet"))
        assert not result.error_messages, (template["name"], result.error_messages)
        assert os.path.isfile(os.path.join(REPO, template["playbook"])), template["playbook"]
    return nodes


def walk(jobs, survey):
    """Run the workflow as AWX does. ``jobs[template name](extra_vars) -> (status, artifacts)``. Returns the nodes
    run, in order, as ``[(identifier, template name, status, extra_vars, artifacts)]``, and whether AWX would mark
    the workflow failed (a failed node without a failure or always path)."""
    nodes = workflow_nodes()
    targets = {t["identifier"] for n in nodes.values() for ts in n.get("related", {}).values() for t in ts}
    queue = [(identifier, {}) for identifier in nodes if identifier not in targets]
    ran, failed = [], False
    while queue:
        identifier, ancestors = queue.pop(0)
        node = nodes[identifier]
        template = TEMPLATES[node["unified_job_template"]["name"]]
        extra_vars = dict(template.get("extra_vars") or {})
        extra_vars.update(ancestors)  # every ancestor's artifacts, a parent's over a grandparent's
        extra_vars.update(survey)  # the workflow's own extra vars win over artifacts
        status, artifacts = jobs[template["name"]](extra_vars)
        ran.append((identifier, template["name"], status, extra_vars, artifacts))
        related = node.get("related", {})
        outcome = "success_nodes" if status == "successful" else "failure_nodes"
        following = related.get(outcome, []) + related.get("always_nodes", [])
        if status != "successful" and not following:
            failed = True
        for target in following:
            queue.append((target["identifier"], dict(ancestors, **artifacts)))
    return ran, failed


def test_the_workflow_has_no_path_to_the_whole_service_kill_switch():
    nodes = workflow_nodes()
    playbooks = {i: TEMPLATES[n["unified_job_template"]["name"]]["playbook"] for i, n in nodes.items()}
    # The operator's kill switch (every server of the backend) is a template of its own, never a workflow node.
    assert "playbooks/halt.yml" not in playbooks.values(), playbooks
    halts = [i for i, p in playbooks.items() if p == "awx/halt_proven.yml"]
    assert len(halts) == 1, playbooks
    template = TEMPLATES[nodes[halts[0]]["unified_job_template"]["name"]]
    # Nothing at launch can widen it: no variables asked, no limit, no halt scope of its own.
    assert template["ask_variables_on_launch"] is False and template["ask_limit_on_launch"] is False, template
    assert not set(template.get("extra_vars") or {}) & {"lockstep_halt_hosts", "lockstep_halt_respect_lock"}
    # The halt follows only a failed verify job.
    [(parent, relation)] = [(i, rel) for i, n in nodes.items() for rel, ts in n.get("related", {}).items()
                            for t in ts if t["identifier"] == halts[0]]
    assert relation == "failure_nodes" and playbooks[parent] == "playbooks/verify.yml", (parent, relation)


# --- what an audit proves: plugin_utils/audit.py proven_wrong on judge() outputs ---------------------------------

def audit_of(fleet, lb=None, lb_error=None, lock=None, states=None, layers=("http",)):
    """judge() of a fleet given as ``{host: version or None}`` and load balancer statuses ``{host: status}``."""
    urls = {h: "http://127.0.0.1:1/%s/version" % h for h in fleet}
    probes = {h: ({"reachable": True, "version": v, "pid": 100 + i} if v else
                  {"reachable": False, "error": "connection refused"}) for i, (h, v) in enumerate(fleet.items())}
    lb_servers = None if lb is None else {h: {"status": s, "serving": s.startswith("UP"), "addr": None}
                                          for h, s in lb.items()}
    return judge(sorted(fleet), urls, probes, states=states, layers=layers, lb_servers=lb_servers,
                 lb_error=lb_error, lock=lock)


UP = dict.fromkeys(HOSTS, "UP")
LOCK = {"version": NEW, "user": "awx", "controller": "awx-ee-7f3c", "pid": 4242, "run_id": "r-1",
        "started": "2024-06-03T09:00:00Z"}


def test_a_host_serving_another_version_after_a_rollback_is_proof_and_nothing_else_is():
    audit = audit_of({"h1": OLD, "h2": OLD, "h3": NEW}, lb=UP)
    proof = proven_wrong(audit, outcome="rolled_back", expected=OLD)
    assert list(proof["hosts"]) == ["h3"] and proof["none_because"] is None, proof
    assert "serves 2.0.0" in proof["hosts"]["h3"], proof
    assert not [p for p in proof["not_proof"] if p["host"] == "h3"], proof


def test_rollback_failed_host_taken_out_by_the_release_is_proof():
    # The release took h3 out of the load balancer (lockstep_killed_hosts) because it could not prove it back.
    audit = audit_of({"h1": OLD, "h2": OLD, "h3": NEW}, lb=dict(UP, h3="MAINT"))
    proof = proven_wrong(audit, outcome="rollback_failed", expected=OLD, taken_out=["h3"])
    assert list(proof["hosts"]) == ["h3"], proof
    # Without the release's word that it took h3 out, a MAINT server is an operator's: not touched.
    assert proven_wrong(audit, outcome="rollback_failed", expected=OLD)["hosts"] == {}


@pytest.mark.parametrize("outcome", [None, "refused", "failed", "stopped", "succeeded", "partial"])
def test_only_a_rolled_back_or_rollback_failed_release_names_the_version_every_host_must_serve(outcome):
    audit = audit_of({"h1": OLD, "h2": OLD, "h3": NEW}, lb=UP)
    proof = proven_wrong(audit, outcome=outcome, expected=OLD)
    assert proof["hosts"] == {} and proof["none_because"], proof
    assert proof["not_proof"] == audit["problems"], proof
    assert set(PROOF_OUTCOMES) == {"rolled_back", "rollback_failed"}


def test_a_held_lock_proves_nothing():
    audit = audit_of({"h1": OLD, "h2": OLD, "h3": NEW}, lb=UP, lock=LOCK)
    assert not audit["passed"]
    proof = proven_wrong(audit, outcome="rolled_back", expected=OLD)
    assert proof["hosts"] == {} and "lock is held" in proof["none_because"], proof
    assert any(p["host"] == "release-lock" for p in proof["not_proof"]), proof


@pytest.mark.parametrize("status", ["MAINT", "DRAIN", "DOWN"])
def test_an_operators_maint_or_drain_is_not_proof_even_on_another_version(status):
    audit = audit_of({"h1": OLD, "h2": NEW, "h3": OLD}, lb=dict(UP, h2=status))
    assert not audit["passed"], audit
    proof = proven_wrong(audit, outcome="rolled_back", expected=OLD)
    assert proof["hosts"] == {}, proof
    assert {p["host"] for p in proof["not_proof"]} == {"h2"}, proof


def test_a_host_that_does_not_answer_or_an_unreadable_load_balancer_is_not_proof():
    audit = audit_of({"h1": OLD, "h2": None, "h3": OLD}, lb=UP)
    assert not audit["passed"]
    release_hosts = {h: {"before": OLD} for h in HOSTS}
    assert proven_wrong(audit, outcome="rolled_back", expected=OLD, release_hosts=release_hosts)["hosts"] == {}
    audit = audit_of({"h1": OLD, "h2": OLD, "h3": NEW}, lb_error="connection refused")
    assert not audit["passed"]
    proof = proven_wrong(audit, outcome="rolled_back", expected=OLD)
    assert proof["hosts"] == {}, proof  # who takes traffic is unknown
    # Even a host the release took out: whether any host is left serving right is unknown too.
    proof = proven_wrong(audit, outcome="rollback_failed", expected=OLD, taken_out=["h3"])
    assert proof["hosts"] == {} and "no host serving" in proof["none_because"], proof


def test_no_load_balancer_every_answering_host_serves():
    audit = audit_of({"h1": OLD, "h2": OLD, "h3": NEW})
    assert list(proven_wrong(audit, outcome="rolled_back", expected=OLD, lb="none")["hosts"]) == ["h3"]


def test_never_the_whole_service_a_host_must_be_left_serving_right():
    audit = audit_of({"h1": NEW, "h2": NEW, "h3": NEW}, lb=UP)
    proof = proven_wrong(audit, outcome="rollback_failed", expected=OLD)
    assert proof["hosts"] == {} and "person's decision" in proof["none_because"], proof
    # The only right host is in an operator's MAINT: still no host left serving right.
    audit = audit_of({"h1": OLD, "h2": NEW, "h3": NEW}, lb=dict(UP, h1="MAINT"))
    assert proven_wrong(audit, outcome="rollback_failed", expected=OLD)["hosts"] == {}


def test_no_version_named_or_no_audit_proves_nothing():
    audit = audit_of({"h1": OLD, "h2": OLD, "h3": NEW}, lb=UP)
    for expected in (None, ""):
        proof = proven_wrong(audit, outcome="rolled_back", expected=expected)
        assert proof["hosts"] == {} and "named no version" in proof["none_because"], proof
    proof = proven_wrong(None, outcome="rollback_failed", expected=OLD)
    assert proof["hosts"] == {} and proof["none_because"] and proof["not_proof"] == [], proof


def _state(version, content, valid=True, from_active=True):
    return {"active_version": version, "active_content_sha256": content, "active_valid": valid,
            "active_problem": None if valid else "tree hash differs", "releases": [],
            "running": {"reachable": True, "version": version, "pid": 7, "from_active": from_active}}


def test_content_that_fails_its_manifest_or_differs_from_the_fleets_is_proof():
    fleet = {"h1": OLD, "h2": OLD, "h3": OLD, "h4": OLD}
    states = {"h1": _state(OLD, "a" * 64), "h2": _state(OLD, "a" * 64), "h3": _state(OLD, "a" * 64),
              "h4": _state(OLD, "b" * 64)}
    audit = audit_of(fleet, lb=dict.fromkeys(fleet, "UP"), states=states, layers=("http", "ssh"))
    assert list(proven_wrong(audit, outcome="rolled_back", expected=OLD)["hosts"]) == ["h4"]
    states["h4"] = _state(OLD, "a" * 64, valid=False)
    audit = audit_of(fleet, lb=dict.fromkeys(fleet, "UP"), states=states, layers=("http", "ssh"))
    proof = proven_wrong(audit, outcome="rolled_back", expected=OLD)
    assert list(proof["hosts"]) == ["h4"] and "manifest" in proof["hosts"]["h4"], proof
    # A process not started from its active release serves unknown content: for a person, not the kill switch.
    states["h4"] = _state(OLD, "b" * 64, from_active=False)
    audit = audit_of(fleet, lb=dict.fromkeys(fleet, "UP"), states=states, layers=("http", "ssh"))
    assert not audit["passed"]
    assert proven_wrong(audit, outcome="rolled_back", expected=OLD)["hosts"] == {}


# --- the workflow walked with the real verify and halt playbooks -------------------------------------------------

LB_SCRIPT = r"""
import json, sys
state, log, op, servers = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
with open(state) as f:
    fleet = json.load(f)
if op != "query":
    with open(log, "a") as f:
        f.write(json.dumps({"op": op, "servers": servers}) + "\n")
    for name in (list(fleet) if servers == ["*"] else servers):
        fleet[name]["lb"] = {"maint": "MAINT", "drain": "DRAIN", "ready": "UP"}[op]
    with open(state, "w") as f:
        json.dump(fleet, f)
print(json.dumps({h: {"status": s["lb"]} for h, s in fleet.items()}))
"""

STOP_SCRIPT = r"""
import json, sys
state, log, host = sys.argv[1:4]
with open(state) as f:
    fleet = json.load(f)
fleet[host]["stopped"] = True
with open(state, "w") as f:
    json.dump(fleet, f)
with open(log, "a") as f:
    f.write(host + "\n")
"""


class StandIn:
    """Three hosts that are this machine (``ansible_connection: local``), each with its own version service."""

    def __init__(self, tmp_path, http_service, fleet):
        self.dir = tmp_path
        self.state = tmp_path / "fleet.json"
        self.lb_log = tmp_path / "lb.log"
        self.stop_log = tmp_path / "stopped.log"
        self.lock = tmp_path / "lockstep.lock"
        self.outputs = []  # (playbook, runner status, stdout) of every job run
        self.write(fleet)
        (tmp_path / "lb.py").write_text(LB_SCRIPT)
        (tmp_path / "stop.py").write_text(STOP_SCRIPT)
        (tmp_path / "lb.yml").write_text(yaml.safe_dump([
            {"name": "stand-in load balancer", "ansible.builtin.command": {"argv": [
                sys.executable, str(tmp_path / "lb.py"), str(self.state), str(self.lb_log),
                "{{ lockstep_lb_operation }}", "{{ lockstep_lb_servers | to_json }}"]},
             "delegate_to": "localhost", "check_mode": False, "register": "__stand_in_lb"},
            {"name": "stand-in load balancer | its answer",
             "ansible.builtin.set_fact": {"lockstep_lb_backends": "{{ __stand_in_lb.stdout | from_json }}"}}]))
        urls = {h: http_service({"/version": self._version(h)}).url for h in fleet}
        hostvars = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "lockstep_base": str(tmp_path / "srv"),
            "lockstep_lb": "tasks", "lockstep_lb_tasks": str(tmp_path / "lb.yml"),
            "lockstep_lock_path": str(self.lock), "lockstep_lock_host": "localhost", "lockstep_audit_layers": ["http"],
            "lockstep_stop_command": [sys.executable, str(tmp_path / "stop.py"), str(self.state), str(self.stop_log),
                                      "{{ inventory_hostname }}"],
            "lockstep_stop_timeout": 10}
        inventory = {"all": {"vars": hostvars, "children": {"app": {"hosts": {
            h: {"lockstep_service_url": urls[h]} for h in fleet}}}}}
        self.inventory = tmp_path / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump(inventory))

    def write(self, fleet):
        self.state.write_text(json.dumps({h: {"version": v, "lb": lb, "stopped": False}
                                          for h, (v, lb) in fleet.items()}))

    def read(self):
        return json.loads(self.state.read_text())

    def _version(self, host):
        def answer(method, path, body):
            s = self.read()[host]
            return (503, {"error": "stopped"}) if s["stopped"] else (200, {"version": s["version"], "pid": 1000})
        return answer

    def lb_steps(self):
        return [json.loads(line) for line in self.lb_log.read_text().splitlines()] if self.lb_log.exists() else []

    def stopped(self):
        return self.stop_log.read_text().split() if self.stop_log.exists() else []

    def run(self, playbook, extra_vars, monkeypatch):
        """The job as AWX runs it: ansible-runner, the project's ansible.cfg, extra vars, the artifacts back."""
        monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        for name in list(os.environ):
            if name.startswith(("ANSIBLE_", "LOCKSTEP_", "MOLECULE_")):
                monkeypatch.delenv(name)
        pdd = self.dir / ("job-%d" % len(list(self.dir.glob("job-*"))))
        pdd.mkdir()
        r = ansible_runner.run(private_data_dir=str(pdd), project_dir=REPO, playbook=playbook,
                               inventory=str(self.inventory), extravars=extra_vars, quiet=True,
                               envvars={"LOCKSTEP_LEDGER_DIR": str(self.dir / "ledger"),
                                        "LOCKSTEP_LEDGER_ANCHOR_DIR": str(self.dir / "anchors"),
                                        "ANSIBLE_LOCAL_TEMP": str(self.dir / "ansible-tmp"),
                                        "ANSIBLE_NOCOLOR": "1"})
        stats = [e for e in r.events if e["event"] == "playbook_on_stats"]
        artifacts = (stats[-1]["event_data"].get("artifact_data") or {}) if stats else {}
        self.outputs.append((playbook, r.status, r.stdout.read()))
        return ("successful" if r.status == "successful" else "failed"), artifacts


def release_artifacts(status, after, killed=(), halted_by=None, befores=None):
    """What roles/finish publishes (set_stats) at the end of a release."""
    befores = dict(dict.fromkeys(HOSTS, OLD), **(befores or {}))
    return {"lockstep_status": status, "lockstep_version": NEW, "lockstep_version_before": OLD,
            "lockstep_version_after": after, "lockstep_halted_by": halted_by, "lockstep_killed_hosts": list(killed),
            "lockstep_hosts": {h: {"before": v, "after": None, "phase": None, "result": None}
                               for h, v in befores.items()},
            "lockstep_partial_reason": None}


# Each case: the fleet the release leaves {host: (version, load balancer status)}, whether it leaves the lock, the
# release job's status and artifacts (cancelled: none), the verify job replaced by a cancelled one, the nodes
# that must run (with their status), and the hosts the kill switch may take out.
CASES = {
    "refused": dict(
        what="refused: h2 in an operator's MAINT, h3 already on another version",
        fleet={"h1": (OLD, "UP"), "h2": (OLD, "MAINT"), "h3": ("0.9.9", "UP")}, lock=False,
        release=("failed", release_artifacts("refused", OLD, befores={"h3": "0.9.9"}, halted_by={
            "phase": "preflight", "gate": "preflight", "host": "h2", "message": "h2 is MAINT in the load balancer"})),
        ran=[("release", "failed"), ("verify after failed release", "failed"), ("halt proven hosts", "failed")],
        halted=[]),
    "cancelled": dict(
        what="cancelled mid-release: the canary on the new version, the lock left behind",
        fleet={"h1": (NEW, "UP"), "h2": (OLD, "UP"), "h3": (OLD, "UP")}, lock=True,
        release=("canceled", {}),
        ran=[("release", "canceled"), ("verify after failed release", "failed"), ("halt proven hosts", "failed")],
        halted=[]),
    "rolled_back": dict(
        what="rolled back, the fleet right again",
        fleet={"h1": (OLD, "UP"), "h2": (OLD, "UP"), "h3": (OLD, "UP")}, lock=False,
        release=("failed", release_artifacts("rolled_back", OLD)),
        ran=[("release", "failed"), ("verify after failed release", "successful")], halted=[]),
    "rollback_failed": dict(
        what="rollback failed: h3 left on the new version, taken out by the release",
        fleet={"h1": (OLD, "UP"), "h2": (OLD, "UP"), "h3": (NEW, "MAINT")}, lock=False,
        release=("failed", release_artifacts("rollback_failed", OLD, killed=["h3"])),
        ran=[("release", "failed"), ("verify after failed release", "failed"), ("halt proven hosts", "successful")],
        halted=["h3"]),
    "lock_held": dict(
        what="rolled back, but a lock is held (another run has h3 on the new version)",
        fleet={"h1": (OLD, "UP"), "h2": (OLD, "UP"), "h3": (NEW, "UP")}, lock=True,
        release=("failed", release_artifacts("rolled_back", OLD)),
        ran=[("release", "failed"), ("verify after failed release", "failed"), ("halt proven hosts", "failed")],
        halted=[]),
    "maint_drain": dict(
        what="rolled back, an operator's MAINT (on another version) and DRAIN",
        fleet={"h1": (OLD, "UP"), "h2": (NEW, "MAINT"), "h3": (OLD, "DRAIN")}, lock=False,
        release=("failed", release_artifacts("rolled_back", OLD)),
        ran=[("release", "failed"), ("verify after failed release", "failed"), ("halt proven hosts", "failed")],
        halted=[]),
    "every_host_wrong": dict(
        what="rollback failed on every host: never the whole service",
        fleet={"h1": (NEW, "MAINT"), "h2": (NEW, "MAINT"), "h3": (NEW, "MAINT")}, lock=False,
        release=("failed", release_artifacts("rollback_failed", OLD, killed=HOSTS)),
        ran=[("release", "failed"), ("verify after failed release", "failed"), ("halt proven hosts", "failed")],
        halted=[]),
    "verify_cancelled": dict(
        what="rollback failed, and the verify job was cancelled (no proof published)",
        fleet={"h1": (OLD, "UP"), "h2": (OLD, "UP"), "h3": (NEW, "MAINT")}, lock=False,
        release=("failed", release_artifacts("rollback_failed", OLD, killed=["h3"])), verify_cancelled=True,
        ran=[("release", "failed"), ("verify after failed release", "canceled"), ("halt proven hosts", "failed")],
        halted=[]),
}


def walk_case(case, tmp_path, http_service, monkeypatch):
    stand_in = StandIn(tmp_path, http_service, case["fleet"])
    if case["lock"]:
        stand_in.lock.write_text(json.dumps(LOCK))

    def job(template):
        def run(extra_vars):
            if template == "lockstep release":
                return case["release"]
            if template == "lockstep verify" and case.get("verify_cancelled"):
                return "canceled", {}
            return stand_in.run(TEMPLATES[template]["playbook"], extra_vars, monkeypatch)
        return run

    ran, failed = walk({name: job(name) for name in TEMPLATES}, {"lockstep_version": NEW})
    return stand_in, ran, failed


@pytest.mark.parametrize("name", list(CASES))
def test_each_failure_branch_takes_out_only_hosts_proven_wrong(name, tmp_path, http_service, monkeypatch):
    case = CASES[name]
    stand_in, ran, failed = walk_case(case, tmp_path, http_service, monkeypatch)
    story = "\n".join("%s %s: %s" % (p, s, out[-3000:]) for p, s, out in stand_in.outputs)
    assert [(i, s) for i, _, s, _, _ in ran] == case["ran"], story
    steps = stand_in.lb_steps()
    # The kill switch acts only with a non-empty list of hosts proven wrong, never the whole service.
    assert all(s["servers"] and s["servers"] != ["*"] and set(s["servers"]) < set(HOSTS) for s in steps), steps
    assert sorted({h for s in steps for h in s["servers"]}) == case["halted"], (steps, story)
    assert sorted(stand_in.stopped()) == case["halted"], story
    after = stand_in.read()
    for host, (version, lb) in case["fleet"].items():
        if host not in case["halted"]:
            assert after[host] == {"version": version, "lb": lb, "stopped": False}, (host, after, story)
        else:
            assert after[host]["lb"] == "MAINT" and after[host]["stopped"], (host, after, story)
    if len(ran) > 1 and ran[1][2] != "canceled":
        proof = ran[1][4]["lockstep_audit_proof"]  # the verify job's artifact
        assert sorted(proof["hosts"]) == case["halted"], proof
    if len(ran) > 2:
        identifier, template, status, extra_vars, artifacts = ran[2]
        assert TEMPLATES[template]["playbook"] == "awx/halt_proven.yml"
        # AWX handed the halt job the release's and the verify job's artifacts, and the survey answer.
        assert extra_vars["lockstep_version"] == NEW
        assert artifacts["lockstep_status"] == ("halted" if case["halted"] else "refused"), (artifacts, story)
    # A refused halt leaves the workflow failed, as the release did.
    assert failed == (not case["halted"] and ran[-1][2] != "successful"), ran


def test_the_halt_job_refuses_a_proof_naming_every_host_or_an_overridden_scope(tmp_path, http_service, monkeypatch):
    """The halt job checks the proof it is handed, whatever produced it."""
    stand_in = StandIn(tmp_path, http_service, {h: (NEW, "UP") for h in HOSTS})
    every = {"hosts": dict.fromkeys(HOSTS, "serves 2.0.0"), "none_because": None, "not_proof": []}
    for extra_vars in ({"lockstep_audit_proof": every},
                       {"lockstep_audit_proof": dict(every, hosts={"h9": "not a host of the service"})},
                       {"lockstep_audit_proof": dict(every, hosts={"h2": "serves 2.0.0"}), "lockstep_halt_hosts": []},
                       {"lockstep_audit_proof": dict(every, hosts={"h2": "serves 2.0.0"}),
                        "lockstep_halt_respect_lock": False}):
        status, artifacts = stand_in.run("awx/halt_proven.yml", extra_vars, monkeypatch)
        assert status == "failed" and artifacts.get("lockstep_status") == "refused", (extra_vars, artifacts,
                                                                                      stand_in.outputs[-1][2][-3000:])
    assert stand_in.lb_steps() == [] and stand_in.stopped() == []
    assert "halt refused, nothing touched" in stand_in.outputs[0][2]


def test_the_halt_job_refuses_while_a_release_holds_the_lock(tmp_path, http_service, monkeypatch):
    """Proof made before a release took the lock is not acted on: the kill switch checks the lock when it acts."""
    stand_in = StandIn(tmp_path, http_service, {"h1": (OLD, "UP"), "h2": (OLD, "UP"), "h3": (NEW, "UP")})
    stand_in.lock.write_text(json.dumps(LOCK))
    proof = {"hosts": {"h3": "serves 2.0.0"}, "none_because": None, "not_proof": []}
    status, artifacts = stand_in.run("awx/halt_proven.yml", {"lockstep_audit_proof": proof}, monkeypatch)
    out = stand_in.outputs[-1][2]
    assert status == "failed" and artifacts.get("lockstep_status") == "refused", (artifacts, out[-3000:])
    assert "a release holds the lock" in out, out[-3000:]
    assert stand_in.lb_steps() == [] and stand_in.stopped() == []


def test_a_host_back_on_the_version_it_ran_before_a_mixed_start_is_not_proof():
    # lockstep_allow_mixed_start: h3 ran 0.9.9 before the release and went back to it; lockstep_hosts says so.
    audit = audit_of({"h1": OLD, "h2": OLD, "h3": "0.9.9"}, lb=UP)
    before = {"h1": {"before": OLD}, "h2": {"before": OLD}, "h3": {"before": "0.9.9"}}
    assert proven_wrong(audit, outcome="rolled_back", expected=OLD, release_hosts=before)["hosts"] == {}
    before["h3"]["before"] = OLD
    assert list(proven_wrong(audit, outcome="rolled_back", expected=OLD, release_hosts=before)["hosts"]) == ["h3"]

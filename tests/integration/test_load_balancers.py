"""Any load balancer, or none (docs/load-balancers.md), on the real local fleet with a service that is not the sample.

``lockstep_lb: none``: an inventory with no load balancer host at all and the lock on the controller; nothing is
drained, the preflight gate says the serving-backend check has no second source. ``lockstep_lb: tasks``: the
operator's own task file, here ``examples/load_balancers/haproxy_socket.yml`` (HAProxy through its admin socket with
plain commands), wrapped by a test task file that logs every step with what the load balancer answered. Each mode:
a first release onto a bare fleet, a clean release, and a halted release rolled back, judged from what the hosts
serve and, with a load balancer, from HAProxy's own view.
"""

from __future__ import annotations

import json
import os
import shutil

import yaml
from release_helpers import REPO, lb_status, release
from test_any_service import BASE, VARS, build, get, on_host, served

# Without a load balancer there is no {lb} URL: every check is per host.
HOST_CHECKS = [c for c in VARS["lockstep_smoke_checks"] if c.get("per_host", True)]


def versions_everywhere(fleet, version):
    assert set(served(fleet).values()) == {version}, served(fleet)
    for host in fleet.hosts:
        assert on_host(fleet, host) == (BASE + "/releases/" + version,) * 2, (host, on_host(fleet, host))


def inventory_without_lb(tmp_path):
    """The fleet's inventory with no load balancer group and no HAProxy settings, as a fleet without one has."""
    src = os.path.join(REPO, "inventory", "local")
    dst = tmp_path / "inventory"
    shutil.copytree(src, dst)
    with open(dst / "hosts.yml") as f:
        inv = yaml.safe_load(f)
    del inv["all"]["children"]["lb"]
    for name in ("lockstep_haproxy_socket", "lockstep_haproxy_backend", "lockstep_lb_url"):
        inv["all"]["vars"].pop(name, None)
    with open(dst / "hosts.yml", "w") as f:
        yaml.safe_dump(inv, f)
    return str(dst)


def gate(run, name):
    return next(r for r in run.records if r.get("event") == "gate" and r.get("gate") == name)


def test_no_load_balancer(fleet, tmp_path):
    fleet.up(hosts=3)
    for version in ("1.0.0", "2.0.0"):
        build(tmp_path, version)
    build(tmp_path, "3.0.0", healthy=False)
    inventory = inventory_without_lb(tmp_path)
    lock = tmp_path / "lock" / "app.lock"
    extra = dict(VARS, lockstep_artifact_dir=str(tmp_path / "artifacts"), lockstep_lb="none",
                 lockstep_smoke_checks=HOST_CHECKS, lockstep_lock_path=str(lock))

    first = release(tmp_path, "1.0.0", extra=extra, inventory=inventory)
    assert first.rc == 0 and first.status == "succeeded", first
    versions_everywhere(fleet, "1.0.0")

    clean = release(tmp_path, "2.0.0", extra=extra, inventory=inventory)
    assert clean.rc == 0 and clean.status == "succeeded", clean
    versions_everywhere(fleet, "2.0.0")
    preflight = gate(clean, "preflight")
    assert preflight["passed"] and "no load balancer" in preflight["message"], preflight
    assert "no second source" in preflight["message"], preflight
    # The lock lived on the controller (there is no load balancer host) and was given back with its run record.
    assert lock.parent.is_dir() and not lock.exists() and not os.path.exists(str(lock) + ".run")

    halted = release(tmp_path, "3.0.0", extra=extra, inventory=inventory)
    assert halted.rc != 0 and halted.status == "rolled_back", halted
    versions_everywhere(fleet, "2.0.0")
    # HAProxy exists on this fleet but was never lockstep's: every server as it was, serving.
    assert set(lb_status(fleet).values()) == {"UP"}, lb_status(fleet)

    # The kill switch without a load balancer stops every host, and the way back starts them on the same release.
    halt = release(tmp_path, None, extra=extra, inventory=inventory, playbook="halt.yml")
    assert halt.rc == 0 and "every host stopped" in halt.out, halt
    assert not [v for v in served(fleet).values() if not v.startswith("unreachable")], served(fleet)
    resume = release(tmp_path, None, extra=extra, inventory=inventory, playbook="resume.yml")
    assert resume.rc == 0, resume
    versions_everywhere(fleet, "2.0.0")


LOGGED = """---
- name: What lockstep asked
  ansible.builtin.set_fact:
    __asked: "{{{{ lockstep_lb_operation }}}}"
- name: The operator's load balancer
  ansible.builtin.include_tasks: {example}
  when: not __fault
- name: The fault - a drain of the second host that the load balancer silently does not do
  ansible.builtin.include_tasks: {example}
  vars:
    lockstep_lb_operation: query
  when: __fault
- name: Log the step and what the load balancer answered
  ansible.builtin.lineinfile:
    path: {log}
    create: true
    mode: "0600"
    line: "{{{{ __step | to_json }}}}"
  vars:
    # When: lineinfile writes a line once, and a step can be asked twice with the same answer (the canary drained
    # on its way forward, then again on its way back).
    __step: {{op: "{{{{ lockstep_lb_operation }}}}", servers: "{{{{ lockstep_lb_servers }}}}",
             after: "{{{{ lockstep_lb_backends }}}}", at: "{{{{ now(fmt='%H:%M:%S.%f') }}}}"}}
  delegate_to: localhost
  check_mode: false
"""
FAULT = ("{{ lb_fault | default(false) | bool and __asked == 'drain' and '%s' in lockstep_lb_servers }}")


def test_task_file_load_balancer(fleet, tmp_path):
    fleet.up(hosts=3)
    for version in ("1.0.0", "2.0.0"):
        build(tmp_path, version)
    build(tmp_path, "4.0.0")
    log = tmp_path / "lb.log"
    tasks = tmp_path / "lb.yml"
    tasks.write_text(LOGGED.format(example=os.path.join(REPO, "examples", "load_balancers", "haproxy_socket.yml"),
                                   log=log).replace("__fault", "(%s)" % (FAULT % fleet.hosts[1])[3:-3]))
    extra = dict(VARS, lockstep_artifact_dir=str(tmp_path / "artifacts"), lockstep_lb="tasks",
                 lockstep_lb_tasks=str(tasks))

    def steps():
        lines = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return [json.loads(line) for line in lines]

    def assert_confirmed(logged):
        for step in logged:
            for name in step["servers"]:
                serving = step["after"][name]["serving"]
                assert serving == (step["op"] == "ready"), step

    # --check changes nothing and still asks the task file (its query runs in check mode).
    assert release(tmp_path, "1.0.0", extra=extra, check=True).rc == 0
    assert steps()[0]["op"] == "query"

    first = release(tmp_path, "1.0.0", extra=extra)
    assert first.rc == 0 and first.status == "succeeded", first
    versions_everywhere(fleet, "1.0.0")
    assert_confirmed(steps())

    # The load balancer fails mid-release: the second wave's drain does not happen. lockstep sees it in the answer,
    # switches nothing more, and brings the canary back.
    # The halted release's rollback goes through the task file too: the canary drained first, drained again and
    # put back on the way back, every step but the fault confirmed by the load balancer's own answer.
    faulty = release(tmp_path, "4.0.0", extra=dict(extra, lb_fault=True))
    assert faulty.rc != 0 and faulty.status == "rolled_back", faulty
    finished = next(r for r in reversed(faulty.records) if r.get("event") == "release_finished")
    assert "not drained" in json.dumps(finished["halted_by"]), finished["halted_by"]
    versions_everywhere(fleet, "1.0.0")
    assert set(lb_status(fleet).values()) == {"UP"}, lb_status(fleet)
    assert {get("http://127.0.0.1:8000/version") for _ in range(6)} == {"1.0.0"}
    logged = steps()
    fault = [s for s in logged if s["op"] == "drain" and fleet.hosts[1] in s["servers"]]
    assert len(fault) == 1 and fault[0]["after"][fleet.hosts[1]]["serving"], logged
    assert_confirmed([s for s in logged if s not in fault])
    assert [s["servers"] for s in logged if s["op"] == "drain"] == [[fleet.hosts[0]], [fleet.hosts[1]],
                                                                    [fleet.hosts[0]]], logged

    clean = release(tmp_path, "2.0.0", extra=extra)
    assert clean.rc == 0 and clean.status == "succeeded", clean
    versions_everywhere(fleet, "2.0.0")
    logged = steps()
    assert_confirmed(logged)
    # The preflight's query, then each wave drained and put back through the task file, every host once.
    assert logged[0]["op"] == "query" and set(logged[0]["after"]) == set(fleet.hosts), logged[0]
    drained = [n for s in logged if s["op"] == "drain" for n in s["servers"]]
    readied = [n for s in logged if s["op"] == "ready" for n in s["servers"]]
    assert sorted(drained) == sorted(readied) == sorted(fleet.hosts), logged
    assert {get("http://127.0.0.1:8000/version") for _ in range(6)} == {"2.0.0"}

"""The kill switch (playbooks/halt.yml) and the way back (playbooks/resume.yml) against the real local fleet."""

from __future__ import annotations

from operator_helpers import HOSTS, audit_records, fleet_on_2_1_0, frontend_status, in_host, playbook
from release_helpers import lb_status


def test_halt_empties_the_backend_with_one_host_unreachable_and_names_it(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    fleet.sshd("h2", "stop")
    run = playbook(tmp_path, "halt.yml")
    assert run.rc != 0, run
    assert "halt not confirmed on h2" in run.out and "h2: not confirmed stopped" in run.out, run
    assert set(lb_status(fleet).values()) == {"MAINT"}, lb_status(fleet)
    assert frontend_status() == 503
    running = {h["name"]: h.get("version") for h in fleet.status()["hosts"]}
    assert running == {"h1": None, "h2": "1.0.0", "h3": None, "h4": None}, running
    record = audit_records(run)[-1]
    assert record["service"] == "stopped" and [p["host"] for p in record["problems"]] == ["h2"], record


def test_resume_refuses_a_mixed_fleet(fleet, tmp_path):
    fleet_on_2_1_0(fleet)
    assert playbook(tmp_path, "halt.yml").rc == 0
    in_host(fleet, "h3", "ln -sfn releases/1.0.0 /srv/order-router/current")
    run = playbook(tmp_path, "resume.yml")
    assert run.rc != 0, run
    assert "fleet audit failed on h3" in run.out and "active release is 1.0.0, the fleet runs 2.1.0" in run.out, run
    assert set(lb_status(fleet).values()) == {"MAINT"}, lb_status(fleet)
    assert frontend_status() == 503


def test_resume_after_a_clean_halt_brings_every_server_back(fleet, tmp_path):
    fleet_on_2_1_0(fleet)
    halted = playbook(tmp_path, "halt.yml")
    assert halted.rc == 0 and "LOCKSTEP HALT: every host stopped" in halted.out, halted
    assert set(lb_status(fleet).values()) == {"MAINT"}
    run = playbook(tmp_path, "resume.yml")
    assert run.rc == 0, run
    # "UP 1/2": up and serving, HAProxy still counting its rise checks.
    assert {h: s.split()[0] for h, s in lb_status(fleet).items()} == {h: "UP" for h in HOSTS}, lb_status(fleet)
    assert frontend_status() == 200
    assert audit_records(run)[-1]["passed"]

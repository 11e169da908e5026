"""lockstep.release.preflight, run by a real ansible-playbook on localhost with crafted fleet states.

Every case is the action's decision as a playbook sees it: the registered result, checked with
ansible.builtin.assert (see conftest.run_play).
"""

TARGET = "2.1.0"
MANIFEST = {"name": "order-router", "version": TARGET, "sha256": "a" * 64, "content_sha256": "c" * 64}
FLEET = ["h1", "h2", "h3"]


def host_state(version="2.0.0", running=None, consistent=True, releases=None, disk=10 ** 10):
    """A ``lockstep_state`` as the state module reports it (only the keys preflight reads, with their shapes)."""
    if releases is None:
        releases = [{"version": version, "valid": True, "content_sha256": "b" * 64, "problem": None}]
    return {
        "bare": version is None and not releases,
        "active_version": version,
        "active_valid": version is not None,
        "active_problem": None,
        "releases": releases,
        "running": {"reachable": version is not None, "version": version if running is None else running},
        "consistent": consistent,
        "disk_free_bytes": disk,
    }


def bare_state():
    return host_state(version=None, consistent=False, releases=[])


def preflight(states=None, run_hosts=FLEET, lb_servers=None, **extra):
    args = {
        "group": "app",
        "expected_hosts": FLEET,
        "run_hosts": run_hosts,
        "states": {h: host_state() for h in run_hosts} if states is None else states,
        "manifest": MANIFEST,
    }
    if lb_servers is not None:
        args["lb_servers"] = lb_servers
    args.update(extra)
    return {"lockstep.release.preflight": args}


def serving(*names):
    return {n: {"serving": True, "addr": "10.0.0.%d:8080" % i} for i, n in enumerate(names, 1)}


def test_complete_consistent_fleet_may_start(run_play):
    run_play((preflight(lb_servers=serving(*FLEET), min_free_bytes=10 ** 6), [
        "out is not failed",
        "out.lockstep_gate.passed",
        "out.lockstep_gate.gate == 'preflight'",
        "out.before_version == '2.0.0'",
        "not out.partial",
        "out.excluded == []",
        "out.lockstep_gate.hosts.h1.version == '2.0.0'",
    ]))


def test_first_release_on_a_bare_fleet_may_start(run_play):
    run_play((preflight(states={h: bare_state() for h in FLEET}), [
        "out is not failed",
        "out.before_version is none",
    ]))


def test_host_left_out_by_limit_refuses(run_play):
    run_play((preflight(run_hosts=["h1", "h2"], limit="h1:h2"), [
        "out is failed",
        "not out.lockstep_gate.passed",
        "out.lockstep_gate.halted | length == 1",
        "out.lockstep_gate.halted[0].host == 'h3'",
        "'left out of the run by --limit h1:h2' in out.msg",
        "'fleet-completeness' in out.msg",
        "out.excluded == ['h3']",
        "not out.partial",
    ]))


def test_partial_release_needs_both_the_flag_and_a_reason(run_play):
    left_out = dict(run_hosts=["h1", "h2"], limit="h1:h2")
    run_play(
        (preflight(allow_partial=True, partial_reason="h3 is being rebuilt (TICKET-42)", **left_out), [
            "out is not failed",
            "out.lockstep_gate.passed",
            "out.partial",
            "out.lockstep_gate.partial",
            "out.excluded == ['h3']",
            "'h3 excluded: left out of the run by --limit h1:h2' in out.msg",
        ]),
        (preflight(allow_partial=True, partial_reason="   ", **left_out), [
            "out is failed",
            "not out.partial",
            "'lockstep_partial_reason' in out.msg",
        ]),
        (preflight(allow_partial=False, partial_reason="a reason alone is not enough", **left_out), [
            "out is failed",
        ]),
    )


def test_host_that_did_not_report_refuses(run_play):
    states = {"h1": host_state(), "h2": host_state()}
    run_play((preflight(states=states, errors={"h3": "host unreachable: ssh timed out"}), [
        "out is failed",
        "out.lockstep_gate.halted[0].host == 'h3'",
        "'did not report its release state: host unreachable: ssh timed out' in out.msg",
    ]))


def test_serving_load_balancer_backend_unknown_to_the_inventory_refuses(run_play):
    run_play(
        (preflight(lb_servers=serving("h1", "h2", "h3", "h9")), [
            "out is failed",
            "out.lockstep_gate.halted | length == 1",
            "out.lockstep_gate.halted[0].host == 'h9'",
            "'serves traffic through the load balancer (10.0.0.4:8080)' in out.msg",
            "'not in inventory group app (load-balancer)' in out.msg",
        ]),
        # A backend that is drained or down carries no traffic: not a second fleet.
        (preflight(lb_servers=dict(serving("h1", "h2", "h3"), h9={"serving": False, "addr": "10.0.0.9:8080"})), [
            "out is not failed",
        ]),
    )


def test_a_load_balancer_that_does_not_answer_refuses(run_play):
    run_play((preflight(lb_servers={}, lb_error="haproxy: cannot reach the runtime API socket /run/haproxy.sock"), [
        "out is failed",
        "out.lockstep_gate.halted | length == 1",
        "out.lockstep_gate.halted[0].host == 'controller'",
        "out.lockstep_gate.halted[0].message == 'haproxy: cannot reach the runtime API socket /run/haproxy.sock "
        "(load-balancer)'",
    ]))


def test_mixed_fleet_refuses_unless_allowed(run_play):
    mixed = {"h1": host_state("2.0.0"), "h2": host_state("2.0.0"), "h3": host_state("1.0.0")}
    run_play(
        (preflight(states=mixed), [
            "out is failed",
            "out.lockstep_gate.halted[0].host == 'h3'",
            "'the fleet is already mixed (2.0.0: h1,h2; 1.0.0: h3) (mixed-fleet' in out.msg",
        ]),
        (preflight(states=mixed, allow_mixed_start=True), [
            "out is not failed",
            "'fleet starts mixed (2.0.0: h1,h2; 1.0.0: h3)' in out.msg",
            "out.before_version == '2.0.0'",
        ]),
    )


def test_host_running_something_else_than_it_holds_counts_as_mixed(run_play):
    states = {"h1": host_state(), "h2": host_state(), "h3": host_state(running="1.0.0", consistent=False)}
    run_play((preflight(states=states), [
        "out is failed",
        "out.lockstep_gate.halted[0].host == 'h3'",
        "'2.0.0 on disk / 1.0.0 running: h3' in out.msg",
    ]))


def test_existing_target_release_with_wrong_content_refuses(run_play):
    def with_target(valid, content, problem=None):
        releases = [{"version": "2.0.0", "valid": True, "content_sha256": "b" * 64, "problem": None},
                    {"version": TARGET, "valid": valid, "content_sha256": content, "problem": problem}]
        return host_state(releases=releases)

    run_play(
        (preflight(states={"h1": host_state(), "h2": host_state(),
                           "h3": with_target(False, "d" * 64, "content sha256 dddd does not match")}), [
            "out is failed",
            "out.lockstep_gate.halted[0].host == 'h3'",
            "'releases/2.1.0 already exists with the wrong content (content sha256 dddd does not match)' in out.msg",
            "'release-integrity' in out.msg",
        ]),
        # Valid on its own terms, but another build than the one being released.
        (preflight(states={"h1": host_state(), "h2": host_state(), "h3": with_target(True, "e" * 64)}), [
            "out is failed",
            "'content differs from the artifact' in out.msg",
        ]),
        # Already staged with exactly this content (an interrupted earlier run): fine.
        (preflight(states={"h1": host_state(), "h2": host_state(), "h3": with_target(True, "c" * 64)}), [
            "out is not failed",
        ]),
    )


def test_active_release_with_bad_content_refuses(run_play):
    tampered = dict(host_state(), active_valid=False, active_problem="content sha256 0123 does not match")
    run_play((preflight(states={"h1": host_state(), "h2": host_state(), "h3": tampered}), [
        "out is failed",
        "'active release 2.0.0 is not what its manifest says: content sha256 0123 does not match' in out.msg",
    ]))


def test_a_state_the_login_may_not_read_or_change_is_a_privilege_refusal_never_a_mix(run_play):
    # What the state module reports for a deploy login without become: the service's /proc entries unreadable
    # (so no "running from" proof), the release tree not writable.
    unreadable = host_state(consistent=False)
    unreadable.update(user="deploy", unreadable=["/proc/8/cwd: permission denied for user deploy"], writable=False)
    readonly = host_state()
    readonly.update(user="deploy", unreadable=[], writable=False, base="/srv/app")
    states = {"h1": unreadable, "h2": readonly, "h3": host_state()}
    run_play((preflight(states=states), [
        "out is failed",
        "out.lockstep_gate.halted | length == 2",
        "out.lockstep_gate.halted[0].host == 'h1'",
        "out.lockstep_gate.halted[0].message is search('cannot read its release state as user deploy: /proc/8/cwd')",
        "out.lockstep_gate.halted[0].message is search('[(]privilege; lockstep_become: true')",
        "out.lockstep_gate.halted[1].message == 'user deploy cannot write /srv/app (privilege; lockstep_become: true "
        "changes it with become)'",
        "out.msg is not search('mixed')",
    ]))


def test_low_disk_refuses(run_play):
    states = {"h1": host_state(), "h2": host_state(disk=100), "h3": host_state()}
    run_play((preflight(states=states, min_free_bytes=1000), [
        "out is failed",
        "out.lockstep_gate.halted | length == 1",
        "out.lockstep_gate.halted[0].host == 'h2'",
        "out.lockstep_gate.halted[0].message == 'only 100 bytes free, 1000 needed (disk)'",
    ]))


def test_every_reason_is_listed(run_play):
    states = {"h1": host_state(disk=5), "h2": host_state("1.0.0")}
    run_play((preflight(states=states, run_hosts=["h1", "h2"], limit="h1:h2", lb_servers=serving("h1", "h2", "x"),
                        min_free_bytes=10), [
        "out is failed",
        "out.lockstep_gate.halted | map(attribute='host') | sort == ['h1', 'h2', 'h3', 'x']",
        "out.lockstep_gate.halted[0].host == 'h3'",
        "'(and 3 more: ' in out.msg",
    ]))


def test_the_rollback_rehearsal_is_planned_said_when_off_and_skipped_on_a_first_release(run_play):
    run_play(
        (preflight(canary_hosts=["h1"]), [
            "out is not failed", "out.rehearse",
            "out.rehearsal == 'the rollback is rehearsed on h1 after its gate (back to 2.0.0, forward to 2.1.0 "
            "again), before any other host changes'"]),
        # Off: recorded with its reason in the gate's message (the ledger) and in what the summary prints.
        (preflight(canary_hosts=["h1"], rehearse=False, rehearse_reason="CHG-7 signed off"), [
            "out is not failed", "not out.rehearse",
            "out.rehearsal == 'rollback rehearsal OFF by the operator (CHG-7 signed off)'",
            "'rollback rehearsal OFF by the operator (CHG-7 signed off)' in out.lockstep_gate.message"]),
        (preflight(canary_hosts=["h1"], states={h: bare_state() for h in FLEET}), [
            "out is not failed", "not out.rehearse",
            "out.rehearsal == 'no rollback rehearsal: a first release, there is nothing to go back to'"]),
    )

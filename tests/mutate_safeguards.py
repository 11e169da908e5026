#!/usr/bin/env python3
"""Remove each lockstep safeguard once and check that the test written for it fails.

Run from the repository root: ``.venv/bin/python tests/mutate_safeguards.py [--ci] [NAME ...]``. Each mutation
edits one file of a scratch copy of the repository (tracked and untracked files; ``.venv`` and ``artifacts`` linked),
runs one test there and restores the file, so the working tree is never touched and other tests may run beside it.

Each entry is (safeguard, file, its code, the code without it, its test on the real fleet[, a fast test]). The
fleet test is the proof (each was seen to fail once, see the README): ``make mutate`` runs them all. ``--ci`` (what
``make test`` runs, beside the fleet tests) runs the fast test of every entry that has one, and the entries whose
only test needs the fleet are left to ``make mutate``: they are named at the end, never passed over in silence.
"""

import os
import shutil
import subprocess
import sys
import tempfile

# (safeguard, file, code that implements it, code without it, the test that must then fail)
MUTATIONS = [
    (
        'fleet completeness',
        'plugins/action/preflight.py',
        'halted.append((host, why + " (fleet-completeness',
        'print((host, why + " (fleet-completeness',
        'test_release_halts.py::test_host_left_out_by_limit_refuses',
        'tests/unit/test_release_preflight.py::test_host_left_out_by_limit_refuses',
    ),
    (
        'load balancer source of truth',
        'plugins/action/preflight.py',
        'if server.get("serving") and name not in a["expected_hosts"]:',
        'if False:',
        'test_release_halts.py::test_serving_host_missing_from_inventory_refuses',
        'tests/unit/test_release_preflight.py::test_serving_load_balancer_backend_unknown_to_the_inventory_refuses',
    ),
    (
        'a load balancer that does not answer at preflight refuses',
        'plugins/action/preflight.py',
        '        if a["lb_error"]:',
        '        if False:',
        'test_safety_net.py::test_load_balancer_that_does_not_answer_at_preflight_refuses_before_anything_changes',
        'tests/unit/test_release_preflight.py::test_a_load_balancer_that_does_not_answer_refuses',
    ),
    (
        'the switch runs on ansible-core 2.16-2.18 (its condition parses there)',
        'roles/rollout/tasks/main.yml',
        "        ((inventory_hostname in __lockstep_switch_back) if __lockstep_back\n"
        "         else ({inventory_hostname: __lockstep_preflight_state.lockstep_state | default({})}\n"
        "               | lockstep.release.pending_hosts([inventory_hostname], lockstep_version) | length > 0))\n",
        "        (inventory_hostname in __lockstep_switch_back) if __lockstep_back\n"
        "         else ({inventory_hostname: __lockstep_preflight_state.lockstep_state | default({})}\n"
        "               | lockstep.release.pending_hosts([inventory_hostname], lockstep_version) | length > 0)\n",
        'test_ansible_core_range.py::test_release_and_halt_on_each_supported_ansible_core',
        'tests/unit/test_conditions_parse.py::test_every_shipped_condition_parses_on_the_older_cores',
    ),
    (
        'running-version check',
        'plugins/modules/deploy.py',
        'ok = st["consistent"] and st["active_version"] == version and run["version"] == version',
        'ok = True',
        'test_release_halts.py::test_old_process_still_running_after_switch_is_caught',
        'tests/unit/test_release_deploy.py::test_active_fails_when_the_old_process_keeps_serving',
    ),
    (
        'mixed-fleet gate',
        'plugins/action/preflight.py',
        'if a["allow_mixed_start"]:',
        'if True:',
        'test_release_halts.py::test_a_partial_release_is_never_a_success_and_a_fleet_it_left_mixed_refuses_unless_allowed',
        'tests/unit/test_release_preflight.py::test_mixed_fleet_refuses_unless_allowed',
    ),
    (
        'artifact checksum on the controller',
        'plugins/action/plan.py',
        'if digest != manifest.get("sha256"):',
        'if False:',
        'test_release_halts.py::test_corrupted_artifact_refuses_before_touching_a_host',
        'tests/unit/test_release_refusals.py::test_the_plans_input_refusals_each_name_their_cause',
    ),
    (
        'an inventory without the fleet is refused',
        'playbooks/check_fleet.yml',
        "      when: groups[lockstep_group | default('app')] | default([]) | length > 0",
        '      when: true',
        'tests/unit/test_release_refusals.py::test_an_inventory_without_the_fleet_is_refused_never_an_exit_0',
    ),
    (
        "a wave's failure is rescued (no host dropped from the rollback)",
        'roles/rollout/tasks/main.yml',
        '  rescue:\n    # When every host of the wave failed its switch',
        '  always:\n    # When every host of the wave failed its switch',
        'tests/unit/test_release_structure.py::test_every_task_of_a_release_that_can_fail_is_rescued_or_reports',
    ),
    (
        "verify's failure is rescued (no host dropped from the rollback)",
        'roles/verify/tasks/main.yml',
        '  rescue:\n    - name: Verify | halt the release',
        '  always:\n    - name: Verify | halt the release',
        'tests/unit/test_release_structure.py::test_every_task_of_a_release_that_can_fail_is_rescued_or_reports',
    ),
    (
        "a halted first release's hosts are proven stopped",
        'plugins/action/gate.py',
        '                if run.get("reachable") or run.get("version"):',
        '                if False:',
        'tests/unit/test_release_gate.py::test_a_halted_first_releases_host_is_proven_stopped_whatever_stays_on_disk',
    ),
    (
        'release lock',
        'plugins/module_utils/lock_step.py',
        '    if not held and not check_mode:\n        os.makedirs(os.path.dirname(p["path"]) or ".", exist_ok=True)\n        try:\n            fd = os.open(p["path"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)',
        '    if not check_mode:\n        held = None\n        try:\n            fd = os.open(p["path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)',
        'test_release_halts.py::test_concurrent_release_is_refused_and_the_first_is_unharmed',
        'tests/unit/test_release_lock.py::test_second_release_is_refused_naming_the_holder',
    ),
    (
        'wave gate',
        'plugins/action/gate.py',
        '            if problems:\n                halted.append',
        '            if problems and False:\n                halted.append',
        'test_release_halts.py::test_wave_gate_catches_a_host_that_drifts_back_mid_release',
        'tests/unit/test_release_gate.py::test_every_kind_of_mismatch_halts',
    ),
    (
        'smoke (behavioural)',
        'plugins/action/smoke.py',
        '            if problem:\n                halted.append',
        '            if problem and False:\n                halted.append',
        'test_release_halts.py::test_behavioural_smoke_failure_rolls_back',
        'tests/unit/test_release_smoke.py::test_a_failing_check_halts_naming_host_and_check',
    ),
    (
        'smoke commands',
        'plugins/modules/run.py',
        '        if entry["rc"] != 0:',
        '        if False:',
        'test_safety_net.py::test_rollback_in_waves_loses_no_request[after the last wave]',
        'tests/unit/test_fast_safeguards.py::'
        'test_a_smoke_command_that_exits_non_zero_fails_the_check_and_stops_the_rest',
    ),
    (
        'metrics watch',
        'plugins/action/watch.py',
        '    if "max" in threshold and value > float(threshold["max"]):',
        '    if False:',
        'test_release_halts.py::test_metrics_threshold_breached_during_watch_rolls_back',
        'tests/unit/test_release_watch.py',
    ),
    (
        'unreachable guard',
        'plugins/plugin_utils/guard.py',
        '        except AnsibleConnectionFailure as e:',
        '        except ZeroDivisionError as e:',
        'test_release_halts.py::test_sshd_stopped_between_canary_and_second_wave_rolls_back',
        'tests/unit/test_fast_safeguards.py::'
        'test_an_unreachable_host_is_a_failed_result_the_rescue_sees_never_a_host_dropped_from_the_play',
    ),
    (
        'kill switch',
        'roles/rollback/tasks/main.yml',
        '        __lockstep_lb_op: maint',
        '        __lockstep_lb_op: ready',
        'test_release_halts.py::test_rollback_that_cannot_complete_drains_the_host',
        'tests/unit/test_release_in_miniature.py::test_a_halt_rolls_back_wave_by_wave_and_only_a_host_proven_back_serves',
    ),
    (
        'rollback',
        'playbooks/release.yml',
        "      when: ansible_check_mode or (hostvars['localhost'].__lockstep_record.halt.phase | default('preflight')) == 'preflight'",
        '      when: true',
        'test_knight.py::test_knight_morning_rlp_orders_flow_and_none_ever_floods',
        'tests/unit/test_release_in_miniature.py::test_a_halt_rolls_back_wave_by_wave_and_only_a_host_proven_back_serves',
    ),
    (
        'unknown-variable check',
        'plugins/action/plan.py',
        '        if unknown:',
        '        if False:',
        'test_release_input.py',
        'tests/unit/test_fast_safeguards.py::test_a_misspelt_lockstep_variable_is_refused_never_left_to_its_default',
    ),
    (
        'audit: running version (HTTP layer)',
        'plugins/plugin_utils/audit.py',
        '            if version is not None and label(host) != version:',
        '            if False:',
        'test_audit.py::test_audit_names_a_process_swapped_for_the_old_version',
        'tests/unit/test_fast_safeguards.py::test_the_audit_names_a_process_that_runs_another_version_than_the_fleet',
    ),
    (
        'audit: started from the release tree',
        'plugins/plugin_utils/audit.py',
        '                if os.path.normpath(str(p.get("directory"))) != tree:',
        '                if False:',
        'test_audit.py::test_audit_names_a_process_running_from_outside_the_release_tree',
        'tests/unit/test_fast_safeguards.py::test_the_audit_names_a_process_started_from_outside_the_release_tree',
    ),
    (
        'audit: active release against its manifest',
        'plugins/plugin_utils/audit.py',
        '        if st.get("active_version") is not None and not st.get("active_valid"):',
        '        if False:',
        'test_audit.py::test_audit_names_a_poisoned_release_directory',
        'tests/unit/test_fast_safeguards.py::'
        'test_the_audit_names_an_active_release_that_fails_its_manifest_even_on_every_host_alike',
    ),
    (
        'audit: unknown serving backend',
        'plugins/plugin_utils/audit.py',
        '                if srv.get("serving"):\n                    bad(name, "HAProxy serves',
        '                if False:\n                    bad(name, "HAProxy serves',
        'test_audit.py::test_audit_names_an_unknown_serving_backend',
        'tests/unit/test_fast_safeguards.py::'
        'test_the_audit_names_a_backend_haproxy_serves_that_the_inventory_does_not_know',
    ),
    (
        'audit: host that does not report over SSH',
        'plugins/plugin_utils/audit.py',
        '            bad(host, "does not report over SSH: %s" % errors.get(host, "no state"))',
        '            pass',
        'test_audit.py::test_audit_names_a_host_whose_sshd_is_stopped_and_still_reads_its_http_layer',
        'tests/unit/test_fast_safeguards.py::test_the_audit_names_a_host_that_does_not_report_over_ssh',
    ),
    (
        'halt: every server out of the load balancer',
        'roles/killswitch/tasks/main.yml',
        "else (['*'] if lockstep_lb == 'haproxy' else groups[lockstep_group]) }}\"",
        'else [] }}"',
        'test_halt.py::test_halt_empties_the_backend_with_one_host_unreachable_and_names_it',
    ),
    (
        'halt: stop confirmed',
        'plugins/plugin_utils/audit.py',
        '            if why:',
        '            if False:',
        'test_halt.py::test_halt_empties_the_backend_with_one_host_unreachable_and_names_it',
        'tests/unit/test_fast_safeguards.py::'
        'test_a_halt_is_confirmed_only_when_no_host_answers_and_every_stop_succeeded',
    ),
    (
        'resume: only a uniform fleet',
        'roles/audit/tasks/main.yml',
        '  when: not __lockstep_audit.lockstep_audit.passed',
        '  when: false',
        'test_halt.py::test_resume_refuses_a_mixed_fleet',
    ),
    (
        'lock break: the run id typed back',
        'plugins/plugin_utils/operator_cli.py',
        '    if run_id != lock["run_id"]:',
        '    if False:',
        '../unit/test_lock_cli.py',
    ),
    (
        'tree hash covers __pycache__',
        'plugins/module_utils/tree_hash.py',
        '        dirnames[:] = sorted(dirnames)',
        '        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")',
        'tests/unit/test_release_integrity.py::test_pyc_dropped_into_a_release_is_caught',
    ),
    (
        'unpacked links stay inside the release',
        'plugins/modules/deploy.py',
        '                if target != root and not target.startswith(root + os.sep):',
        '                if False:',
        'tests/unit/test_release_integrity.py::test_deploy_refuses_on_debian_python',
    ),
    (
        'no setuid/setgid in a release',
        'plugins/modules/deploy.py',
        '        if member.mode & _SETID and not member.isdir():',
        '        if False:',
        'tests/unit/test_release_integrity.py::test_deploy_refuses_on_debian_python',
    ),
    (
        'unpack keeps no owner or group write',
        'plugins/modules/deploy.py',
        '            os.fchmod(out.fileno(), (member.mode & 0o755) | 0o600)',
        '            os.fchmod(out.fileno(), member.mode)\n            os.fchown(out.fileno(), member.uid, member.gid)',
        'tests/unit/test_release_integrity.py::test_fallback_keeps_no_owner_no_setid_no_group_write',
    ),
    (
        'nothing written through an archive link',
        'plugins/modules/deploy.py',
        '        if any("/".join(parents[:i]) in links for i in range(1, len(parents) + 1)):',
        '        if False:',
        'tests/unit/test_release_integrity.py::test_fallback_refuses',
    ),
    (
        'flag-reuse gate',
        'plugins/action/preflight.py',
        '        elif found:',
        '        elif False:',
        'test_knight.py::test_flag_reuse_gate_refuses_2_0_0_on_a_healthy_1_0_0_fleet_and_2_1_0_succeeds',
        'tests/unit/test_release_flags.py::test_preflight_refuses_2_0_0_on_a_healthy_1_0_0_fleet',
    ),
    (
        'flag-reuse gate on rollback',
        'plugins/plugin_utils/flags.py',
        '            if (a["meaning"], a["since"]) != (b["meaning"], b["since"]):',
        '            if False:',
        'test_knight.py::test_rollback_to_a_version_that_reads_the_flag_differently_needs_the_recorded_override',
        'tests/unit/test_release_flags.py::test_rollback_2_0_0_to_1_0_0_is_the_same_conflict_seen_from_the_other_side',
    ),
    (
        'manifest agrees with its flags file',
        'plugins/action/plan.py',
        '            if problems:',
        '            if False:',
        'test_knight.py::test_manifest_that_lies_about_its_flags_is_refused',
        'tests/unit/test_fast_safeguards.py::test_a_manifest_that_lies_about_the_flags_of_its_own_artifact_is_refused',
    ),
    (
        'rollback in the rollout waves',
        'roles/rollout/tasks/main.yml',
        "      {{ ansible_play_batch | intersect(__lockstep_ctl.changed | default([])) if __lockstep_back",
        "      {{ __lockstep_ctl.changed | default([]) if __lockstep_back",
        'test_safety_net.py::test_rollback_in_waves_loses_no_request',
        'tests/unit/test_release_in_miniature.py::test_a_halt_rolls_back_wave_by_wave_and_only_a_host_proven_back_serves',
        'test_safety_net.py::test_rollback_in_waves_loses_no_request[after the last wave]',
    ),
    (
        'operator MAINT/DRAIN restored as found',
        'plugins/filter/lockstep.py',
        '        if h in (ours or ()) or (status is not None and not status.startswith(("MAINT", "DRAIN"))):',
        '        if h in (ours or ()) or status is not None:',
        'test_safety_net.py::test_operator_maint_and_drain_stay_as_found_after_a_release_and_a_rollback',
        'tests/unit/test_safety_net_units.py::test_an_operator_s_maint_or_drain_is_never_lockstep_s_to_touch',
    ),
    (
        'no-check servers serve',
        'plugins/module_utils/haproxy_api.py',
        '    return (status.startswith("UP") or status == "no check") and',
        '    return status.startswith("UP") and',
        'test_safety_net.py::test_backend_without_health_checks_drains_readies_and_guards',
        'tests/unit/test_haproxy_api.py::test_servers_without_health_checks_serve',
    ),
    (
        'runtime-API names validated',
        'plugins/module_utils/haproxy_api.py',
        '    if not isinstance(name, str) or not NAME_RE.match(name):',
        '    if False:',
        'tests/unit/test_haproxy_api.py',
    ),
    (
        'backend address is the host',
        'plugins/action/preflight.py',
        '                if want and name in a["expected_hosts"] and server.get("addr") and server.get("addr") != want:',
        '                if False:',
        'test_safety_net.py::test_backend_entry_pointing_elsewhere_refuses',
        'tests/unit/test_safety_net_units.py::test_preflight_refuses_a_backend_entry_pointing_elsewhere',
    ),
    (
        'rollback goes on without the load balancer',
        'roles/common/tasks/lb_result.yml',
        # A step not done made a failure in both directions: back, the host that met it is not switched back.
        '  delegate_to: localhost\n  delegate_facts: true\n  run_once: true\n',
        '  delegate_to: localhost\n  delegate_facts: true\n  run_once: true\n\n'
        '- name: Load balancer | a step not done fails\n'
        '  ansible.builtin.fail:\n    msg: "{{ hostvars[\'localhost\'].__lockstep_record.lb_step.msg }}"\n'
        '  run_once: true\n'
        "  when: hostvars['localhost'].__lockstep_record.lb_step.lockstep_lb_error is defined\n",
        'test_safety_net.py::test_load_balancer_gone_after_the_canary_still_switches_every_host_back',
        'tests/unit/test_release_in_miniature.py::test_a_load_balancer_gone_after_the_canary_halts_the_next_wave_and_the_canary_still_goes_back',
    ),
    (
        'HAProxy away from the lock keeps the run record in its own task',
        'roles/common/vars/main.yml',
        "{{ '_lock_elsewhere' if lockstep_lb == 'haproxy'",
        "{{ '' if lockstep_lb == 'haproxy'",
        'test_remote_lock.py::test_the_lock_on_another_host_refuses_a_second_controller_and_keeps_the_guard_silent',
        'tests/unit/test_load_balancer_interface.py::test_haproxy_away_from_the_lock_keeps_the_run_record_in_a_task_of_its_own',
    ),
    (
        "the kill switch's load balancer step runs once for the play",
        'roles/killswitch/tasks/main.yml',
        "    __lockstep_lb_wait: false\n  # Once for the play: a step is the load balancer's, never one per host (an operator's task file run from every\n  # host at once would race with itself).\n  run_once: true\n",
        "    __lockstep_lb_wait: false\n",
        # The behavioural test (the AWX workflow's halt, its task-file load balancer run from every host at once)
        # fails only when the race is lost: the structure test is the one that always fails.
        'tests/unit/test_release_structure.py::test_every_load_balancer_step_runs_once_for_the_play',
    ),
    (
        'a wave changes only the hosts not already on the release',
        'plugins/filter/lockstep.py',
        '        if not (state.get("active_version") == version and state.get("consistent")):',
        '        if False:',
        'test_release_clean.py::test_first_release_onto_a_bare_fleet',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_release_rehearses_the_rollback_on_the_drained_canary_and_a_manual_rollback_does_not',
    ),
    (
        'a host whose step failed is counted failed',
        'plugins/filter/lockstep.py',
        '        if res is not None and res.get("failed"):',
        '        if False:',
        'tests/unit/test_release_filters.py::test_host_failures_maps_failed_hosts_to_their_message',
    ),
    (
        'no release to go back to unless every host reported',
        'plugins/filter/lockstep.py',
        '    if not states or len(states) != len(hosts):',
        '    if not states:',
        'tests/unit/test_release_filters.py::test_previous_release_is_none_when_there_is_nothing_safe_to_return_to',
    ),
    (
        'changed-unknown host',
        'plugins/filter/lockstep.py',
        '        if res.get("switched") or (res.get("lockstep_unreachable") and not res.get("lockstep_never_connected")):',
        '        if res.get("switched"):',
        'test_safety_net.py::test_host_vanishing_in_the_middle_of_its_switch_is_changed_unknown',
        'tests/unit/test_safety_net_units.py::test_a_connection_lost_mid_switch_counts_as_changed_but_one_never_made_does_not',
    ),
    (
        'ledger broken mid-release: every later record in the fallback',
        'plugins/plugin_utils/ledger_writer.py',
        '            return self._fall_back(f"cannot append to ledger {self.writer.path}: {ex}", rec)',
        '            return None',
        'test_safety_net.py::test_ledger_broken_after_the_canary_halts_rolls_back_and_keeps_the_record',
        'tests/unit/test_fast_safeguards.py::test_a_ledger_that_breaks_mid_release_falls_back_and_the_run_goes_on',
    ),
    (
        'a broken ledger: the run\'s tasks are told',
        'plugins/plugin_utils/ledger_writer.py',
        '        os.environ[LEDGER_BROKEN_ENV] = f"{message}; records continue in {self.fallback}"',
        '        pass',
        'test_safety_net.py::test_ledger_broken_after_the_canary_halts_rolls_back_and_keeps_the_record',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_ledger_that_cannot_be_created_refuses_the_release_before_any_host_is_touched',
    ),
    (
        'a broken ledger: the plan refuses the release',
        'plugins/action/plan.py',
        '        if broken:\n            # Set by the ledger callback',
        '        if False:\n            # Set by the ledger callback',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_ledger_that_cannot_be_created_refuses_the_release_before_any_host_is_touched',
    ),
    (
        'ledger broken mid-release: gates halt',
        'plugins/plugin_utils/gates.py',
        '    if broken and not str(gate).startswith(NOT_FORWARD):',
        '    if False:',
        'test_safety_net.py::test_ledger_broken_after_the_canary_halts_rolls_back_and_keeps_the_record',
        'tests/unit/test_safety_net_units.py::test_forward_gates_halt_while_the_ledger_is_broken_and_the_rollback_s_do_not',
    ),
    (
        'dependency outage is not a full outage',
        'roles/rollback/tasks/main.yml',
        "         + (__lockstep_rollback_gate.lockstep_gate.halted | default([]) | map(attribute='host') | list) }}",
        "         + (__lockstep_rollback_gate.lockstep_gate.halted | default([]) | map(attribute='host') | list)"
        "\n         + (__lockstep_rollback_smoke.lockstep_gate.halted | default([]) | map(attribute='host') | list) }}",
        'test_safety_net.py::test_dependency_down_during_the_release_is_not_turned_into_a_full_outage',
        'tests/unit/test_release_in_miniature.py::test_a_halt_rolls_back_wave_by_wave_and_only_a_host_proven_back_serves',
    ),
    (
        'baseline smoke at preflight',
        'roles/preflight/tasks/main.yml',
        '      when: not ansible_check_mode and __lockstep_preflight.before_version is not none and lockstep_smoke_checks',
        '      when: false and __lockstep_preflight.before_version is not none and lockstep_smoke_checks',
        'test_safety_net.py::test_fleet_failing_its_smoke_checks_before_the_release_is_refused',
        'tests/unit/test_release_in_miniature.py::test_a_fleet_failing_its_smoke_checks_before_the_release_is_refused',
    ),
    (
        'unexposed metric fails the watch',
        'plugins/action/watch.py',
        '    if missing:',
        '    if False:',
        'test_safety_net.py::test_metric_a_host_does_not_expose_is_a_watch_failure',
        'tests/unit/test_release_watch.py::test_a_metric_the_host_does_not_expose_is_a_breach_not_a_zero',
    ),
    (
        'guard: nothing while a release holds the lock',
        'extensions/eda/plugins/event_source/lockstep_guard.py',
        '        return _read_lock(self.lock_path) if self.lock_path else None',
        '        return None',
        'test_guard.py::test_guard_leaves_a_release_alone_then_drains_only_the_host_swapped_back',
        'tests/unit/test_guard_source.py::test_a_poll_finds_the_odd_host_and_says_nothing_while_a_release_holds_the_lock',
    ),
    (
        'guard: its halt refuses while a release holds the lock',
        'roles/killswitch/tasks/main.yml',
        '  when: lockstep_halt_respect_lock | bool\n  run_once: true\n  block:',
        '  when: false\n  run_once: true\n  block:',
        'test_guard.py::test_halt_for_the_guard_refuses_while_a_release_holds_the_lock',
    ),
    (
        'guard: kill switch limited to the named host (load balancer)',
        'roles/killswitch/tasks/main.yml',
        '    __lockstep_lb_servers: "{{ lockstep_halt_hosts if lockstep_halt_hosts | length > 0 else',
        '    __lockstep_lb_servers: "{{ [\'*\'] if true else',
        'test_guard.py::test_guard_leaves_a_release_alone_then_drains_only_the_host_swapped_back',
        'test_guard.py::test_halt_limited_to_named_hosts_touches_no_other',
    ),
    (
        'guard: kill switch limited to the named host (service stopped)',
        'roles/killswitch/tasks/main.yml',
        '  when: inventory_hostname in __lockstep_halt_scope',
        '  when: inventory_hostname in groups[lockstep_group]',
        'test_guard.py::test_halt_limited_to_named_hosts_touches_no_other',
    ),
    (
        'a dead run continued by the same release',
        'plugins/action/preflight.py',
        '            if resumed:',
        '            if False:',
        'test_dead_controller.py::test_sigkill_mid_release_then_lock_break_and_rerun_converges',
        'tests/unit/test_safety_net_units.py::test_the_mix_an_interrupted_run_of_this_release_left_is_continued_and_any_other_is_refused',
    ),
    (
        "the lock given back from one host: its failure is never the play's",
        'roles/finish/tasks/unlock.yml',
        '      ansible.builtin.include_tasks: lock.yml\n      run_once: true',
        '      lockstep.release.lock:\n'
        '        path: "{{ lockstep_lock_path }}"\n'
        '        state: released\n'
        '        run_id: "{{ __lockstep_run.run_id }}"\n'
        '        outcome: {status: "{{ __lockstep_status }}"}\n'
        '      delegate_to: "{{ lockstep_lock_host }}"\n'
        '      run_once: true',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_lock_that_cannot_be_given_back_is_said_and_every_host_still_runs_its_after_release_hook',
    ),
    (
        'a halt before smoke ends the play there',
        'playbooks/release.yml',
        "    - name: Lockstep | halted before smoke\n      ansible.builtin.meta: end_play\n"
        "      when: hostvars['localhost'].__lockstep_record.halt is defined",
        "    - name: Lockstep | halted before smoke\n      ansible.builtin.meta: end_play\n      when: false",
        'tests/unit/test_release_in_miniature.py::test_a_phase_after_the_halting_one_never_starts[verify]',
    ),
    (
        'a halt before watch ends the play there',
        'playbooks/release.yml',
        "    - name: Lockstep | halted before watch, or check mode\n      ansible.builtin.meta: end_play\n"
        "      when: ansible_check_mode or hostvars['localhost'].__lockstep_record.halt is defined",
        "    - name: Lockstep | halted before watch, or check mode\n      ansible.builtin.meta: end_play\n"
        "      when: ansible_check_mode",
        'tests/unit/test_release_in_miniature.py::test_a_phase_after_the_halting_one_never_starts[smoke]',
    ),
    (
        'a halt before the smoke commands ends their play there',
        'playbooks/release.yml',
        "    - name: Lockstep | halted before the smoke commands, or check mode\n      ansible.builtin.meta: end_play\n"
        "      when: ansible_check_mode or hostvars['localhost'].__lockstep_record.halt is defined",
        "    - name: Lockstep | halted before the smoke commands, or check mode\n      ansible.builtin.meta: end_play\n"
        "      when: ansible_check_mode",
        'tests/unit/test_release_in_miniature.py::test_a_phase_after_the_halting_one_never_starts[verify]',
    ),
    (
        "the wave gate's judgement halts the release",
        'roles/rollout/tasks/main.yml',
        "             if __lockstep_passed | bool\n",
        "             if true\n",
        'test_release_halts.py::test_wave_gate_catches_a_host_that_drifts_back_mid_release',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_host_that_stops_after_its_wave_halts_the_next_waves_gate_and_no_later_wave_starts',
    ),
    (
        "a batch off the plan is judged before any of its hosts switches",
        'roles/rollout/tasks/main.yml',
        '      when: ansible_play_batch != __lockstep_ctl.run.waves[__lockstep_wave_no | int] | default([])',
        '      when: false',
        'tests/unit/test_release_in_miniature.py::'
        'test_waves_set_where_serial_cannot_read_them_halt_before_a_batch_off_the_plan_switches',
    ),
    (
        "verify's judgement halts the release",
        'roles/verify/tasks/main.yml',
        '      when: not (__lockstep_gate.lockstep_gate.passed | default(true))',
        '      when: false',
        'tests/unit/test_release_in_miniature.py::test_a_phase_after_the_halting_one_never_starts[verify]',
    ),
    (
        "smoke's judgement halts the release",
        'roles/smoke/tasks/main.yml',
        '      when: not (__lockstep_gate.lockstep_gate.passed | default(true))',
        '      when: false',
        'test_safety_net.py::test_rollback_in_waves_loses_no_request[after the last wave]',
        'tests/unit/test_release_in_miniature.py::test_a_phase_after_the_halting_one_never_starts[smoke-gate]',
    ),
    (
        "the watch's judgement halts the release",
        'roles/watch/tasks/main.yml',
        '      when: not (__lockstep_gate.lockstep_gate.passed | default(true))',
        '      when: false',
        'test_release_halts.py::test_metrics_threshold_breached_during_watch_rolls_back',
        'tests/unit/test_release_in_miniature.py::test_a_phase_after_the_halting_one_never_starts[watch]',
    ),
    (
        "a dead run's drains put back once proven",
        'roles/finish/tasks/main.yml',
        "      when: __lockstep_status in ['succeeded', 'partial'] and __lockstep_ctl.lb_drained | default([]) | length > 0",
        '      when: false',
        'test_dead_controller.py::test_sigkill_mid_release_then_lock_break_and_rerun_converges',
    ),
    (
        'without a load balancer, a host not proven back is stopped',
        'roles/rollback/tasks/main.yml',
        "      when: lockstep_lb == 'none' and inventory_hostname in __lockstep_rb_bad and lockstep_stop_command | length > 0",
        "      when: false",
        'tests/unit/test_release_in_miniature.py::'
        'test_without_a_load_balancer_a_host_the_rollback_cannot_prove_back_is_stopped',
    ),
    (
        'a halted first release stops its hosts',
        'roles/rollback/tasks/main.yml',
        '      when: inventory_hostname in __lockstep_first and lockstep_stop_command | length > 0',
        '      when: false',
        'test_safety_net.py::test_first_release_that_halts_stops_its_hosts_and_takes_them_out',
    ),
    (
        'a load balancer step not done halts the wave',
        'roles/common/tasks/lb_result.yml',
        "                     if __lockstep_lb_halt_gate | default('') | length > 0\n",
        "                     if false\n",
        'test_load_balancers.py::test_task_file_load_balancer',
        'tests/unit/test_release_in_miniature.py::test_a_load_balancer_gone_after_the_canary_halts_the_next_wave_and_the_canary_still_goes_back',
    ),
    (
        "a task-file load balancer's answer is checked",
        'plugins/filter/lockstep.py',
        'wrong = [n for n in servers or [] if n in out["servers"] and out["servers"][n]["serving"] != want]',
        'wrong = []',
        'test_load_balancers.py::test_task_file_load_balancer',
        'tests/unit/test_load_balancer_interface.py::test_a_step_not_confirmed_is_the_steps_error',
    ),
    (
        'no load balancer: said in the preflight gate',
        'plugins/action/preflight.py',
        '        elif a["lb_servers"] is None:\n            warnings.append(',
        '        elif False:\n            warnings.append(',
        'test_load_balancers.py::test_no_load_balancer',
        'tests/unit/test_load_balancer_interface.py::test_without_a_load_balancer_the_gate_says_there_is_no_second_source',
    ),
    (
        "each load balancer mode's inputs, before any host",
        'plugins/action/plan.py',
        '        if problem:\n            return self.fail(problem)',
        '        if False:\n            return self.fail(problem)',
        'tests/unit/test_load_balancer_interface.py::test_each_mode_needs_its_own_inputs_before_any_host',
    ),
    (
        'secrets: inline vault values',
        'plugins/plugin_utils/secrets.py',
        '    if kind == "EncryptedString":  # 2.19',
        '    if False:  # 2.19',
        'test_ledger_callback_vault.py::test_inventory_secrets_are_absent_from_every_output',
    ),
    (
        'secrets: files encrypted whole',
        'plugins/plugin_utils/secrets.py',
        '        return origin is not None and self._file_is_vaulted(origin.path)',
        '        return False',
        'test_ledger_callback_vault.py::test_inventory_secrets_are_absent_from_every_output',
    ),
    (
        'secrets: secret names from any source',
        'plugins/module_utils/ledger.py',
        '    return matcher is not None and matcher.match(str(name).lower()) is not None',
        '    return False',
        'test_ledger_callback_vault.py::test_inventory_secrets_are_absent_from_every_output',
    ),
    (
        'secrets: collected as each play starts',
        'plugins/callback/ledger.py',
        '            self._secrets.play(play, play_vars, self._hostvars, '
        'play_vars.get("ansible_play_hosts_all") or hosts)\n',
        '            pass\n',
        'test_ledger_callback_vault.py::test_inventory_secrets_are_absent_from_every_output',
    ),
    (
        'secrets: hosts read again at the next play after a task that may change their variables',
        'plugins/plugin_utils/secrets.py',
        '        if self._collected and may_set_variables(task):',
        '        if False:',
        'test_ledger_callback_secrets.py::test_a_secret_named_fact_or_register_of_one_play_is_scrubbed_in_the_next',
    ),
    (
        'secrets: a register of a name not lockstep\'s own may change a host\'s variables',
        'plugins/plugin_utils/secrets.py',
        '    if register and not str(register).startswith(INTERNAL_PREFIX):\n        return True',
        '    if register and not str(register).startswith(INTERNAL_PREFIX):\n        return False',
        'test_ledger_callback_secrets.py::test_a_secret_named_fact_or_register_of_one_play_is_scrubbed_in_the_next',
    ),
    (
        'secrets: a set_fact of a name not lockstep\'s own changes a host\'s variables',
        'plugins/plugin_utils/secrets.py',
        '        return any(not str(name).startswith(INTERNAL_PREFIX) for name in args if name != "cacheable")',
        '        return False',
        'test_ledger_callback_secrets.py::test_a_secret_named_fact_or_register_of_one_play_is_scrubbed_in_the_next',
    ),
    (
        'secrets: a template under a secret name in a play\'s own variables is rendered on each host',
        'plugins/plugin_utils/secrets.py',
        '        if not self._host_dependent(play_vars):\n',
        '        if True:\n',
        'test_ledger_callback_secrets.py::test_a_secret_named_fact_or_register_of_one_play_is_scrubbed_in_the_next',
    ),
    (
        'secrets: what a no_log task registers or sets, read back from the host\'s variables',
        'plugins/plugin_utils/secrets.py',
        "                values = hostvars.raw_get(host)  # the host's variables as set now",
        "                values = {}  # the host's variables as set now",
        'test_ledger_callback_secrets.py::test_secrets_are_absent_from_every_output',
    ),
    (
        'secrets: custom stats scrubbed for the callbacks after the ledger',
        'plugins/plugin_utils/ledger_summary.py',
        '        custom[host] = scrub(custom[host], secrets)',
        '        pass',
        'tests/unit/test_secrets_at_source.py::test_custom_stats_are_scrubbed_for_the_callbacks_after_the_ledger',
    ),
    (
        "secrets: an action scrubs what the ledger callback met (what set_stats publishes, before any callback)",
        'plugins/plugin_utils/secrets.py',
        '    return collector.secrets | (_RUN[0].values if _RUN else set())',
        '    return collector.secrets',
        'test_ledger_callback_vault.py::test_inventory_secrets_are_absent_from_every_output',
        'tests/unit/test_secrets_at_source.py::test_an_action_scrubs_what_the_ledger_callback_met_before_its_task_began',
    ),
    (
        "secrets: lockstep's own messages scrubbed at the source (stdout)",
        'plugins/plugin_utils/secrets.py',
        '        return scrub_text(result, action_secrets(task_vars))',
        '        return result',
        'test_release_secrets.py::test_a_vaulted_key_in_a_smoke_url_and_a_restart_command_is_never_shown',
        'tests/unit/test_secrets_at_source.py::test_every_action_result_goes_through_it',
    ),
    (
        'ledger anchor written',
        'plugins/module_utils/ledger.py',
        '        if self.anchor is not None:\n            try:\n                write_anchor',
        '        if False:\n            try:\n                write_anchor',
        'test_ledger_callback_vault.py::test_a_release_ledger_cut_at_its_tail_fails_verify',
        'tests/unit/test_ledger_anchor.py::test_whole_ledger_is_anchored_and_a_cut_tail_is_truncated',
    ),
    (
        'ledger anchor checked by verify',
        'bin/lockstep',
        '    if not anchor.ok:',
        '    if False:',
        'test_ledger_callback_vault.py::test_a_release_ledger_cut_at_its_tail_fails_verify',
        'tests/unit/test_ledger_anchor.py::test_whole_ledger_is_anchored_and_a_cut_tail_is_truncated',
    ),
    (
        'ledger files 0600',
        'plugins/module_utils/ledger.py',
        '    fd = os.open(path, flags, FILE_MODE)\n    try:\n        os.fchmod(fd, FILE_MODE)',
        '    fd = os.open(path, flags, 0o644)\n    try:\n        pass',
        'test_ledger_callback_vault.py::test_inventory_secrets_are_absent_from_every_output',
        'tests/unit/test_ledger_anchor.py::test_modes_whatever_the_umask',
    ),
    (
        'ledger directory 0700',
        'plugins/module_utils/ledger.py',
        '        os.makedirs(directory, mode=DIR_MODE, exist_ok=True)\n        os.chmod(directory, DIR_MODE)',
        '        os.makedirs(directory, exist_ok=True)',
        'test_ledger_callback_vault.py::test_inventory_secrets_are_absent_from_every_output',
        'tests/unit/test_ledger_anchor.py::test_modes_whatever_the_umask',
    ),
    (
        'JUnit file 0600',
        'plugins/plugin_utils/ledger_summary.py',
        '        os.chmod(tmp, 0o600)\n        os.replace(tmp, path)',
        '        os.chmod(tmp, 0o644)\n        os.replace(tmp, path)',
        'test_ledger_callback_vault.py::test_inventory_secrets_are_absent_from_every_output',
    ),
    (
        'lock file 0600',
        'plugins/module_utils/lock_step.py',
        '            os.fchmod(fd, 0o600)  # for its owner only',
        '            pass  # for its owner only',
        'test_ledger_callback_vault.py::test_inventory_secrets_are_absent_from_every_output',
        'tests/unit/test_lock_step.py::'
        'test_the_lock_is_taken_in_the_worker_on_the_controller_and_as_a_module_as_the_become_user',
    ),
    (
        'only a strategy that keeps each batch together',
        'plugins/action/plan.py',
        '        if strategy not in BATCH_STRATEGIES:',
        '        if False:',
        'test_release_input.py::test_a_strategy_that_lets_hosts_run_ahead_is_refused_and_leaves_no_lock',
        'tests/unit/test_release_strategy.py',
    ),
    (
        'smoke headers never echoed',
        'plugins/action/smoke.py',
        '                    return (hide(problem, secret) if problem else problem), attempt',
        '                    return problem, attempt',
        'tests/unit/test_release_smoke.py::test_headers_are_sent_and_never_echoed',
    ),
    (
        'waves serial cannot read end as a refusal, not a crash',
        'plugins/filter/lockstep.py',
        '        return ["100%"]',
        '        raise',
        'test_settings.py::test_every_refused_input_ends_as_a_refusal_with_a_complete_ledger',
        'tests/unit/test_release_refusals.py::test_serial_is_the_plan_or_one_batch_when_the_plan_refuses_the_waves',
    ),
    (
        'a canary of the whole fleet is refused',
        'plugins/action/plan.py',
        '        if serial[0] > fleet or (serial[0] == fleet and fleet > 1):',
        '        if False:',
        'test_settings.py::test_every_refused_input_ends_as_a_refusal_with_a_complete_ledger',
        'tests/unit/test_release_refusals.py::test_a_canary_of_the_whole_fleet_or_more_is_refused',
    ),
    (
        "Ansible's argument check ends as refused",
        'plugins/callback/ledger.py',
        '                self._refused_input = True\n                self._halted_by = {"gate": "input", "host": "controller", "message": "refused before touching "',
        '                self._halted_by = {"gate": "input", "host": "controller", "message": "refused before touching "',
        'test_settings.py::test_every_refused_input_ends_as_a_refusal_with_a_complete_ledger',
        'tests/unit/test_fast_safeguards.py::test_ansibles_own_argument_check_of_a_role_ends_as_a_refusal',
    ),
    (
        'a task selection is refused',
        'plugins/plugin_utils/guard.py',
        '    if not used:\n        return None',
        '    if True:\n        return None',
        'test_settings.py::test_a_task_selection_is_refused_never_a_silent_success',
        'tests/unit/test_release_refusals.py::test_a_task_selection_is_refused',
    ),
    (
        'any_errors_fatal pinned on the waves',
        'roles/rollout/tasks/main.yml',
        '  any_errors_fatal: false\n  ignore_errors: false\n  when: __lockstep_back',
        '  when: __lockstep_back',
        'test_settings.py::test_a_halt_under_error_settings_still_rolls_every_host_back_and_no_wave_runs_past_it',
    ),
    (
        "the run's outcome is readable before the lock is free",
        'plugins/module_utils/lock_step.py',
        '            if p["outcome"] is not None:',
        '            if False:',
        'test_guard.py::test_guard_under_a_clean_release_leaves_every_server_up_then_isolates_a_swapped_host_within_5s',
        'tests/unit/test_fast_safeguards.py::test_the_runs_outcome_is_on_disk_when_its_lock_is_free',
    ),
    (
        'the guard reads the outcome next to the lock first',
        'extensions/eda/plugins/event_source/lockstep_guard.py',
        '    outcome = read_outcome(lock_path) if lock_path else None',
        '    outcome = None',
        'test_guard.py::test_guard_under_a_clean_release_leaves_every_server_up_then_isolates_a_swapped_host_within_5s',
        'tests/unit/test_guard_source.py::test_the_outcome_next_to_the_lock_wins_over_the_ledger_still_being_written',
    ),
    (
        'a uniform fleet is never taken out on a version verdict',
        'extensions/eda/plugins/event_source/lockstep_guard.py',
        '        if bad and leader in bad:',
        '        if False:',
        'test_guard.py::test_guard_under_a_clean_release_leaves_every_server_up_then_isolates_a_swapped_host_within_5s',
        'tests/unit/test_guard_source.py::test_a_uniform_fleet_off_the_record_is_a_record_problem_and_nothing_is_taken_out',
    ),
    (
        'rollback_failed only for a host lockstep changed',
        'plugins/action/outcome.py',
        '    changed_wrong = [h for h in wrong if h in changed]',
        '    changed_wrong = list(wrong)',
        'test_statuses.py::test_a_host_that_dies_on_its_own_mid_release_is_named_found_dead_and_the_status_stays_rolled_back',
        'tests/unit/test_release_outcome.py::test_a_changed_host_not_proven_back_is_a_failed_rollback_and_one_found_dead_is_not',
    ),
    (
        'the final census decides a success',
        'plugins/action/outcome.py',
        '    elif not (check_mode or gate.get("passed")):',
        '    elif False:',
        'tests/unit/test_release_outcome.py::test_a_clean_release_succeeds_only_when_the_census_passed',
    ),
    (
        'stopped only when every first-release host is stopped and out',
        'plugins/action/outcome.py',
        '    first_ok = bool(first) and all(h in (a.get("first_stopped") or []) and h in killed for h in first) \\',
        '    first_ok = bool(first) or all(h in (a.get("first_stopped") or []) and h in killed for h in first) \\',
        'tests/unit/test_release_outcome.py::test_a_halted_first_release_is_stopped_only_when_every_host_it_changed_is_stopped_and_out',
    ),
    (
        'a halt never exits 0',
        'plugins/action/outcome.py',
        '        "failed": bool(halted or status == "failed" or a.get("ledger_broken")),',
        '        "failed": bool(status == "failed" or a.get("ledger_broken")),',
        'test_release_halts.py::test_switch_failure_on_one_host_rolls_back',
        'tests/unit/test_release_outcome.py::test_a_halt_rolled_back_and_proven_names_the_gate_the_host_and_the_release_back',
    ),
    (
        'the rollback fails only on a host it changed',
        'roles/rollback/tasks/main.yml',
        '        | intersect(__lockstep_changed) | length > 0',
        '        | length > 0',
        'test_statuses.py::test_a_host_that_dies_on_its_own_mid_release_is_named_found_dead_and_the_status_stays_rolled_back',
        'tests/unit/test_release_in_miniature.py::test_a_halt_rolls_back_wave_by_wave_and_only_a_host_proven_back_serves',
    ),
    (
        'a first release had nothing before',
        'plugins/plugin_utils/ledger_summary.py',
        '                    if key in values:',
        '                    if values.get(key) not in (None, ""):',
        'test_release_clean.py::test_first_release_onto_a_bare_fleet',
        'tests/unit/test_fast_safeguards.py::test_a_first_release_records_that_its_hosts_had_nothing_before',
    ),
    (
        'redirect drops caller headers to another origin',
        'plugins/plugin_utils/http.py',
        'if origin(new.full_url) is None or origin(new.full_url) != origin(req.full_url):',
        'if False:',
        'tests/unit/test_http_secrets.py::test_a_redirect_to_another_origin_carries_none_of_the_callers_headers',
    ),
    (
        'probes use the same-origin redirect handler',
        'plugins/plugin_utils/http.py',
        'opener = urllib.request.build_opener(SameOriginCredentials)',
        'opener = urllib.request.build_opener()',
        'tests/unit/test_http_secrets.py::test_a_redirect_to_another_origin_carries_none_of_the_callers_headers',
    ),
    (
        'URL user and password only as basic auth to their own host',
        'plugins/plugin_utils/http.py',
        'req = urllib.request.Request(target, data=data, method=method, headers=sent)',
        'req = urllib.request.Request(url, data=data, method=method, headers=sent)',
        'tests/unit/test_http_secrets.py::test_the_urls_user_and_password_go_to_their_host_only',
    ),
    (
        'user information in a Location is dropped',
        'plugins/plugin_utils/http.py',
        '        if target != new.full_url:\n            new.full_url = target\n',
        '',
        'tests/unit/test_http_secrets.py::test_credentials_once_dropped_do_not_come_back_and_a_location_brings_none',
    ),
    (
        'probe error names its URL without credentials',
        'plugins/plugin_utils/http.py',
        'return Response(url, error="%s: %s" % (safe_url(url), reason))',
        'return Response(url, error="%s: %s" % (url, reason))',
        'tests/unit/test_http_secrets.py::test_a_failing_request_names_its_url_without_password_or_query_values',
    ),
    (
        'urllib exception text scrubbed of URL credentials',
        'plugins/plugin_utils/http.py',
        'reason = safe_text(hide(str(getattr(e, "reason", e)), hidden))',
        'reason = hide(str(getattr(e, "reason", e)), hidden)',
        'tests/unit/test_http_secrets.py::test_a_failing_request_names_its_url_without_password_or_query_values',
    ),
    (
        'http.client errors become a probe error',
        'plugins/plugin_utils/http.py',
        'except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:',
        'except (urllib.error.URLError, OSError, ValueError) as e:',
        'tests/unit/test_http_secrets.py::test_a_failing_request_names_its_url_without_password_or_query_values',
    ),
    (
        'a response keeps only the safe URL',
        'plugins/plugin_utils/http.py',
        'self.url, self.status, self.body, self.error = safe_url(url), status, body, error',
        'self.url, self.status, self.body, self.error = url, status, body, error',
        'tests/unit/test_http_secrets.py::test_an_answer_that_fails_names_no_credential',
    ),
    (
        'smoke messages quote URLs without credentials',
        'plugins/action/smoke.py',
        'url = safe_url(step["url"])  # as messages quote it: no password, no query value',
        'url = step["url"]',
        'tests/unit/test_http_secrets.py::test_smoke_messages_quote_urls_without_credentials',
    ),
    (
        'results scrubbed of URL credentials at the source',
        'plugins/plugin_utils/secrets.py',
        'return safe_text(scrub(result, secrets) if secrets else result)',
        'return scrub(result, secrets) if secrets else result',
        'tests/unit/test_http_secrets.py::test_results_are_scrubbed_of_url_credentials_at_the_source',
    ),
    (
        'watch message quotes a safe URL',
        'plugins/action/watch.py',
        '(safe_url(url), e)',
        '(url, e)',
        'tests/unit/test_http_secrets.py::test_watch_and_audit_messages_name_no_credential',
    ),
    (
        'audit message quotes a safe URL',
        'plugins/plugin_utils/audit.py',
        'safe_url(urls.get(host)), p.get("version"), p.get("pid")))',
        'urls.get(host), p.get("version"), p.get("pid")))',
        'tests/unit/test_http_secrets.py::test_watch_and_audit_messages_name_no_credential',
    ),
    (
        'ledger anchor found where configured, never where the ledger says',
        'plugins/module_utils/ledger.py',
        '    path = anchor or (anchor_path(base, ledger_path) if base else None)',
        '    path = anchor or result.anchor or (anchor_path(base, ledger_path) if base else None)',
        'tests/unit/test_ledger_forgery.py::test_the_forgery_fails_and_the_genuine_ledger_passes',
    ),
    (
        'ledger anchor required where the anchor directory exists',
        'plugins/module_utils/ledger.py',
        '        if os.path.isdir(base):',
        '        if False:',
        'tests/unit/test_ledger_forgery.py::test_a_configured_anchor_directory_makes_an_unanchored_ledger_fail',
    ),
    (
        'ledger anchor required when the ledger says it was anchored',
        'plugins/module_utils/ledger.py',
        '        if recorded:',
        '        if False:',
        'tests/unit/test_ledger_forgery.py::test_a_ledger_naming_an_anchor_where_none_is_configured_fails',
    ),
    (
        'ledger: nothing after an anchored release_finished',
        'plugins/module_utils/ledger.py',
        '    finished = seq < len(result.events) and result.events[seq] in COMPLETE_EVENTS',
        '    finished = False',
        'tests/unit/test_ledger_forgery.py::test_a_record_appended_after_the_anchored_end_fails',
    ),
    (
        'ledger: an unkeyed release_finished past the anchor is not complete',
        'bin/lockstep',
        '    elif anchor.state == "behind" and not result.mac:',
        '    elif False:',
        'tests/unit/test_ledger_forgery.py::test_a_release_finished_past_the_anchor_of_an_unkeyed_ledger_is_not_proven',
    ),
    (
        'keyed ledger: HMAC with the key',
        'plugins/module_utils/ledger.py',
        '        return hmac.new(key, body, hashlib.sha256).hexdigest()',
        '        return hashlib.sha256(body).hexdigest()',
        'tests/unit/test_ledger_forgery.py::test_a_keyed_ledger_rewritten_without_the_key_fails_with_it',
    ),
    (
        'keyed ledger: no verdict without the key',
        'plugins/module_utils/ledger.py',
        '            if mac and key is None:',
        '            if False:',
        'tests/unit/test_ledger_forgery.py::test_a_keyed_ledger_does_not_verify_without_the_key',
    ),
    (
        'keyed ledger: no downgrade',
        'plugins/module_utils/ledger.py',
        '            if not mac and key is not None:',
        '            if False:',
        'tests/unit/test_ledger_forgery.py::test_a_keyed_ledger_downgraded_to_a_plain_chain_fails_with_the_key',
    ),
    (
        'keyed ledger: the callback keys its ledger',
        'plugins/plugin_utils/ledger_writer.py',
        '        return LedgerWriter(path, anchor=anchor, private_directory=private_directory, key=self._key)',
        '        return LedgerWriter(path, anchor=anchor, private_directory=private_directory)',
        'tests/unit/test_ledger_forgery.py::test_the_callback_keys_its_ledger',
    ),
    (
        'keyed ledger: key from a (vaulted) extra var',
        'plugins/callback/ledger.py',
        '            self._set_key(to_text(value) if plaintext is None else plaintext)',
        '            pass',
        'tests/unit/test_ledger_forgery.py::test_the_callback_keys_its_ledger',
    ),
    (
        'keyed ledger: an unusable key is a ledger that cannot be created',
        'plugins/plugin_utils/ledger_writer.py',
        '        if key_error:\n            self._fall_back(',
        '        if False:\n            self._fall_back(',
        'tests/unit/test_ledger_forgery.py::test_the_callback_keys_its_ledger',
    ),
    (
        'keyed ledger: lock break keyed',
        'plugins/plugin_utils/operator_cli.py',
        '                                 key=key)',
        '                                 key=None)',
        'tests/unit/test_ledger_forgery.py::test_a_lock_break_is_keyed_like_the_releases',
    ),
    (
        'AWX workflow: only a rolled back release or a failed rollback is proof',
        'plugins/plugin_utils/audit.py',
        '    if outcome not in PROOF_OUTCOMES:',
        '    if False:',
        'tests/unit/test_awx_workflow.py::test_only_a_rolled_back_or_rollback_failed_release_names_the_version_every_host_must_serve',
    ),
    (
        'AWX workflow: the release names the version',
        'plugins/plugin_utils/audit.py',
        '    if not expected:',
        '    if False:',
        'tests/unit/test_awx_workflow.py::test_no_version_named_or_no_audit_proves_nothing',
    ),
    (
        'AWX workflow: a held lock proves nothing',
        'plugins/plugin_utils/audit.py',
        '    if audit.get("lock"):',
        '    if False:',
        'tests/unit/test_awx_workflow.py::test_a_held_lock_proves_nothing',
    ),
    (
        "AWX workflow: an operator's MAINT/DRAIN is not proof",
        'plugins/plugin_utils/audit.py',
        '        if not (in_traffic(host) or host in taken_out):',
        '        if False:',
        'tests/unit/test_awx_workflow.py::test_an_operators_maint_or_drain_is_not_proof_even_on_another_version',
    ),
    (
        'AWX workflow: a host that does not answer is not proof',
        'plugins/plugin_utils/audit.py',
        '(audit.get("hosts") or {}).items() if r.get("running") is not None}',
        '(audit.get("hosts") or {}).items()}',
        'tests/unit/test_awx_workflow.py::test_a_host_that_does_not_answer_or_an_unreadable_load_balancer_is_not_proof',
    ),
    (
        'AWX workflow: a host left serving right',
        'plugins/plugin_utils/audit.py',
        '    if proven and not right:',
        '    if False:',
        'tests/unit/test_awx_workflow.py::test_never_the_whole_service_a_host_must_be_left_serving_right',
    ),
    (
        'AWX workflow: a host back on its own version before a mixed start is not proof',
        'plugins/plugin_utils/audit.py',
        'if r["running"] != expected and r["running"] != own:',
        'if r["running"] != expected:',
        'tests/unit/test_awx_workflow.py::test_a_host_back_on_the_version_it_ran_before_a_mixed_start_is_not_proof',
    ),
    (
        'AWX workflow: the halt job refuses when nothing is proven',
        'awx/halt_proven.yml',
        '      ansible.builtin.fail:',
        '      ansible.builtin.debug:',
        'tests/unit/test_awx_workflow.py::test_each_failure_branch_takes_out_only_hosts_proven_wrong[refused]',
    ),
    (
        'AWX workflow: the halt job never takes the whole service',
        'awx/halt_proven.yml',
        '           if __lockstep_fleet | difference(__lockstep_proven) | length == 0',
        '           if false',
        'tests/unit/test_awx_workflow.py::test_the_halt_job_refuses_a_proof_naming_every_host_or_an_overridden_scope',
    ),
    (
        'AWX workflow: the halt scope cannot be overridden',
        'awx/halt_proven.yml',
        '           if lockstep_halt_hosts | sort != __lockstep_proven | sort or not lockstep_halt_respect_lock | bool',
        '           if false',
        'tests/unit/test_awx_workflow.py::test_the_halt_job_refuses_a_proof_naming_every_host_or_an_overridden_scope',
    ),
    (
        'AWX workflow: the halt job respects the lock when it acts',
        'awx/halt_proven.yml',
        '    lockstep_halt_respect_lock: true  # the lock is checked again when the kill switch acts',
        '',
        'tests/unit/test_awx_workflow.py::test_the_halt_job_refuses_while_a_release_holds_the_lock',
    ),
    (
        'no release without its record',
        'plugins/action/plan.py',
        '        if a["require_ledger"] and not ledger_recording():',
        '        if False:',
        'tests/unit/test_release_refusals.py::test_a_release_the_ledger_does_not_record_is_refused',
    ),
    (
        'preflight: the active release is what its manifest says',
        'plugins/action/preflight.py',
        '            if st.get("active_version") and not st.get("active_valid"):',
        '            if False:',
        'tests/unit/test_release_preflight.py::test_active_release_with_bad_content_refuses',
    ),
    (
        'preflight: the target already on a host with other content',
        'plugins/action/preflight.py',
        '                if rel["version"] == target and not (',
        '                if False and not (',
        'tests/unit/test_release_preflight.py::test_existing_target_release_with_wrong_content_refuses',
    ),
    (
        'preflight: disk',
        'plugins/action/preflight.py',
        '            if st.get("disk_free_bytes", 0) < a["min_free_bytes"]:',
        '            if False:',
        'tests/unit/test_release_preflight.py::test_low_disk_refuses',
    ),
    (
        'preflight: a partial release needs its reason',
        'plugins/action/preflight.py',
        '        partial_ok = a["allow_partial"] and bool((a["partial_reason"] or "").strip())',
        '        partial_ok = a["allow_partial"]',
        'tests/unit/test_release_preflight.py::test_partial_release_needs_both_the_flag_and_a_reason',
    ),
    (
        'preflight: a flag-reuse override needs its reason',
        'plugins/action/preflight.py',
        '        if found and a["allow_flag_reuse"] and (a["flag_reuse_reason"] or "").strip():',
        '        if found and a["allow_flag_reuse"]:',
        'tests/unit/test_release_flags.py::test_override_needs_a_reason_and_is_said',
    ),
    (
        'deploy: an existing release is never overwritten',
        'plugins/modules/deploy.py',
        '            if info and info["valid"] and info["content_sha256"] == manifest.get("content_sha256"):',
        '            if True:',
        'tests/unit/test_release_deploy.py::test_existing_release_with_other_content_is_refused_and_left_untouched',
    ),
    (
        'deploy: the unpacked content is checked on the host',
        'plugins/modules/deploy.py',
        '            if content != manifest.get("content_sha256"):',
        '            if False:',
        'tests/unit/test_release_deploy.py::test_artifact_whose_content_differs_from_the_manifest_is_refused',
    ),
    (
        'flags: a retired name never returns',
        'plugins/plugin_utils/flags.py',
        '        for name in sorted(set(newer_flags) & older_retired):',
        '        for name in []:',
        'tests/unit/test_release_flags.py::test_a_retired_name_never_comes_back_even_with_the_old_meaning',
    ),
    (
        'old releases are pruned only after a proven release',
        'roles/finish/tasks/prune.yml',
        "    __lockstep_status not in ['succeeded', 'partial']\n    or ",
        "    false\n    or ",
        'tests/unit/test_release_in_miniature.py::'
        'test_old_releases_are_pruned_after_a_proven_release_and_never_after_a_halt',
    ),
    (
        'a proven release prunes the releases beyond those kept',
        'roles/finish/tasks/prune.yml',
        "    inventory_hostname not in ([inventory_hostname] | intersect(__lockstep_done)\n",
        "    true or ([inventory_hostname] | intersect(__lockstep_done)\n",
        'tests/unit/test_release_in_miniature.py::'
        'test_old_releases_are_pruned_after_a_proven_release_and_never_after_a_halt',
    ),
    (
        "the release's input is checked for every host of the play",
        'roles/preflight/tasks/main.yml',
        '    hosts: "{{ ansible_play_hosts_all }}"\n  delegate_to: localhost',
        '    hosts: []\n  delegate_to: localhost',
        'tests/unit/test_release_in_miniature.py::test_a_bad_value_on_one_host_is_refused_before_any_host_is_touched',
    ),
    (
        "the input check reads each host's own values",
        'plugins/action/input.py',
        '            hosts[host] = templar.template({n: own[n] for n in spec if n in own})',
        '            hosts[host] = {}',
        'tests/unit/test_release_in_miniature.py::test_a_bad_value_on_one_host_is_refused_before_any_host_is_touched',
    ),
    (
        "a play's ignore_errors never reaches the run's exit",
        'roles/finish/tasks/verdict.yml',
        '  ignore_errors: false\n',
        '',
        'test_settings.py::test_a_halt_under_error_settings_still_rolls_every_host_back_and_no_wave_runs_past_it',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_teams_copy_with_ignore_errors_on_every_play_still_exits_non_zero_on_a_halt',
    ),
    (
        "the ledger records the rollback's waves as the rollback phase",
        'plugins/plugin_utils/phases.py',
        '    if name == "rollout" and ROLLBACK_PLAY.search(str(play_name or "")):',
        '    if False:',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_halt_rolls_back_wave_by_wave_and_only_a_host_proven_back_serves',
    ),
    (
        "a play's ignore_errors never lets bad input through",
        'roles/preflight/tasks/main.yml',
        '  tags: [always]\n  # Pinned: a team\'s copy of the playbook that sets ignore_errors on its plays must not release on bad '
        'input.\n  ignore_errors: false\n',
        '  tags: [always]\n',
        'tests/unit/test_release_in_miniature.py::test_a_bad_value_on_one_host_is_refused_before_any_host_is_touched',
    ),
    (
        'a before_rollback hook that fails on a host never keeps it from going back',
        'roles/rollback/tasks/plan.yml',
        '  rescue:\n    - name: Rollback | the before_rollback hook failed on this host - it goes back all the same\n',
        '  always:\n    - name: Rollback | the before_rollback hook failed on this host - it goes back all the same\n',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_before_rollback_hook_that_fails_on_a_host_never_keeps_it_from_going_back',
    ),
    (
        'prune never removes the active or a protected release',
        'plugins/modules/deploy.py',
        '        protect = set(self.p["protect"]) | {st["active_version"]}',
        '        protect = set()',
        'tests/unit/test_release_deploy.py::test_prune_keeps_the_newest_by_mtime_plus_protected_and_active',
    ),
    (
        'plan: a plain version string',
        'plugins/action/plan.py',
        '        if not valid_version(version):',
        '        if False:',
        'test_release_input.py::test_bad_input_is_refused_before_any_host_changes',
        'tests/unit/test_release_refusals.py::test_the_plans_input_refusals_each_name_their_cause',
    ),
    (
        'plan: a fleet to release to',
        'plugins/action/plan.py',
        '        if not a["group_hosts"]:',
        '        if False:',
        'test_release_input.py::test_bad_input_is_refused_before_any_host_changes',
        'tests/unit/test_release_refusals.py::test_the_plans_input_refusals_each_name_their_cause',
    ),
    (
        'plan: a manifest for the version',
        'plugins/action/plan.py',
        '        if not os.path.isfile(manifest_path):',
        '        if False:',
        'test_release_input.py::test_bad_input_is_refused_before_any_host_changes',
        'tests/unit/test_release_refusals.py::test_the_plans_input_refusals_each_name_their_cause',
    ),
    (
        'plan: the manifest names the version',
        'plugins/action/plan.py',
        '        if manifest.get("version") != version:',
        '        if False:',
        'test_release_input.py::test_bad_input_is_refused_before_any_host_changes',
        'tests/unit/test_release_refusals.py::test_the_plans_input_refusals_each_name_their_cause',
    ),
    (
        'plan: the artifact is there',
        'plugins/action/plan.py',
        '        if not os.path.isfile(artifact_path):',
        '        if False:',
        'test_release_input.py::test_bad_input_is_refused_before_any_host_changes',
        'tests/unit/test_release_refusals.py::test_the_plans_input_refusals_each_name_their_cause',
    ),
    (
        'a release is proven by the version its manifest says its service reports',
        'plugins/module_utils/release_state.py',
        '            run["reported_version"], run["version"] = run["version"], rel["version"]',
        '            pass',
        'test_any_service.py::test_an_application_from_a_package_index_nested_version_no_health_no_metrics',
        'tests/unit/test_about_site.py::test_a_label_other_than_the_reported_version_is_proven_by_its_manifest',
    ),
    (
        'gates read a declared service version as its release',
        'plugins/action/gate.py',
        '                if want is not None and p.get("version") not in {want, reports.get(want, want)}:',
        '                if want is not None and p.get("version") != want:',
        'test_any_service.py::test_an_application_from_a_package_index_nested_version_no_health_no_metrics',
        'tests/unit/test_fast_safeguards.py::'
        'test_a_gate_reads_the_version_a_release_declares_its_service_reports_as_that_release',
    ),
    (
        'a state the login may not read is a privilege refusal, not a mix',
        'plugins/action/preflight.py',
        '            if st.get("unreadable"):',
        '            if False:',
        'test_nonroot.py::test_a_deploy_login_with_a_vaulted_sudo_password_releases_audits_halts_resumes_and_rolls_back',
        'tests/unit/test_release_preflight.py::'
        'test_a_state_the_login_may_not_read_or_change_is_a_privilege_refusal_never_a_mix',
    ),
    (
        'lock show reads the lock where lockstep_lock_host keeps it',
        'plugins/plugin_utils/operator_cli.py',
        '    if inv.is_controller(host):\n        return LockPlace(str(path), host)',
        '    if True:\n        return LockPlace(str(path), host)',
        'test_remote_lock.py::test_the_lock_on_another_host_refuses_a_second_controller_and_keeps_the_guard_silent',
        'tests/unit/test_operator_inventory.py::'
        'test_a_lock_held_on_another_host_is_shown_with_its_run_age_and_the_command_that_breaks_it',
    ),
    (
        'the guard reads the lock on its host',
        'extensions/eda/plugins/event_source/lockstep_guard.py',
        '        self.place = lock_place(inv, path=self.lock_path) if self.lock_path else None',
        '        self.place = None',
        'test_remote_lock.py::test_the_lock_on_another_host_refuses_a_second_controller_and_keeps_the_guard_silent',
        'tests/unit/test_operator_inventory.py::test_the_guard_reads_the_lock_and_haproxy_through_the_hosts_that_keep_them',
    ),
    (
        'the state read escalates with lockstep_become',
        'roles/preflight/tasks/main.yml',
        '          become: "{{ lockstep_become }}"\n          lockstep.release.state:',
        '          lockstep.release.state:',
        'test_nonroot.py::test_a_deploy_login_with_a_vaulted_sudo_password_releases_audits_halts_resumes_and_rolls_back',
    ),
    (
        'the rollback is rehearsed on the canary before wave 2',
        'roles/rollout/tasks/main.yml',
        '         and __lockstep_ctl.rehearse | default(false) }}',
        '         and false }}',
        'test_rehearsal.py::test_the_rollback_is_rehearsed_on_the_canary_and_a_release_that_cannot_go_back_is_refused_there',
        'tests/unit/test_release_in_miniature.py::test_a_release_rehearses_the_rollback_on_the_drained_canary_and_a_manual_rollback_does_not',
    ),
    (
        "only the canary's wave rehearses the rollback (not a later wave left uncounted by a failed switch)",
        'roles/rollout/tasks/main.yml',
        '__lockstep_rehearsing_wave | bool and __lockstep_ctl.wave_index',
        'not __lockstep_back and __lockstep_ctl.rehearse | default(false) and __lockstep_ctl.wave_index',
        'tests/unit/test_release_in_miniature.py::test_a_halt_rolls_back_wave_by_wave_and_only_a_host_proven_back_serves',
    ),
    (
        'a failed rehearsal halts naming the rehearsal and what failed',
        'roles/rollout/tasks/rehearse.yml',
        '          gate: rehearsal\n',
        '          gate: switch\n',
        'test_rehearsal.py::test_the_rollback_is_rehearsed_on_the_canary_and_a_release_that_cannot_go_back_is_refused_there',
        'tests/unit/test_release_in_miniature.py::test_a_previous_release_that_does_not_serve_after_the_new_one_ran_halts_at_the_rehearsal',
    ),
    (
        'the rehearsal checks the previous release serves with its smoke checks',
        'roles/rollout/tasks/rehearse.yml',
        "        and (__lockstep_rehearse_back is failed or not __lockstep_rehearse_smoke.lockstep_gate.passed | default(true))",
        "        and __lockstep_rehearse_back is failed",
        'test_rehearsal.py::test_a_previous_release_that_fails_its_smoke_checks_after_the_new_one_ran_is_refused',
        'tests/unit/test_release_in_miniature.py::test_a_previous_release_that_does_not_serve_after_the_new_one_ran_halts_at_the_rehearsal',
    ),
    (
        'the rollback restores the state of a canary whose rehearsal failed',
        'roles/rollout/tasks/main.yml',
        '             and inventory_hostname in __lockstep_ctl.rehearsal_restore | default([]) else omit }}',
        '             and false else omit }}',
        'test_rehearsal.py::test_the_rollback_is_rehearsed_on_the_canary_and_a_release_that_cannot_go_back_is_refused_there',
    ),
    (
        'the state snapshot is the one from before the run first switched the host',
        'plugins/modules/deploy.py',
        '        if os.path.isdir(dest):\n            return\n',
        '        if False:\n            return\n',
        'test_rehearsal.py::test_the_rollback_is_rehearsed_on_the_canary_and_a_release_that_cannot_go_back_is_refused_there',
        'tests/unit/test_release_deploy.py::'
        'test_state_is_kept_from_before_the_runs_first_switch_and_restored_only_when_asked',
    ),
    (
        'turning the rehearsal off needs a reason',
        'plugins/action/plan.py',
        '        if not a["rehearse"] and not (a["rehearse_reason"] or "").strip():',
        '        if False:',
        'tests/unit/test_release_refusals.py::test_the_plans_input_refusals_each_name_their_cause',
    ),
    (
        'the rehearsal turned off is recorded',
        'plugins/action/preflight.py',
        '            warnings.append(rehearsal)',
        '            pass',
        'test_rehearsal.py::test_the_rollback_is_rehearsed_on_the_canary_and_a_release_that_cannot_go_back_is_refused_there',
        'tests/unit/test_release_preflight.py::'
        'test_the_rollback_rehearsal_is_planned_said_when_off_and_skipped_on_a_first_release',
    ),
    (
        "the canary stays out of service from its wave's drain to the end of its rehearsal",
        'roles/rollout/tasks/main.yml',
        '      when: __lockstep_lb_todo | length > 0 and not __lockstep_rehearsing_wave | bool\n',
        '      when: __lockstep_lb_todo | length > 0\n',
        'test_rehearsal.py::test_the_load_balancer_gone_during_the_rehearsal_leaves_the_canary_on_the_previous_release',
        'tests/unit/test_release_in_miniature.py::test_a_release_rehearses_the_rollback_on_the_drained_canary_and_a_manual_rollback_does_not',
    ),
    (
        'a wave with a failed switch is never counted as done (its other hosts do not rehearse the rollback)',
        'roles/rollout/tasks/main.yml',
        '      when: (not __lockstep_back and __lockstep_failed | length == 0) or (__lockstep_back and not __lockstep_passed | bool)\n',
        '      when: not __lockstep_back or not __lockstep_passed | bool\n',
        'test_release_halts.py::test_switch_failure_on_one_host_rolls_back',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_canary_whose_batch_mate_failed_its_switch_is_not_rehearsed_and_the_failed_host_never_serves',
    ),
    (
        "a wave's end for every host at once waits for a failed switch's rescue",
        'roles/rollout/tasks/main.yml',
        '        __lockstep_failed | length == 0 and not __lockstep_rehearse_here | bool\n',
        '        not __lockstep_rehearse_here | bool\n',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_canary_whose_batch_mate_failed_its_switch_is_not_rehearsed_and_the_failed_host_never_serves[no hook]',
    ),
    (
        "a wave's end for every host at once only where no host has an after_wave hook",
        'roles/rollout/tasks/main.yml',
        "             lockstep_hooks, 'after_wave') | length == 0)",
        "             lockstep_hooks, 'after_wave') | length >= 0)",
        'tests/unit/test_release_in_miniature.py::'
        'test_a_release_rehearses_the_rollback_on_the_drained_canary_and_a_manual_rollback_does_not',
    ),
    (
        'the hosts to prune are those with more releases than they keep',
        'plugins/filter/lockstep.py',
        '        if len(others) + 1 > int((keeps or {}).get(host, 0)):',
        '        if False:',
        'tests/unit/test_release_filters.py::'
        'test_prune_hosts_are_those_with_more_releases_than_they_keep_counting_the_new_one',
    ),
    (
        "a step ends for every host at once only where no host's own value gives it something to do",
        'plugins/filter/lockstep.py',
        '        value = hostvars[h].get(var, default)\n',
        '        value = default\n',
        'tests/unit/test_release_filters.py::'
        'test_host_values_are_each_hosts_own_else_the_default_and_a_key_only_where_the_value_has_it',
    ),
    (
        'no after_wave hook after a wave with a failed switch',
        'roles/rollout/tasks/main.yml',
        '      when: __lockstep_after_wave | bool and __lockstep_failed | length == 0\n',
        '      when: __lockstep_after_wave | bool\n',
        'tests/unit/test_release_in_miniature.py::'
        'test_a_canary_whose_batch_mate_failed_its_switch_is_not_rehearsed_and_the_failed_host_never_serves',
    ),
    (
        'the rehearsal puts the canary back, and a load balancer that cannot halts there',
        'roles/rollout/tasks/rehearse.yml',
        '        __lockstep_lb_op: ready\n        __lockstep_lb_keep_record: true\n'
        '        __lockstep_lb_track: true\n'
        '      run_once: true\n      when: __lockstep_lb_todo | length > 0',
        '        __lockstep_lb_op: ready\n        __lockstep_lb_keep_record: true\n'
        '        __lockstep_lb_track: true\n'
        '      run_once: true\n      when: false',
        'test_rehearsal.py::test_the_load_balancer_gone_during_the_rehearsal_leaves_the_canary_on_the_previous_release',
        'tests/unit/test_release_in_miniature.py::test_a_release_rehearses_the_rollback_on_the_drained_canary_and_a_manual_rollback_does_not',
    ),
    (
        'a load balancer that cannot put the rehearsed canary back halts there',
        'roles/rollout/tasks/rehearse.yml',
        # The put-back's own write is its judgement: without its gate, a canary left out only halts later.
        "        __lockstep_lb_halt_gate: rehearsal\n        __lockstep_lb_op: ready\n",
        "        __lockstep_lb_halt_gate: ''\n        __lockstep_lb_op: ready\n",
        'test_rehearsal.py::test_the_load_balancer_gone_during_the_rehearsal_leaves_the_canary_on_the_previous_release',
    ),
    (
        'kill switch (the canary lost during its rehearsal)',
        'roles/rollback/tasks/main.yml',
        '        __lockstep_lb_op: maint',
        '        __lockstep_lb_op: ready',
        'test_rehearsal.py::test_the_canary_lost_during_the_rehearsal_ends_out_of_the_load_balancer',
    ),
    (
        'a manual rollback does not put the release it takes away back on the canary',
        'playbooks/rollback.yml',
        '    lockstep_rehearse: false\n',
        '',
        'test_release_clean.py::test_manual_rollback_to_the_previous_release_through_the_same_gates',
        'tests/unit/test_release_in_miniature.py::test_a_release_rehearses_the_rollback_on_the_drained_canary_and_a_manual_rollback_does_not',
    ),
    (
        'the release record refuses a value of another type',
        'plugins/module_utils/release_record.py',
        '    if not ok(value):',
        '    if False:',
        'tests/unit/test_release_record.py::test_a_value_the_schema_refuses_is_refused_and_nothing_of_the_write_is_kept',
    ),
    (
        'the release record refuses a field it does not declare',
        'plugins/module_utils/release_record.py',
        '    if name not in FIELDS:\n        raise RecordError(',
        '    if name not in FIELDS:\n        return\n        raise RecordError(',
        'tests/unit/test_release_record.py::test_a_value_the_schema_refuses_is_refused_and_nothing_of_the_write_is_kept',
    ),
    (
        'the first halt wins in the release record',
        'plugins/module_utils/release_record.py',
        '        if name == "halt" and "halt" in current:',
        '        if False:',
        'tests/unit/test_release_record.py::'
        'test_lists_and_dicts_grow_by_add_counts_rendered_as_text_are_counts_and_the_first_halt_wins',
    ),
    (
        'a write the release record refuses halts the release',
        'plugins/module_utils/release_record.py',
        '        if "halt" not in record:',
        '        if False:',
        'tests/unit/test_release_record.py::'
        'test_the_filter_writes_the_record_and_halts_the_release_on_a_write_its_schema_refuses',
    ),
    (
        "each host's result says it was rolled back",
        'plugins/action/outcome.py',
        '        elif h in rolled:',
        '        elif False:',
        'tests/unit/test_release_outcome.py::test_each_hosts_result_is_decided_with_the_status_from_the_record',
    ),
    (
        "a halted release's changed hosts are the rollback's plan",
        'plugins/action/outcome.py',
        'a["changed"] = list(record.get("changed") or []) if a["halt"] else',
        'a["changed"] = list(record.get("changed") or []) if False else',
        'tests/unit/test_release_outcome.py::'
        'test_the_hosts_changed_are_the_rollbacks_plan_when_halted_and_the_switches_otherwise',
    ),
    (
        "a load balancer step through become never runs in the worker as the controller's user",
        'plugins/plugin_utils/guard.py',
        '                and getattr(self._connection, "become", None) is None)',
        '                and True)',
        'tests/unit/test_haproxy_step.py::'
        'test_the_step_runs_in_the_worker_on_the_controller_and_as_a_module_as_the_become_user',
    ),
    (
        "a load balancer step in the worker keeps check mode",
        'plugins/plugin_utils/guard.py',
        'function(args, bool(self._task.check_mode))',
        'function(args, False)',
        'tests/unit/test_haproxy_step.py::'
        'test_the_step_runs_in_the_worker_on_the_controller_and_as_a_module_as_the_become_user',
    ),
    (
        "a task selection is refused where the load balancer step runs in the worker",
        'plugins/plugin_utils/guard.py',
        '        refused = selection_problem()\n        if refused:\n            return dict(failed=True, changed=False, msg=refused, lockstep_check="selection")\n        spec, function',
        '        refused = selection_problem()\n        if False:\n            return dict(failed=True, changed=False, msg=refused, lockstep_check="selection")\n        spec, function',
        'tests/unit/test_haproxy_step.py::test_a_task_selection_is_refused_where_the_step_runs_in_the_worker',
    ),
    (
        "a drain waits for the server's sessions to end",
        'plugins/module_utils/haproxy_step.py',
        '        return info["scur"] == 0',
        '        return True',
        'tests/unit/test_haproxy_step.py::test_a_drain_waits_for_the_open_sessions_and_times_out_as_a_step_not_done',
    ),
    (
        "a load balancer step in the worker says its arguments as a module does (the wave lines read them)",
        'plugins/plugin_utils/guard.py',
        '        result.setdefault("invocation", {"module_args": args})\n',
        '',
        'test_progress_output.py::test_a_clean_release_of_8_hosts_prints_at_most_40_lines',
        'tests/unit/test_progress_callback.py::test_a_clean_release_is_its_phases_waves_gates_and_the_summary',
    ),
    (
        "the release lock in the worker keeps check mode",
        'plugins/module_utils/lock_step.py',
        '        if not check_mode:\n            if p["outcome"] is not None:',
        '        if True:\n            if p["outcome"] is not None:',
        'tests/unit/test_lock_step.py::'
        'test_the_lock_is_taken_in_the_worker_on_the_controller_and_as_a_module_as_the_become_user',
    ),
]


def needs_fleet(test):
    """Whether ``test`` runs on the local fleet: every integration test module but those marked ``without_fleet``
    (tests/integration/conftest.py)."""
    if test.startswith(("tests/unit/", "../unit/")):
        return False
    module = test.split("::")[0]
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration", module)) as f:
        return "pytest.mark.without_fleet" not in f.read()


def fast_test(entry):
    """The entry's first test (the fast one, then the fleet one) that needs no fleet, or None."""
    return next((t for t in entry[5:6] + entry[4:5] if not needs_fleet(t)), None)


# Left out of the scratch copy: what make setup builds (linked instead, read-only) and what tests leave behind.
NOT_COPIED = (".venv", ".venvs", "artifacts", ".fleet", ".lockstep", ".ansible", "dist")


def scratch_copy(repo):
    """A copy of ``repo``'s files as they are now (tracked and untracked, ignored ones left out), with ``.venv`` and
    ``artifacts`` linked; the path of its root."""
    root = tempfile.mkdtemp(prefix="lockstep-mutate-")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                            capture_output=True)
    if listed.returncode == 0:
        names = listed.stdout.decode().split("\0")
    else:  # not a git checkout (an unpacked archive): every file but what git would ignore
        names = [os.path.relpath(os.path.join(d, f), repo) for d, dirs, files in os.walk(repo)
                 for f in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]
                 if ".git" not in os.path.relpath(d, repo).split(os.sep)]
        names = [n for n in names if "__pycache__" not in n.split(os.sep) and not n.startswith(".ruff_cache")]
    for name in filter(None, names):
        src, dst = os.path.join(repo, name), os.path.join(root, name)
        if name.split("/")[0] in NOT_COPIED or not os.path.lexists(src):  # deleted but not yet staged
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    for name in (".venv", "artifacts"):
        os.symlink(os.path.join(repo, name), os.path.join(root, name))
    return root


def main(argv):
    ci = "--ci" in argv
    only = [a for a in argv if a != "--ci"]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    root = scratch_copy(repo)
    # The copy's own ansible.cfg: its collections path is the copy, where the mutation is.
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(root, "ansible.cfg"))
    failed_to_fail, left = [], []
    try:
        for entry in MUTATIONS:
            name, path, old, new, test = entry[:5]
            if only and not any(o in name for o in only):
                continue
            if ci:
                test = fast_test(entry)
                if test is None:
                    left.append(name)
                    continue
            target = os.path.join(root, path)
            src = open(target).read()
            assert old in src, (name, "the safeguard's code moved: update this mutation")
            with open(target, "w") as f:
                f.write(src.replace(old, new, 1))
            try:
                # A test named from tests/ is a unit test; a bare name is an integration test.
                where = test if test.startswith("tests/") else "tests/integration/" + test
                r = subprocess.run([os.path.join(repo, ".venv", "bin", "pytest"), "-q", "-x", "--tb=no", "-p",
                                    "no:cacheprovider", where], cwd=root, env=env, capture_output=True, text=True,
                                   timeout=900)
            finally:
                with open(target, "w") as f:
                    f.write(src)
            last = (r.stdout.strip().splitlines() or ["?"])[-1]
            # Only failed tests count (pytest exit 1): an error, a test not found (4) or nothing collected (5)
            # says nothing about the safeguard.
            verdict = {0: "ITS TEST STILL PASSES", 1: "its test fails"}.get(
                r.returncode, "ITS TEST DID NOT RUN (pytest exit %d)" % r.returncode)
            print("%-45s %s  (%s: %s)" % (name, verdict, test.split("::")[-1], last), flush=True)
            if r.returncode != 1:
                failed_to_fail.append(name)
    finally:
        shutil.rmtree(root)
    if left:
        print("left to make mutate (their only test needs the fleet): %s" % "; ".join(left))
    if failed_to_fail:
        print("safeguards whose test no longer fails without them: %s" % ", ".join(failed_to_fail))
    return 1 if failed_to_fail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

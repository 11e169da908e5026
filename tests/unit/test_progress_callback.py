"""lockstep.release.progress, the stdout callback, in real ``ansible-playbook`` runs of a release in miniature.

The project below is shaped like playbooks/release.yml (plays named "Lockstep | ...", roles named after the
phases, a canary and a wave through ``serial``, a rollback the same way back, a finish that publishes the status and
fails naming gate and host) on three local hosts, and its tasks are lockstep's own: ``lockstep.release.gate`` judges
every wave and phase, ``lockstep.release.haproxy`` drains and puts back through a private HAProxy's runtime API (Unix
sockets in the test's directory, no TCP port), ``lockstep.release.deploy`` stages and switches in check mode over
releases staged for real, ``lockstep.release.watch`` scrapes a metrics endpoint, and the ledger callback records the
run and prints the summary. What the callback prints is then counted and read line by line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
BEFORE, TARGET = "2.0.0", "2.1.0"
HOSTS = ["h1", "h2", "h3"]
PROGRESS = "lockstep.release.progress"

PLAYBOOK = """
- name: "Lockstep | preflight: every host of the fleet, checked before anything changes"
  hosts: all
  gather_facts: false
  roles:
    - role: preflight

- name: "Lockstep | rollout: stage the release on every host"
  hosts: app
  gather_facts: false
  tasks:
    - name: Lockstep | nothing to do in this play
      ansible.builtin.meta: end_play
      when: hostvars['localhost'].__lockstep_record.halt is defined
    - name: Stage
      ansible.builtin.include_role:
        name: rollout
        tasks_from: stage

- name: "Lockstep | rollout: canary, then waves"
  hosts: app
  gather_facts: false
  serial: [1, 2]
  tasks:
    - name: Lockstep | nothing to do in this play
      ansible.builtin.meta: end_play
      when: hostvars['localhost'].__lockstep_record.halt is defined
    - name: Wave
      ansible.builtin.include_role:
        name: rollout

- name: "Lockstep | verify, smoke and watch the whole fleet"
  hosts: app
  gather_facts: false
  tasks:
    - name: Lockstep | nothing to do in this play
      ansible.builtin.meta: end_play
      when: hostvars['localhost'].__lockstep_record.halt is defined
    - name: Verify
      ansible.builtin.include_role:
        name: verify
    - name: Watch
      ansible.builtin.include_role:
        name: watch

- name: "Lockstep | rollback: canary, then waves, back to the previous release"
  hosts: app
  gather_facts: false
  serial: [1, 2]
  tasks:
    - name: Lockstep | nothing to do in this play
      ansible.builtin.meta: end_play
      when: (hostvars['localhost'].__lockstep_record.halt.phase | default('preflight')) == 'preflight'
    - name: Wave back
      ansible.builtin.include_role:
        name: rollout
      vars:
        direction: back

# As in playbooks/release.yml: a run_once task that fails (a refusing gate) leaves the play's first host alone in
# the run, and the finish is every host's play.
- name: "Lockstep | finish: status, lock, summary"
  hosts: all
  gather_facts: false
  tasks:
    - name: Finish
      ansible.builtin.import_role:
        name: finish
"""

ROLES = {
    "preflight": """
- name: Preflight | start the release record
  ansible.builtin.set_fact:
    __lockstep_record: >-
      {{ hostvars['localhost'].__lockstep_record | default(none)
         | lockstep.release.record(__lockstep_write) }}
  vars:
    __lockstep_write:
      reset: true
  delegate_to: localhost
  delegate_facts: true
  run_once: true

- name: Preflight | plan and gates
  block:
    - name: Preflight | the fleet as it is
      lockstep.release.gate:
        gate: preflight
        expect: "{{ dict(groups['app'] | zip([before] * 3)) }}"
        states: "{{ states_found }}"
      delegate_to: localhost
      run_once: true
  rescue:
    - name: Preflight | refuse the release (nothing has changed)
      ansible.builtin.set_fact:
        __lockstep_record: >-
          {{ hostvars['localhost'].__lockstep_record | default(none)
             | lockstep.release.record(__lockstep_write) }}
      vars:
        __lockstep_write:
          set:
            halt:
              phase: preflight
              gate: "{{ ansible_failed_result.lockstep_gate.gate | default('preflight') }}"
              host: "{{ ansible_failed_result.lockstep_gate.halted[0].host | default('controller') }}"
              message: >-
                {{ ansible_failed_result.lockstep_gate | default({})
                   | lockstep.release.halt_message(ansible_failed_result.msg) }}
      delegate_to: localhost
      delegate_facts: true
      run_once: true
""",
    "rollout/stage": """
- name: Rollout | stage the release, never over an existing one - {{ version }}
  lockstep.release.deploy:
    base: "{{ stage_base }}/{{ inventory_hostname }}"
    state: staged
    version: "{{ version }}"
    manifest: {version: "{{ version }}"}
  check_mode: true
""",
    "rollout": """
- name: Rollout | wave
  vars:
    back: "{{ (direction | default('forward')) == 'back' }}"
    wave_no: "{{ 1 if 'h1' in ansible_play_batch else 2 }}"
    to: "{{ before if back else version }}"
  block:
    - name: Rollout | drain this wave
      lockstep.release.haproxy:
        socket: "{{ haproxy_socket }}"
        backend: b
        servers: "{{ ansible_play_batch }}"
        state: drained
        halt: false
      delegate_to: localhost
      run_once: true

    - name: Rollout | switch, restart and prove the version runs
      lockstep.release.deploy:
        base: "{{ base }}"
        state: active
        version: "{{ switch_to[inventory_hostname] | default(to) if not back else to }}"
      check_mode: true
      register: __switch

    - name: Rollout | put this wave back
      lockstep.release.haproxy:
        socket: "{{ haproxy_socket }}"
        backend: b
        servers: "{{ ansible_play_batch }}"
        state: ready
        halt: false
      delegate_to: localhost
      run_once: true

    - name: Rollout | wave gate - done hosts run the new version
      lockstep.release.gate:
        halt: false
        gate: "{{ 'rollback-wave' if back else 'wave' }}-{{ wave_no }}"
        expect: "{{ dict(ansible_play_batch | zip([to] * (ansible_play_batch | length))) }}"
        states: >-
          {{ (states_found if back else states_after) | dict2items | selectattr('key', 'in', ansible_play_batch)
             | items2dict }}
        wave:
          index: "{{ wave_no }}"
          count: 2
          hosts: "{{ ansible_play_batch }}"
          done: "{{ 1 if wave_no | int == 1 else 3 }}"
          total: 3
          version: "{{ ('back to ' ~ before) if back else version }}"
      delegate_to: localhost
      register: __lockstep_gate
      run_once: true
      when: ansible_play_batch | map('extract', hostvars, '__switch') | select('failed') | list | length == 0

    - name: Rollout | halt unless the gate passed
      ansible.builtin.fail:
        msg: "{{ __lockstep_gate.msg }}"
      when: __lockstep_gate.lockstep_gate is defined and not __lockstep_gate.lockstep_gate.passed
  rescue:
    - name: Rollout | halt the release
      ansible.builtin.set_fact:
        __lockstep_record: >-
          {{ hostvars['localhost'].__lockstep_record | default(none)
             | lockstep.release.record(__lockstep_write) }}
      vars:
        __lockstep_write:
          set:
            halt:
              phase: rollout
              gate: "{{ __failed_gate.gate | default(ansible_failed_result.lockstep_check | default('switch')) }}"
              host: "{{ (__failed_gate.halted | default([{'host': inventory_hostname}]))[0].host }}"
              message: >-
                {{ __failed_gate | lockstep.release.halt_message(ansible_failed_result.msg | default('failed')) }}
        __failed_gate: >-
          {{ __lockstep_gate.lockstep_gate
             if (__lockstep_gate.lockstep_gate | default({'passed': true})).passed == false else {} }}
      delegate_to: localhost
      delegate_facts: true
      run_once: true
      when: hostvars['localhost'].__lockstep_record.halt is not defined and not back
""",
    "verify": """
- name: Verify | every host runs the target - {{ version }}
  lockstep.release.gate:
    gate: verify
    halt: false
    expect: "{{ dict(groups['app'] | zip([version] * 3)) }}"
    states: "{{ states_after }}"
  delegate_to: localhost
  run_once: true

- name: Verify | a team's hook
  ansible.builtin.command:
    argv: [sh, -c, "echo the hook broke on {{ inventory_hostname }} >&2; exit 3"]
  changed_when: false  # it changes nothing; its exit 3 still fails the task, which is what the test prints
  when: inventory_hostname in hook_fails
""",
    "watch": """
- name: Watch | scrape every host's metrics and hold the thresholds, seconds - {{ watch_seconds }}
  lockstep.release.watch:
    metrics_urls: "{{ dict(groups['app'] | zip([metrics_url] * 3)) }}"
    thresholds: [{name: errors, metric: errors_total, max: 5}]
    seconds: "{{ watch_seconds }}"
    interval: 0.5
  delegate_to: localhost
  run_once: true
""",
    "finish": """
- name: Finish | census - what every host of the fleet runs now
  lockstep.release.gate:
    gate: final
    halt: false
    expect: >-
      {{ dict(groups['app'] | zip(groups['app'] | map('extract', states_found) | map(attribute='active_version')))
         if halted else dict(groups['app'] | zip([version] * 3)) }}
    states: "{{ states_found if halted else states_after }}"
  vars:
    halted: "{{ hostvars['localhost'].__lockstep_record.halt is defined }}"
  delegate_to: localhost
  run_once: true

- name: Finish | publish the outcome
  ansible.builtin.set_stats:
    data:
      lockstep_status: "{{ status }}"
      lockstep_version_before: "{{ before }}"
      lockstep_version_after: "{{ before if halt else version }}"
      lockstep_halted_by: "{{ halt if halt else none }}"
      lockstep_hosts: "{{ dict(groups['app'] | zip([{'before': before, 'after': before if halt else version,
                          'phase': 'finish', 'result': status}] * 3)) }}"
  vars:
    halt: "{{ hostvars['localhost'].__lockstep_record.halt | default({}) }}"
    status: "{{ ('refused' if halt.phase == 'preflight' else 'rolled_back') if halt else 'succeeded' }}"
  run_once: true

- name: Finish | the release did not succeed
  ansible.builtin.fail:
    msg: >-
      lockstep {{ 'refused' if halt.phase == 'preflight' else 'rolled_back' }}: release of {{ version }} halted by
      gate {{ halt.gate }} on {{ halt.host }}: {{ halt.message }}{{ '' if halt.phase == 'preflight'
      else ' | every changed host was rolled back to ' ~ before ~ ' and verified' }}
  vars:
    halt: "{{ hostvars['localhost'].__lockstep_record.halt | default({}) }}"
  run_once: true
  when: halt | length > 0
""",
}


def state(version, pid=1):
    return {"active_version": version, "active_valid": True,
            "running": {"version": version, "from_active": True, "pid": pid, "cwd": "/srv/releases/" + version}}


@pytest.fixture
def project(tmp_path, haproxy, staged_template, http_service):
    """The release in miniature; ``run(**scenario) -> Run`` runs it with ansible-playbook."""
    metrics = http_service({"/metrics": (200, "# TYPE errors_total counter\nerrors_total 0\n")})
    root = tmp_path / "project"
    for name, text in ROLES.items():
        role, _, entry = name.partition("/")
        path = root / "roles" / role / "tasks" / ("%s.yml" % (entry or "main"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "release.yml").write_text(PLAYBOOK)
    (root / "inventory.yml").write_text(json.dumps({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "children": {"app": {"hosts": dict.fromkeys(HOSTS, {})}}}}))
    base_vars = {"version": TARGET, "before": BEFORE, "base": str(staged_template),
                 "stage_base": str(tmp_path / "stage"), "haproxy_socket": haproxy,
                 "metrics_url": metrics.url + "/metrics", "watch_seconds": 0, "hook_fails": [], "switch_to": {},
                 "states_found": {h: state(BEFORE) for h in HOSTS},
                 "states_after": {h: state(TARGET, pid=2) for h in HOSTS}}

    def run(playbook="release.yml", args=(), callback=PROGRESS, env=None, **extra):
        return play(tmp_path, root, playbook, dict(base_vars, **extra), args, callback, env or {})

    run.root = root
    run.vars = base_vars
    return run


def write_cfg(tmp_path, root, stdout_callback=None):
    """The project's ansible.cfg: its inventory, the collection, the ledger (and a stdout callback when given)."""
    cfg = root / "ansible.cfg"
    cfg.write_text("[defaults]\ninventory = inventory.yml\nretry_files_enabled = False\nforks = 8\n"
                   "callbacks_enabled = lockstep.release.ledger\ncollections_path = %s\n%s"
                   % (os.path.join(REPO, "collections"),
                      "stdout_callback = %s\n" % stdout_callback if stdout_callback else ""))
    return cfg


def module_code_cache():
    """The directory tests/unit/module_code_cache/sitecustomize.py keeps compiled module code in (the user's own,
    0700: the code of every local module run of these tests is read from it)."""
    path = os.path.join(os.path.expanduser("~"), ".cache", "lockstep", "module-code")
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    assert info.st_uid == os.getuid() and not info.st_mode & 0o077, (path, oct(info.st_mode))
    return path


def ansible_env(tmp_path, root, callback, extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_"))}
    env.update({
        "PATH": BIN + os.pathsep + env.get("PATH", ""),
        # Each local module run reads its compiled module_utils from a cache instead of compiling them from its zip
        # again (tests/unit/module_code_cache/sitecustomize.py): the same code, about a sixth less CPU a release.
        "PYTHONPATH": os.pathsep.join(filter(None, [os.path.join(REPO, "tests", "unit", "module_code_cache"),
                                                    env.get("PYTHONPATH")])),
        "LOCKSTEP_MODULE_CODE_CACHE": module_code_cache(),
        "ANSIBLE_CONFIG": str(write_cfg(tmp_path, root)),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "LOCKSTEP_LEDGER_DIR": str(tmp_path / "ledger"),
        "LOCKSTEP_LEDGER_ANCHOR_DIR": str(tmp_path / "anchors"),
    })
    if callback:
        env["ANSIBLE_STDOUT_CALLBACK"] = callback
    env.update(extra)
    return env


class Run:
    def __init__(self, proc):
        self.rc, self.out, self.err = proc.returncode, proc.stdout, proc.stderr
        self.lines = self.out.splitlines()

    def mine(self, pattern):
        return [line for line in self.lines if re.search(pattern, line)]

    def __repr__(self):
        return "rc=%s, %d lines\n%s\n--- stderr\n%s" % (self.rc, len(self.lines), self.out[-8000:], self.err[-3000:])


def play(tmp_path, root, playbook, extra_vars, args, callback, env):
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), playbook, "-e", json.dumps(extra_vars), *args],
                          cwd=str(root), env=ansible_env(tmp_path, root, callback, env), capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    run = Run(proc)
    # ansible-core only warns when a callback method raises: the callbacks' every event went through.
    assert "Failure using method" not in run.out + run.err and "lockstep.release.progress:" not in run.err, run
    return run


def halted_at_wave_2():
    """h2 still runs the old release after its switch: the gate of the second wave halts the release."""
    return {"states_after": dict({h: state(TARGET, pid=2) for h in HOSTS}, h2=state(BEFORE))}


def normalized(lines):
    """Lines without what changes from run to run: seconds, the ledger's file name."""
    return [re.sub(r"\d+(\.\d+)? s\b", "N s", re.sub(r"ledger: .*", "ledger: <LEDGER>", line)) for line in lines]


# --- the plugin as Ansible shows it ------------------------------------------------------------------------------

def test_ansible_doc_shows_the_callback_and_its_options():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(REPO, "collections")
    proc = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", "callback", "--json", PROGRESS],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[PROGRESS]["doc"]
    assert doc["type"] == "stdout"
    options = doc["options"]
    assert options["interval"]["default"] == 10 and options["interval"]["env"] == [
        {"name": "LOCKSTEP_PROGRESS_INTERVAL"}]
    assert options["play_prefix"]["default"] == "Lockstep |"
    # The default callback's own options: its output, wherever this one falls back to it.
    assert {"display_skipped_hosts", "display_ok_hosts", "display_failed_stderr", "show_custom_stats",
            "result_format"} <= set(options)


# --- a release in miniature, line by line ------------------------------------------------------------------------

def test_a_clean_release_is_its_phases_waves_gates_and_the_summary(project):
    run = project()
    assert run.rc == 0, run
    # Every line is lockstep's, or the ledger's summary table: no banner, no per-host task line.
    assert not run.mine(r"^(PLAY|TASK) \[|^(ok|changed|skipping|fatal): \["), run
    assert len(run.lines) <= 20, run
    for phase in ("preflight", "verify", "watch", "finish"):
        assert len(run.mine(r"^lockstep: %s passed in \d+\.\d s: gate %s passed in \d+\.\d s on 3 hosts$"
                            % (phase, "final" if phase == "finish" else phase))) == 1, (phase, run)
    assert run.mine(r"^lockstep: rollout: 2\.1\.0 staged on 3 hosts in \d+\.\d s$"), run
    assert run.mine(r"^lockstep: rollout passed in \d+\.\d s: 2 waves; 3 hosts switched$"), run
    # One line per wave, the ledger's own ("lockstep: wave 1/2 [h1] version 2.1.0: 1/3 hosts done") followed by
    # its steps and its gate, printed once: the ledger leaves its wave lines to this callback.
    assert run.mine(r"^lockstep: wave ") == [
        run.mine(r"^lockstep: wave 1/2 \[h1\] version 2\.1\.0: 1/3 hosts done - drained, switched, proven, back; "
                 r"gate wave-1 passed in \d+\.\d s \(wave \d+\.\d s\)$")[0],
        run.mine(r"^lockstep: wave 2/2 \[h2,h3\] version 2\.1\.0: 3/3 hosts done - drained, switched, proven, "
                 r"back; gate wave-2 passed in \d+\.\d s \(wave \d+\.\d s\)$")[0]], run
    assert run.mine(r"^lockstep: recap: 3 hosts, failed: none, unreachable: none$"), run
    assert run.lines.count("LOCKSTEP RELEASE SUMMARY: status succeeded, version 2.0.0 -> 2.1.0") == 1, run
    assert run.lines[-2] == "not halted by any gate" and run.lines[-1].startswith("ledger: "), run
    # The same release with Ansible's default callback, for scale.
    default = project(callback="default")
    assert default.rc == 0 and len(default.lines) > 5 * len(run.lines), (len(default.lines), run)


def test_a_halt_says_its_reason_once_and_the_rollback_goes_wave_by_wave(project):
    run = project(**halted_at_wave_2())
    assert run.rc == 2, run
    reason = "2.0.0 on disk; process 1 runs 2.0.0 from /srv/releases/2.0.0 (expected 2.1.0)"
    assert (run.out + run.err).count(reason) == 1, run
    assert run.mine(r"^lockstep: wave 2/2 \[h2,h3\] version 2\.1\.0: HALTED - drained, switched, proven, back; "
                    r"gate wave-2 HALTED in"), run
    assert run.mine("^lockstep: HALTED by gate wave-2 on h2 in rollout: " + re.escape(reason) + "$"), run
    assert run.mine(r"^lockstep: rollout HALTED in \d+\.\d s: 2 waves; 3 hosts switched$"), run
    # Nothing repeats the gate: neither its own message nor the tasks that fail on it.
    assert not run.mine("halted the release"), run
    back = run.mine(r"^lockstep: wave \d/2 \[[h0-9,]+\] version back to 2\.0\.0: ")
    assert [line.split(" version ")[0] for line in back] == ["lockstep: wave 1/2 [h1]", "lockstep: wave 2/2 [h2,h3]"]
    assert all("drained, switched, proven, back; gate rollback-wave-" in line for line in back), run
    assert run.mine(r"^lockstep: rollback passed in \d+\.\d s: 2 waves back; 3 hosts switched back$"), run
    # The verdict names gate and host, once, without the reason the halt line gave.
    assert run.mine("^lockstep rolled_back: release of 2.1.0 halted by gate wave-2 on h2 [|] every changed host was "
                    "rolled back to 2.0.0 and verified$"), run
    assert run.lines.count("halted by gate wave-2 on host h2") == 1, run
    assert run.lines.index("LOCKSTEP RELEASE SUMMARY: status rolled_back, version 2.0.0 -> 2.0.0") > run.lines.index(
        run.mine("^lockstep rolled_back")[0]), run
    assert len(run.lines) <= 22, run


def test_a_refusal_is_a_few_lines_with_its_reason_once(project):
    run = project(states_found=dict({h: state(BEFORE) for h in HOSTS}, h3=state("1.0.0")))
    assert run.rc == 2, run
    reason = "1.0.0 on disk; process 1 runs 1.0.0 from /srv/releases/1.0.0 (expected 2.0.0)"
    assert (run.out + run.err).count(reason) == 1, run
    assert run.lines[0] == "lockstep: REFUSED by gate preflight on h3: " + reason, run
    assert run.mine(r"^lockstep: preflight REFUSED in \d+\.\d s: gate preflight REFUSED in"), run
    assert run.mine("^lockstep refused: release of 2.1.0 halted by gate preflight on h3$"), run
    assert not run.mine(r"^lockstep: (wave|rollout|rollback)"), run
    assert run.lines.count("halted by gate preflight on host h3") == 1, run
    assert len(run.lines) <= 14, run


def test_a_switch_that_fails_is_its_wave_line_and_the_halt(project):
    run = project(switch_to={"h3": "9.9.9"})
    assert run.rc == 2, run
    reason = "releases/9.9.9 is not a valid staged release: missing"
    assert (run.out + run.err).count(reason) == 1, run
    # The wave never reached its gate: what it did so far, then the halt.
    wave = run.mine(r"^lockstep: wave 2/2 \[h2,h3\] version 2\.1\.0: not finished - drained, switched h2, "
                    r"proven h2, FAILED h3")
    halt = run.mine("^lockstep: HALTED by gate release-integrity on h3 in rollout: " + re.escape(reason) + "$")
    assert wave and halt and run.lines.index(wave[0]) + 1 == run.lines.index(halt[0]), run


def test_no_failure_is_hidden_and_a_long_step_says_how_long_it_has_left(project):
    run = project(hook_fails=["h3"], watch_seconds=3, env={"LOCKSTEP_PROGRESS_INTERVAL": "1"})
    assert run.rc == 2, run
    # A task that is not a gate fails: its task, its host and every word of its message.
    assert run.mine(r"^lockstep: a team's hook: failed on h3: non-zero return code \(rc=3\): "
                    r"the hook broke on h3$"), run
    assert run.mine(r"^lockstep: verify FAILED in"), run
    left = run.mine(r"^lockstep: watch: \d s left of 3 s$")
    # One line a second, counting down; a watch that overruns its 3 s on a loaded machine says "0 s left" again.
    seconds = [int(line.split()[2]) for line in left]
    assert 1 <= len(set(seconds)) <= 3 and seconds == sorted(seconds, reverse=True), run
    assert all(s == 0 for s, after in zip(seconds, seconds[1:], strict=False) if s == after), run
    assert run.lines.index(left[-1]) < run.lines.index(run.mine("^lockstep: watch passed")[0]), run


def test_verbose_is_exactly_the_default_callback(project):
    """-v: Ansible's default output, the ledger's own wave lines and its whole summary, line for line."""
    runs = [project(callback=callback, args=("-v",), env={"ANSIBLE_FORKS": "1"}, **halted_at_wave_2())
            for callback in (PROGRESS, "default")]
    assert runs[0].rc == runs[1].rc == 2, runs
    # Numbers aside (free disk, seconds, the ledger's time and pid), the very same lines.
    digits = [[re.sub(r"\d+", "0", line) for line in run.lines] for run in runs]
    assert digits[0] == digits[1], runs[0]
    assert runs[0].mine(r"^TASK \[") and runs[0].mine(r"^lockstep: wave 1/2 \[h1\] version 2\.1\.0: "
                                                       r"1/3 hosts done$"), runs[0]
    assert runs[0].mine(r"^halted by gate wave-2 on host h2: 2\.0\.0 on disk"), runs[0]


OTHERS = """
- name: "Team | before the release"
  hosts: app
  gather_facts: false
  tasks:
    - name: Team | say hello
      ansible.builtin.debug:
        msg: "hello from {{ inventory_hostname }}"
    - name: Team | a check that fails on h2
      ansible.builtin.assert:
        that: inventory_hostname != 'h2'
        fail_msg: "h2 is not ready"

- name: "Lockstep | verify, smoke and watch the whole fleet"
  hosts: app
  gather_facts: false
  tasks:
    - name: Verify
      ansible.builtin.include_role:
        name: verify
"""


def test_other_plays_are_shown_as_the_default_callback_shows_them(project):
    (project.root / "others.yml").write_text(OTHERS)
    run = project(playbook="others.yml")
    assert run.rc == 2, run
    assert run.mine(r"^PLAY \[Team \| before the release\]") and run.mine(r"^TASK \[Team \| say hello\]"), run
    assert run.mine(r'"msg": "hello from h1"'), run
    assert run.mine(r"^fatal: \[h2\]: FAILED! =>") and run.mine("h2 is not ready"), run
    # lockstep's play in the same run: its phase line, no banner.
    assert run.mine(r"^lockstep: verify passed in") and not run.mine(r"^PLAY \[Lockstep"), run
    assert run.mine(r"^PLAY RECAP") and run.mine(r"^h2 +: ok=1 .*failed=1"), run


# --- AWX: the job's stdout through ansible-runner ------------------------------------------------------------------

RUNNER = r"""
import json, sys
import ansible_runner
spec = json.loads(sys.argv[1])
r = ansible_runner.run(private_data_dir=spec["pdd"], project_dir=spec["project"], playbook="release.yml",
                       inventory=spec["inventory"], extravars=spec["extravars"], envvars=spec["envvars"], quiet=True)
events = list(r.events)
print(json.dumps({"rc": r.rc, "stdout": r.stdout.read(),
                  "events": [e.get("stdout", "") for e in events],
                  "artifact": next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
                  .get("artifact_data")}))
"""


def runner_job(tmp_path, project, name, envvars, stdout_callback=None, **extra):
    """The release as an AWX job runs it: ansible-runner (the development core's, which holds it) with the
    project's ansible.cfg and the job's environment variables."""
    pdd = tmp_path / name
    pdd.mkdir()
    cfg = write_cfg(tmp_path, project.root, stdout_callback)
    envvars = dict({"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
                    "LOCKSTEP_LEDGER_DIR": str(tmp_path / "ledger"),
                    "LOCKSTEP_LEDGER_ANCHOR_DIR": str(tmp_path / "anchors")}, **envvars)
    spec = {"pdd": str(pdd), "project": str(project.root), "inventory": str(project.root / "inventory.yml"),
            "extravars": dict(project.vars, **extra), "envvars": envvars}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_"))}
    venv = os.path.join(REPO, ".venv", "bin")
    env["PATH"] = venv + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([os.path.join(venv, "python"), "-c", RUNNER, json.dumps(spec)], capture_output=True,
                          text=True, env=env, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-6000:]
    job = json.loads(proc.stdout)
    job["lines"] = [line.rstrip("\r") for line in job["stdout"].splitlines() if line.strip()]
    return job


def test_an_ansible_runner_job_shows_the_same_lines(project, tmp_path):
    """ANSIBLE_STDOUT_CALLBACK in the job's environment: runner's awx_display is built on this callback, and the
    job's stdout (what AWX shows) is the lines ansible-playbook prints."""
    played = project(**halted_at_wave_2())
    job = runner_job(tmp_path, project, "job", {"ANSIBLE_STDOUT_CALLBACK": PROGRESS}, **halted_at_wave_2())
    assert job["rc"] == 2, job["stdout"][-6000:]
    assert normalized(job["lines"]) == normalized(played.lines), job["stdout"][-6000:]
    # Each line came with its event (the halt in the halt's, the summary in none of the callback's).
    assert any(e.startswith("lockstep: HALTED by gate wave-2 on h2") for e in job["events"]), job["events"]
    assert job["artifact"]["lockstep_status"] == "rolled_back", job["artifact"]


def test_an_ansible_runner_job_ignores_the_stdout_callback_of_ansible_cfg(project, tmp_path):
    """runner sets ANSIBLE_STDOUT_CALLBACK=awx_display itself, which wins over the project's ansible.cfg: without
    the environment variable the job shows Ansible's default output, and the ledger prints its own wave lines and
    the whole summary."""
    job = runner_job(tmp_path, project, "job", {}, stdout_callback=PROGRESS, **halted_at_wave_2())
    assert job["rc"] == 2, job["stdout"][-6000:]
    assert any(line.startswith("TASK [") for line in job["lines"]), job["stdout"][-6000:]
    assert "lockstep: wave 1/2 [h1] version 2.1.0: 1/3 hosts done" in job["lines"], job["stdout"][-6000:]
    assert any(line.startswith("halted by gate wave-2 on host h2: 2.0.0 on disk") for line in job["lines"])


# --- the progress thread ------------------------------------------------------------------------------------------

class FakeDisplay:
    """Ansible's Display as far as the callback uses it, keeping what it prints."""

    def __init__(self, verbosity=0):
        self.verbosity = verbosity
        self.lines = []

    def display(self, msg, color=None, stderr=False, screen_only=False, log_only=False, newline=True):
        self.lines.append(msg)

    def banner(self, msg, color=None, cows=True):
        self.lines.append("BANNER " + msg)

    def warning(self, msg, formatted=False):
        self.lines.append("WARNING " + msg)


def plugin_with(display, monkeypatch):
    from ansible import context

    from ansible_collections.lockstep.release.plugins.callback.progress import CallbackModule

    monkeypatch.setattr(context, "CLIARGS", {"check": False})
    plugin = CallbackModule()
    plugin._display = display
    plugin._plugin_options = {"interval": 0.2, "play_prefix": "Lockstep |", "display_failed_stderr": False,
                              "show_custom_stats": False, "check_mode_markers": False}
    return plugin


def tickers():
    return [t for t in threading.enumerate() if t.name == "lockstep-progress" and t.is_alive()]


def test_the_progress_thread_counts_down_the_watch_and_ends_with_the_run(monkeypatch):
    display = FakeDisplay()
    plugin = plugin_with(display, monkeypatch)
    plugin.v2_playbook_on_start(SimpleNamespace(_file_name="release.yml"))
    assert len(tickers()) == 1
    plugin.v2_playbook_on_play_start(SimpleNamespace(get_name=lambda: "Lockstep | verify, smoke and watch",
                                                     serial=[], strategy="linear", check_mode=False))
    name = "Watch | scrape every host's metrics and hold the thresholds, seconds - 1"
    task = SimpleNamespace(_uuid="watch-task", action="lockstep.release.watch", args={"seconds": "{{ s }}"},
                           name=name, get_name=lambda: name, no_log=False, check_mode=False, loop=None,
                           _role=SimpleNamespace(get_name=lambda: "lockstep.release.watch"))
    host = SimpleNamespace(get_name=lambda: "h1", name="h1")
    plugin.v2_playbook_on_task_start(task, False)
    plugin.v2_runner_on_start(host, task)
    time.sleep(1.2)
    gate = {"gate": "watch", "passed": True, "hosts": {"h1": {}}, "halted": [], "message": "gate watch passed"}
    plugin.v2_runner_on_ok(SimpleNamespace(host=host, task=task, result={"changed": False, "lockstep_gate": gate}))
    counted = [line for line in display.lines if re.fullmatch(r"lockstep: watch: \d s left of 1 s", line)]
    assert 2 <= len(counted) <= 6, display.lines
    time.sleep(0.5)  # the step is done: no further line for it
    assert len([line for line in display.lines if " left of " in line]) == len(counted), display.lines
    stats = SimpleNamespace(processed={"h1": 1}, summarize=lambda h: {"failures": 0, "unreachable": 0}, custom={})
    plugin.v2_playbook_on_stats(stats)
    assert not tickers(), "the progress thread outlived the run"
    assert re.fullmatch(r"lockstep: watch passed in \d+\.\d s: gate watch passed in \d+\.\d s on 1 host",
                        display.lines[-2]), display.lines
    assert display.lines[-1] == "lockstep: recap: 1 host, failed: none, unreachable: none"


def test_verbose_runs_start_no_thread_and_print_the_default_banners(monkeypatch):
    display = FakeDisplay(verbosity=1)
    plugin = plugin_with(display, monkeypatch)
    plugin.v2_playbook_on_start(SimpleNamespace(_file_name="release.yml"))
    plugin.v2_playbook_on_play_start(SimpleNamespace(get_name=lambda: "Lockstep | preflight", serial=[],
                                                     strategy="linear", check_mode=False))
    assert not tickers()
    assert display.lines == ["BANNER PLAY [Lockstep | preflight]"]

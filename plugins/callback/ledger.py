# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ledger
type: aggregate
short_description: Append-only, hash-chained release ledger, release summary and JUnit report for lockstep
description:
  - Writes one JSON Lines ledger file per release (per C(ansible-playbook) run) on the controller. Every event is a
    record, flushed and fsynced when it happens - release started, play started, phase entered/left (a phase is the
    short name of the role a task belongs to), each host's C(lockstep_state), each C(lockstep_gate) and
    C(lockstep_wave) result, every failure and unreachable host with its message, each task of the C(rollback)
    phase, and the final status (C(release_finished)).
  - Each record carries C(seq) and C(prev), the hash of the previous record, and its own C(hash) (sha256 of its
    canonical JSON), so C(bin/lockstep ledger verify) detects a deleted, reordered or edited line.
  - With a key (O(key), O(key_file) or the extra var C(lockstep_ledger_key)) the chain is keyed - each C(hash) is an
    HMAC-SHA256 with that key and the first record says C(mac=hmac-sha256), never the key - so whoever can write the
    ledger directory but has no key cannot rewrite its history.
  - Prints a line per wave (C(lockstep_wave) results) while the release runs, and a per-host summary table at the
    end. Optionally writes a JUnit XML file with one test case per host per gate.
  - When C(lockstep.release.progress) is the stdout callback (C(DEFAULT_STDOUT_CALLBACK), or under ansible-runner
    C(ORIGINAL_STDOUT_CALLBACK), which its C(awx_display) is built on) and the run is not verbose, that callback
    prints the wave lines (with their steps and gates) and the halt with its reason. This one then prints no wave
    line, and its summary names the gate and host that halted the release without repeating the reason.
  - Names its ledger in C(LOCKSTEP_LEDGER_FILE) in the controller's environment; the finish role publishes it
    (C(lockstep_ledger) in its C(set_stats)) so AWX shows it in the job's artifacts.
  - Secrets never reach the ledger, the progress lines, the summary or the JUnit file; lockstep's actions scrub
    their results of the same secrets (those the callback has met included), so what the finish role publishes
    (C(set_stats)) carries none either - vault-encrypted values wherever they are defined (inventory
    host_vars/group_vars, vars files, play vars, extra vars; inline C(!vault) values and files encrypted whole), the
    values of variables (or dict keys) whose names match O(secret_patterns) from any source, and what a C(no_log)
    task sets or registers (facts, C(stdout), C(content), C(json)). They are collected once per play from every
    host's variables; any string containing one has it replaced by C(********). Nothing but the status is taken
    from a C(no_log) result.
  - Keeps the ledger's head (last C(seq) and C(hash)) in an anchor file outside the ledger directory, rewritten
    atomically after every record, so C(bin/lockstep ledger verify) detects a ledger whose tail was cut off. Verify
    looks for the anchor in the anchor directory it is configured with (C(LOCKSTEP_LEDGER_ANCHOR_DIR)), never where
    the ledger says.
  - The ledger directory is made mode 0700, ledger, fallback, anchor and JUnit files 0600, whatever the umask.
  - If the ledger cannot be created or written, every record from then on goes to a fallback file
    (C($TMPDIR/lockstep-ledger-fallback-<pid>.jsonl), 0600, chained and anchored the same way; on stderr when even
    that fails), and the callback tells the run's tasks in C(LOCKSTEP_LEDGER_BROKEN). It never stops the run itself
    (killing a release mid-way would strand switched hosts and the lock). lockstep's release plan refuses to start
    on it, every gate that lets a release go forward halts on it, so the rollback and finish run and
    C(ansible-playbook) exits non-zero. An unrecorded release is not allowed.
  - This is not a stdout callback; enable it with C(callbacks_enabled = lockstep.release.ledger).
version_added: "0.1.0"
author: lockstep contributors
requirements:
  - enable in configuration (C(callbacks_enabled)), python library C(junitparser) for O(junit_file)
options:
  directory:
    description:
      - Directory of the ledger files, one C(<UTC time>-<playbook>-<pid>.jsonl) file per release.
      - A relative path is relative to the current working directory of C(ansible-playbook), which is the
        project directory under AWX, ansible-runner and C(make); in C(ansible.cfg) it is relative to that file.
    type: path
    default: .lockstep/ledger
    ini:
      - section: lockstep_ledger
        key: directory
    env:
      - name: LOCKSTEP_LEDGER_DIR
  secret_patterns:
    description:
      - Case-insensitive glob patterns of variable names whose values are secrets. Matching extra vars are recorded
        as C(********) and their values are scrubbed from every string the callback writes.
    type: list
    elements: str
    default: ['*password*', '*passwd*', '*secret*', '*token*', '*private_key*', '*api_key*', '*apikey*',
              '*passphrase*', '*credential*', 'vault_*']
    ini:
      - section: lockstep_ledger
        key: secret_patterns
    env:
      - name: LOCKSTEP_LEDGER_SECRET_PATTERNS
  anchor_dir:
    description:
      - Directory of the anchors, one per ledger (keyed by the ledger's real path); keep it outside the ledger
        directory. The first record of a ledger names its anchor, for people only.
      - C(bin/lockstep ledger verify) reads only C(LOCKSTEP_LEDGER_ANCHOR_DIR) (not C(ansible.cfg)), so set the
        same directory there. Once the directory exists, a ledger without its anchor in it fails verification.
      - An empty value turns anchoring off (such a ledger verifies as C(unanchored) where no anchor directory
        exists).
    type: str
    default: ~/.local/state/lockstep/anchors
    ini:
      - section: lockstep_ledger
        key: anchor_dir
    env:
      - name: LOCKSTEP_LEDGER_ANCHOR_DIR
  key:
    description:
      - Key of a keyed ledger (at least 16 bytes, surrounding whitespace stripped; e.g. C(openssl rand -hex 32)).
        Each record's C(hash) becomes the HMAC-SHA256 of its canonical JSON with this key, and the first record
        carries C(mac=hmac-sha256). C(bin/lockstep ledger verify) needs the same key (C(LOCKSTEP_LEDGER_KEY) or
        C(LOCKSTEP_LEDGER_KEY_FILE)); without it a keyed ledger does not verify, and with it an unkeyed one fails.
      - The extra var C(lockstep_ledger_key), which may be vault-encrypted (C(-e @vault.yml)), wins over this option,
        and this option over O(key_file). The key is treated as a secret (never written, scrubbed everywhere).
      - Prefer O(key_file), the environment or a vaulted extra var to C(ansible.cfg), and keep the key off the
        controller user's reach if the ledger must hold against that user.
      - An unreadable or too short key is a ledger that cannot be created, so the release is refused before any host.
    type: str
    ini:
      - section: lockstep_ledger
        key: key
    env:
      - name: LOCKSTEP_LEDGER_KEY
  key_file:
    description:
      - File holding the key of a keyed ledger (see O(key)), used when no key is given otherwise.
    type: path
    ini:
      - section: lockstep_ledger
        key: key_file
    env:
      - name: LOCKSTEP_LEDGER_KEY_FILE
  junit_file:
    description:
      - Path of a JUnit XML file to write at the end of the run (one test case per host per gate, plus one
        C(lockstep.release) test case per host with its final result). Not written when unset.
      - A relative path is relative to the current working directory.
    type: path
    ini:
      - section: lockstep_ledger
        key: junit_file
    env:
      - name: LOCKSTEP_LEDGER_JUNIT_FILE
  summary:
    description: Print the per-host summary table at the end of the run.
    type: bool
    default: true
    ini:
      - section: lockstep_ledger
        key: summary
    env:
      - name: LOCKSTEP_LEDGER_SUMMARY
  progress:
    description: Print a progress line for every C(lockstep_wave) result.
    type: bool
    default: true
    ini:
      - section: lockstep_ledger
        key: progress
    env:
      - name: LOCKSTEP_LEDGER_PROGRESS
  version_var:
    description: Name of the extra var holding the version being released (recorded in C(release_started)).
    type: str
    default: lockstep_version
    ini:
      - section: lockstep_ledger
        key: version_var
    env:
      - name: LOCKSTEP_LEDGER_VERSION_VAR
  rollback_phase:
    description: Phase (role) whose tasks are recorded as C(rollback_step) records.
    type: str
    default: rollback
    ini:
      - section: lockstep_ledger
        key: rollback_phase
    env:
      - name: LOCKSTEP_LEDGER_ROLLBACK_PHASE
"""

import datetime
import getpass
import os
import socket

from ansible import constants as C
from ansible import context
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.callback import CallbackBase
from ansible.release import __version__ as ansible_version

from ansible_collections.lockstep.release.plugins.module_utils.ledger import (
    DEFAULT_SECRET_PATTERNS,
    FORMAT_VERSION,
    REDACTED,
    anchor_dir,
    format_summary,
    load_key,
    state_version,
)
from ansible_collections.lockstep.release.plugins.plugin_utils.guard import selection_problem
from ansible_collections.lockstep.release.plugins.plugin_utils.ledger_summary import (
    STATUS_KEYS,
    final_hosts,
    reported,
    scrub_custom_stats,
    write_junit,
)
from ansible_collections.lockstep.release.plugins.plugin_utils.ledger_writer import RecordSink, utc_stamp
from ansible_collections.lockstep.release.plugins.plugin_utils.phases import phase_of
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import RunSecrets, _encrypted_plaintext
from ansible_collections.lockstep.release.plugins.plugin_utils.task_result import data_of as _data_of
from ansible_collections.lockstep.release.plugins.plugin_utils.task_result import host_of as _host_of
from ansible_collections.lockstep.release.plugins.plugin_utils.task_result import task_of as _task_of

# The stdout callback that prints the wave lines and the halt's reason itself (plugins/callback/progress.py).
PROGRESS_CALLBACK = "lockstep.release.progress"
NO_LOG_MESSAGE = "output hidden (no_log)"
ARG_SPEC_ACTIONS = frozenset({"validate_argument_spec", "ansible.builtin.validate_argument_spec",
                              "lockstep.release.input"})
KEY_VAR = "lockstep_ledger_key"  # the extra var that can carry the ledger's key (vault-encrypted)


def _stdout_callback():
    """The stdout callback that prints this run: the configured one, or under ansible-runner (and AWX) the one its
    ``awx_display`` is built on, which runner takes from ``ANSIBLE_STDOUT_CALLBACK`` before it overrides that."""
    name = str(getattr(C, "DEFAULT_STDOUT_CALLBACK", None) or "default")
    if name.rsplit(".", 1)[-1] == "awx_display":
        name = os.environ.get("ORIGINAL_STDOUT_CALLBACK") or "default"
    return name


class CallbackModule(CallbackBase):
    """Release ledger, summary and JUnit report of lockstep."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "lockstep.release.ledger"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None, options=None):
        super().__init__(display=display, options=options)
        self._sink = None  # the writer part (plugin_utils/ledger_writer.py), made with the options
        self._secrets = RunSecrets(DEFAULT_SECRET_PATTERNS)  # the secrets part (plugin_utils/secrets.py)
        self._hostvars = None  # the run's hostvars (public: a play's variables), read when a no_log value is set
        self._playbook = None
        self._play_name = None
        self._phase = None
        self._task_phase = {}
        self._hosts = {}  # host -> {"before", "after", "phase", "result"}
        self._gates = []  # gate records, for JUnit
        self._halted_by = None
        self._refused_input = False
        self._failures = 0
        self._unreachable = 0
        self._reported = {}  # last set_stats data seen in results
        self._version = None
        self._finished = False
        self._audit = None  # the last lockstep_audit (verify.yml, halt.yml, resume.yml): its table replaces the summary

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._directory = self.get_option("directory")
        self._junit_file = self.get_option("junit_file")
        self._show_summary = self.get_option("summary")
        self._show_progress = self.get_option("progress")
        self._version_var = self.get_option("version_var")
        self._rollback_phase = self.get_option("rollback_phase")
        self._secrets = RunSecrets(self.get_option("secret_patterns") or [])
        self._sink = RecordSink(self._display, anchor_dir(self.get_option("anchor_dir") or ""), self._clean)
        self._set_key(self.get_option("key"), self.get_option("key_file"))

    def _set_key(self, key, key_file=None):
        """Load the ledger's key (``self._key``, bytes or None); a key that cannot be used is kept in
        ``self._key_error`` and refuses the release when the ledger is created."""
        self._key, self._key_error = None, None
        try:
            self._key = load_key(key, key_file)
        except ValueError as ex:
            self._key_error = str(ex)
        if self._key is not None:
            self._secrets.add(self._key.decode("utf-8", "replace"))

    def _clean(self, value):
        return self._secrets.clean(value)

    def _record(self, event, **fields):
        if self._sink is None or self._sink.writer is None:
            return None
        self._secrets.collect_no_log(self._hostvars)
        rec = {"event": event, "ts": utc_stamp()}
        rec.update(self._clean(fields))
        return self._sink.append(rec)

    # --- helpers -----------------------------------------------------------------------------------------------

    def _host_entry(self, host):
        return self._hosts.setdefault(host, {"before": None, "after": None, "phase": None, "result": None})

    def _phase_of(self, task):
        # The rollback's waves, which run the rollout's wave task file backwards, are the rollback phase.
        return phase_of(task, self._play_name)

    def _result_phase(self, result):
        return self._task_phase.get(_task_of(result)._uuid, self._phase_of(_task_of(result)))

    def _progress_prints(self):
        """Whether lockstep.release.progress prints this run's wave lines and the halt's reason (not at -v: there it
        is Ansible's default output, and this callback prints what it prints beside that one)."""
        return _stdout_callback() == PROGRESS_CALLBACK and self._display.verbosity < 1

    @staticmethod
    def _no_log(result):
        return bool(getattr(_task_of(result), "no_log", False) or _data_of(result).get("_ansible_no_log")
                    or "censored" in _data_of(result))

    def _message(self, result):
        if self._no_log(result):
            return NO_LOG_MESSAGE
        res = _data_of(result)
        for key in ("msg", "stderr", "reason"):
            if res.get(key):
                return to_text(res[key])
        if "rc" in res:
            return "rc={}".format(res["rc"])
        return "failed"

    def _status(self):
        """(status, source): the release playbook's ``lockstep_status`` when it reported one, else derived."""
        reported = self._reported.get("lockstep_status")
        if reported:
            return reported, "playbook"
        if self._sink is not None and self._sink.broken:
            return "ledger_failed", "ledger"
        if self._refused_input:
            return "refused", "ledger"
        if self._failures or self._unreachable:
            return "failed", "ledger"
        return "succeeded", "ledger"

    # --- playbook events -----------------------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        refused = selection_problem()
        if refused and self._halted_by is None:
            # lockstep's actions refuse to touch a host in such a run; the record says why, whatever else runs.
            self._refused_input = True
            self._halted_by = {"gate": "input", "host": "controller", "message": refused}
            # roles/finish fails the run on it: a task selection may skip every task that would have.
            os.environ["LOCKSTEP_SELECTION_REFUSED"] = refused
        elif not refused:
            os.environ.pop("LOCKSTEP_SELECTION_REFUSED", None)  # a run before it in the same process
        if self._sink.writer is not None:
            # a further playbook of the same ansible-playbook run: same release, same ledger
            self._finished = False
            self._record("playbook_started", playbook=playbook._file_name)
            return
        self._playbook = playbook._file_name
        extra_vars = {}
        try:
            plays = playbook.get_plays()
            if plays:  # every play of a run shares its variable manager, and its extra vars
                extra_vars = dict(plays[0].get_variable_manager().extra_vars)
        except Exception as ex:
            # Said, never silent: an extra var under a secret name would not be known as one.
            self._display.warning(f"lockstep ledger: could not read the run's extra vars: {ex}")
            extra_vars = {}
        redacted = self._secrets.extra_vars(extra_vars)
        if extra_vars.get(KEY_VAR) not in (None, ""):
            value = extra_vars[KEY_VAR]
            plaintext = _encrypted_plaintext(value)
            self._set_key(to_text(value) if plaintext is None else plaintext)
            if plaintext == "":
                self._key_error = f"cannot decrypt the extra var {KEY_VAR}"
            redacted[KEY_VAR] = REDACTED
        self._version = extra_vars.get(self._version_var)
        stem = os.path.splitext(os.path.basename(self._playbook))[0]
        now = datetime.datetime.now(datetime.UTC)
        name = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{stem}-{os.getpid()}.jsonl"
        self._sink.open(os.path.join(self._directory, name), self._key, self._key_error)
        anchor = {"anchor": self._sink.anchor} if self._sink.anchor else {}
        args = context.CLIARGS
        inventory = args.get("inventory") or []
        self._record(
            "release_started",
            format=FORMAT_VERSION,
            release=os.path.splitext(name)[0],
            user=getpass.getuser(),
            awx_user=extra_vars.get("awx_user_name") or extra_vars.get("tower_user_name"),
            awx_job_id=extra_vars.get("awx_job_id") or extra_vars.get("tower_job_id"),
            controller=socket.gethostname(),
            cwd=os.getcwd(),
            pid=os.getpid(),
            playbook=self._playbook,
            version=self._version,
            inventory=[to_text(i) for i in inventory] if isinstance(inventory, (list, tuple)) else inventory,
            limit=args.get("subset"),
            tags=list(args.get("tags") or []),
            check_mode=bool(args.get("check")),
            extra_vars=redacted,
            ansible_version=ansible_version,
            **anchor,
        )
        # Workers are forked after this point: the release's plan checks this very run's ledger is being written.
        self._sink.announce()

    def v2_playbook_on_play_start(self, play):
        # The play's own variables, as its tasks see them before any host: its batch, the run's hostvars.
        try:
            play_vars = play.get_variable_manager().get_vars(play=play)
        except Exception as ex:
            # Said, never silent: this play's hosts' secrets are not collected.
            self._display.warning(f"lockstep ledger: could not read the play's variables: {ex}")
            play_vars = {}
        self._hostvars = play_vars.get("hostvars", self._hostvars)
        hosts = [to_text(h) for h in play_vars.get("ansible_play_batch") or []]
        try:
            self._secrets.play(play, play_vars, self._hostvars, play_vars.get("ansible_play_hosts_all") or hosts)
        except Exception as ex:
            self._display.warning(f"lockstep ledger: could not collect the play's secrets: {ex}")
        self._leave_phase()
        self._play_name = play.get_name()
        self._record("play_started", play=self._play_name, pattern=play.hosts, hosts=hosts)

    def _leave_phase(self):
        if self._phase is not None:
            self._record("phase_leave", phase=self._phase, play=self._play_name)
            self._phase = None

    def _task_start(self, task):
        # Before the task's workers fork: they scrub what they return of every secret met so far (plugin_utils/
        # secrets.py _RUN), a no_log result of the task before among them.
        self._secrets.collect_no_log(self._hostvars)
        self._secrets.task_start(task)
        phase = self._phase_of(task)
        self._task_phase[task._uuid] = phase
        if phase != self._phase:
            self._leave_phase()
            if phase is not None:
                self._phase = phase
                self._record("phase_enter", phase=phase, play=self._play_name)

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_start(task)

    # --- results ---------------------------------------------------------------------------------------------

    def _common(self, result):
        host = _host_of(result).get_name()
        return host, {"host": host, "task": _task_of(result).get_name().strip(), "phase": self._result_phase(result)}

    def _touch(self, host, phase, outcome):
        entry = self._host_entry(host)
        if phase is not None:
            entry["phase"] = phase
        if outcome is not None:
            entry["result"] = outcome

    def v2_runner_on_ok(self, result):
        host, common = self._common(result)
        phase = common["phase"]
        if self._no_log(result):
            self._secrets.note_no_log(host, _task_of(result))
            self._touch(host, phase, None)
            if phase is not None and phase == self._rollback_phase:
                self._record("rollback_step", status="ok", **common)
            return
        self._touch(host, phase, None)
        data = _data_of(result)
        results = [data]
        if isinstance(data.get("results"), list):  # a loop: each item may carry the keys
            results.extend(r for r in data["results"] if isinstance(r, dict))
        for res in results:
            self._on_keys(host, common, res)
        if phase is not None and phase == self._rollback_phase:
            self._record("rollback_step", status="changed" if data.get("changed") else "ok", **common)

    def _on_keys(self, host, common, res):
        if "lockstep_state" in res:
            state = res["lockstep_state"]
            self._record("host_state", state=state, **common)
            version = state_version(state)
            entry = self._host_entry(host)
            if version is not None:
                if entry["before"] is None:
                    entry["before"] = version
                entry["after"] = version
        if isinstance(res.get("lockstep_gate"), dict):
            self._on_gate(host, common, res["lockstep_gate"])
        if isinstance(res.get("lockstep_wave"), dict):
            self._on_wave(common, res["lockstep_wave"])
        if isinstance(res.get("lockstep_audit"), dict):
            fields = dict(common)
            fields["reporter"] = fields.pop("host")
            audit = self._clean(res["lockstep_audit"])
            self._record("audit", **dict({k: v for k, v in audit.items() if k != "table"}, **fields))
            self._audit = audit
        stats = res.get("ansible_stats")
        if isinstance(stats, dict) and isinstance(stats.get("data"), dict):
            data = {k: v for k, v in stats["data"].items() if k in STATUS_KEYS}
            if data:
                self._reported.update(self._clean(data))
                self._record("status_reported", data=data, **common)

    def _on_gate(self, reporter, common, gate):
        fields = dict(common)
        fields.pop("host")
        rec = self._record("gate", reporter=reporter, gate=gate.get("gate"), passed=bool(gate.get("passed")),
                           message=gate.get("message"), hosts=gate.get("hosts") or {}, halted=gate.get("halted") or [],
                           **({"flags": gate["flags"]} if gate.get("flags") else {}), **fields)
        clean = self._clean(gate)
        self._gates.append(clean)
        if not clean.get("passed") and self._halted_by is None:
            halted = clean.get("halted") or []
            first = halted[0] if halted and isinstance(halted[0], dict) else {}
            self._halted_by = {"gate": clean.get("gate"), "host": first.get("host"),
                               "message": first.get("message") or clean.get("message")}
        return rec

    def _on_wave(self, common, wave):
        fields = dict(common)
        fields.pop("host")
        self._record("wave", reporter=common["host"], **dict(self._clean(wave), **fields))
        if self._show_progress and not self._progress_prints():
            wave = self._clean(wave)
            hosts = wave.get("hosts") or []
            if isinstance(hosts, (list, tuple)):
                hosts = ",".join(str(h) for h in hosts)
            self._display.display("lockstep: wave {}/{} [{}] version {}: {}/{} hosts done".format(
                wave.get("index", "?"), wave.get("count", "?"), hosts or "-", wave.get("version") or "-",
                wave.get("done", "?"), wave.get("total", "?")))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        host, common = self._common(result)
        if not ignore_errors:
            self._failures += 1
            self._touch(host, common["phase"], "failed")
            if _task_of(result).action in ARG_SPEC_ACTIONS and self._halted_by is None:
                # Ansible's own check of a role's arguments (or preflight's, lockstep.release.input) stops every host
                # before any task of lockstep ran: bad input, refused like the plan's refusals (nothing was touched).
                self._refused_input = True
                self._halted_by = {"gate": "input", "host": "controller", "message": "refused before touching "
                                   "any host: " + "; ".join(_data_of(result).get("argument_errors") or [
                                       self._message(result)])}
        else:
            self._touch(host, common["phase"], None)
        if self._no_log(result):
            self._secrets.note_no_log(host, _task_of(result))
        message = self._message(result)
        self._record("host_failed", message=message, ignored=bool(ignore_errors), **common)
        if not self._no_log(result):  # gates report a halt in a failed result too (fail_json(lockstep_gate=...))
            self._on_keys(host, common, _data_of(result))
        if common["phase"] is not None and common["phase"] == self._rollback_phase:
            self._record("rollback_step", status="failed", message=message, **common)

    def v2_runner_on_unreachable(self, result):
        host, common = self._common(result)
        self._unreachable += 1
        self._touch(host, common["phase"], "unreachable")
        self._record("host_unreachable", message=self._message(result), **common)

    def v2_runner_on_skipped(self, result):
        host, common = self._common(result)
        if common["phase"] is not None and common["phase"] == self._rollback_phase:
            self._record("rollback_step", status="skipped", **common)

    # --- end of run --------------------------------------------------------------------------------------------

    def v2_playbook_on_stats(self, stats):
        if self._finished:
            return
        self._finished = True
        self._secrets.collect_no_log(self._hostvars)
        self._reported.update(self._clean(reported(stats)))
        self._leave_phase()
        status, source = self._status()
        hosts = final_hosts(self._hosts, self._reported.get("lockstep_hosts"), stats)
        halted_by = self._reported.get("lockstep_halted_by") if "lockstep_halted_by" in self._reported \
            and not os.environ.get("LOCKSTEP_SELECTION_REFUSED") else self._halted_by
        befores = sorted({str(h["before"]) for h in hosts.values() if h.get("before") is not None})
        afters = sorted({str(h["after"]) for h in hosts.values() if h.get("after") is not None})
        # What the playbook reported wins, None included (a first release: nothing before, as set_stats says).
        version_before = self._reported["lockstep_version_before"] if "lockstep_version_before" in self._reported \
            else (", ".join(befores) or None)
        version_after = self._reported["lockstep_version_after"] if "lockstep_version_after" in self._reported \
            else (", ".join(afters) or None)
        consistent = True
        if status == "succeeded" and (sum((getattr(stats, "failures", {}) or {}).values())
                                      or sum((getattr(stats, "dark", {}) or {}).values())):
            consistent = False
            self._display.warning("lockstep ledger: the playbook reported status 'succeeded' but hosts failed or "
                                  "were unreachable")
        summary = {
            "status": status,
            "status_source": source,
            "status_consistent": consistent,
            "reported_status": self._reported.get("lockstep_status"),
            "version_before": version_before,
            "version_after": version_after,
            "halted_by": halted_by,
            "found_dead": self._reported.get("lockstep_found_dead") or [],
            "rehearsal": self._reported.get("lockstep_rehearsal"),
            "hosts": hosts,
            "failures": self._failures,
            "unreachable": self._unreachable,
            "ledger_broken": self._sink.broken,
        }
        self._record("release_finished", **summary)
        # For the callbacks after this one: the stdout callback has shown the stats already (what lockstep's finish
        # role publishes, lockstep_ledger among it, left its action scrubbed at the source).
        try:
            scrub_custom_stats(stats, self._secrets.values)
        except Exception as ex:
            self._display.warning(f"lockstep ledger: could not scrub secrets from the run's custom stats: {ex}")
        summary = self._clean(summary)
        if self._sink.writer is not None:
            summary["ledger"] = self._sink.path
        if self._show_summary and self._audit is not None:
            # An audit is not a release: its own table is the one people read.
            self._display.display(self._clean(self._audit.get("table") or ""))
            self._display.display("ledger: {}".format(summary.get("ledger")))
        elif self._show_summary:
            shown = summary
            if self._progress_prints() and isinstance(summary.get("halted_by"), dict):
                # The stdout callback printed the reason when the release halted: said once, not again here.
                shown = dict(summary, halted_by={k: v for k, v in summary["halted_by"].items() if k != "message"})
            self._display.display(format_summary(shown))
        if self._junit_file:
            try:
                # secrets collected after a gate was seen are scrubbed too
                write_junit(self._junit_file, self._clean(self._gates), summary, self._secrets.values)
            except Exception as ex:
                warn = getattr(self._display, "error_as_warning", None)  # ansible-core 2.19; a warning before
                if warn is not None:
                    warn(f"lockstep ledger: cannot write JUnit file {self._junit_file}", exception=ex)
                else:
                    self._display.warning(f"lockstep ledger: cannot write JUnit file {self._junit_file}: {ex}")

# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: progress
type: stdout
short_description: A lockstep release as phases, waves, gates and one verdict
description:
  - The screen output of lockstep's playbooks. For every play whose name starts with O(play_prefix) it prints, at
    verbosity 0, one line per phase (its verdict, its seconds and the gates that judged it), one line per wave (its
    hosts, drained / switched / proven / back, its gate's verdict and seconds), the halt with its reason once, the
    rollback's waves the same way, and a one-line recap. The release's final failure message (the verdict) is
    printed without repeating the halt's reason. The summary table is the ledger callback's
    (C(lockstep.release.ledger)), which leaves its own wave lines and the reason in its summary to this callback.
  - No error is hidden. A failed or unreachable task that is not a gate's halt is printed with its task, its hosts
    and its message (one line for every host that failed with the same message), as are the messages of C(debug)
    tasks and Ansible's warnings.
  - A step still running after O(interval) seconds gets a line every O(interval) seconds, with the seconds left when
    they are known (the watch window, C(lockstep.release.watch)) or can be estimated from the hosts done so far
    (staging a large artifact, say).
  - Any other play (a team's own around lockstep's) is shown as Ansible's default callback shows it, and with C(-v)
    or more the whole run is exactly the default callback's output.
  - Under ansible-runner (and so AWX) the job's stdout callback is runner's C(awx_display), which takes the place of
    a C(stdout_callback) set in C(ansible.cfg); it builds itself on the callback named by the environment variable
    C(ANSIBLE_STDOUT_CALLBACK) given to runner (runner's C(env/envvars), AWX's Extra Environment Variables). Set it
    to C(lockstep.release.progress) there and the same lines are the job's stdout.
version_added: "0.3.0"
extends_documentation_fragment:
  - default_callback
  - result_format_callback
requirements:
  - set as the stdout callback, C(stdout_callback = lockstep.release.progress) in C(ansible.cfg) or
    C(ANSIBLE_STDOUT_CALLBACK=lockstep.release.progress)
options:
  interval:
    description:
      - Seconds a step may run before it gets a progress line, and between two of its progress lines. C(0) prints
        none.
    type: float
    default: 10
    ini:
      - section: lockstep_progress
        key: interval
    env:
      - name: LOCKSTEP_PROGRESS_INTERVAL
  play_prefix:
    description:
      - Plays whose name starts with this are lockstep's and printed as phases and waves; every other play as the
        default callback prints it.
    type: str
    default: "Lockstep |"
    ini:
      - section: lockstep_progress
        key: play_prefix
    env:
      - name: LOCKSTEP_PROGRESS_PLAY_PREFIX
"""

import re
import threading
import time

from ansible import constants as C
from ansible.module_utils.common.text.converters import to_text
from ansible.playbook.task_include import TaskInclude
from ansible.plugins.callback.default import CallbackModule as DefaultCallbackModule

from ansible_collections.lockstep.release.plugins.module_utils.release_record import RECORD_FACT
from ansible_collections.lockstep.release.plugins.plugin_utils.phases import COLLECTION_PREFIX, SHARED, phase_of
from ansible_collections.lockstep.release.plugins.plugin_utils.task_result import data_of as _data_of
from ansible_collections.lockstep.release.plugins.plugin_utils.task_result import host_of as _host_of
from ansible_collections.lockstep.release.plugins.plugin_utils.task_result import task_of as _task_of

LINE = "lockstep: "
# A reason shorter than this is too plain ("failed") to be recognised inside another message.
MIN_REASON = 16
# The watch's task names its window ("..., seconds - 30"): its arguments are still templates when the task starts,
# while Ansible templates the task's name for the callbacks.
NAMED_SECONDS = re.compile(r"seconds\W{0,3}(\d+(?:\.\d+)?)\s*$")
LB_WORDS = {"drained": "drained", "ready": "back", "maint": "MAINT"}


def _norm(text):
    return " ".join(to_text(text).split())


def _is(action, name):
    return str(action or "") in (COLLECTION_PREFIX + name, name)


def _builtin(action, name):
    return str(action or "") in (name, "ansible.builtin." + name, "ansible.legacy." + name)


def _hosts(names):
    return ",".join(str(n) for n in names) or "-"


def _natural(name):
    """h2 before h10: hosts in the order people number them."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(name))]


def _short_name(name):
    """A task's name without its role's prefix ("Rollout | ")."""
    name = to_text(name or "").strip()
    return name.split("| ", 1)[1] if "| " in name else name


def _args(res):
    invocation = res.get("invocation")
    args = invocation.get("module_args") if isinstance(invocation, dict) else None
    return args if isinstance(args, dict) else {}


class _Phase:
    """What a phase did, for its one line."""

    def __init__(self, name, started, roleless=False):
        self.name = name
        self.started = started
        self.roleless = roleless  # tasks of a play outside lockstep's roles: a line only if it has something to say
        self.gates = []  # (gate, passed, seconds, hosts)
        self.waves = []  # "forward" / "back", one per wave line
        self.notes = []
        self.switched = []
        self.failed = False
        self.halted = None  # "HALTED" or "REFUSED"
        self.plan = None


class _Wave:
    """The steps of one batch of a serial play (a wave), in the order they happened. ``label`` is set once the
    wave's line is printed: later steps of the batch (after its gate) get a line of their own."""

    def __init__(self, started, label=None, hosts=()):
        self.started = started
        self.label = label
        self.steps = []  # {"kind", "uuid", "versions", "tried", "ok", "unchanged", "failed", "text"}
        self.hosts = list(hosts)

    def step(self, kind, uuid):
        for s in self.steps:
            if s["uuid"] == uuid and s["kind"] == kind:
                return s
        s = {"kind": kind, "uuid": uuid, "versions": [], "tried": [], "ok": [], "unchanged": [], "failed": [],
             "text": None}
        self.steps.append(s)
        return s

    def saw(self, *hosts):
        for h in hosts:
            if h not in self.hosts:
                self.hosts.append(h)


class _Step:
    """The task that runs now: its progress lines."""

    def __init__(self, task, name, phase, started):
        self.uuid = getattr(task, "_uuid", id(task))
        self.action = str(getattr(task, "action", "") or "")
        self.name = name
        self.phase = phase
        self.started = started
        self.last_line = started
        self.hosts = []
        self.done = {}  # host -> seconds it took
        self.staged = {"new": [], "there": [], "version": None}
        self.duration = None
        if _is(self.action, "watch"):
            seconds = (getattr(task, "args", None) or {}).get("seconds")
            if isinstance(seconds, (int, float)):
                self.duration = float(seconds)
            else:
                match = NAMED_SECONDS.search(name)
                self.duration = float(match.group(1)) if match else None


class CallbackModule(DefaultCallbackModule):
    """lockstep's releases as phases, waves, gates and one verdict; every other play as the default callback."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "lockstep.release.progress"

    def __init__(self):
        super().__init__()
        # The progress thread reads the running step while the callbacks change it.
        self._lock = threading.Lock()
        self._ticker = None
        self._stop_ticking = threading.Event()
        self._mine = False  # the current play is lockstep's and this is verbosity 0
        self._other_plays = False
        self._serial = False
        self._play_label = ""
        self._play_name = ""
        self._phase = None
        self._wave = None
        self._step = None
        self._pending = []  # what failed or was said, printed at the next flush (a halt folds its echoes in)
        self._said = []  # normalized halt reasons and gate messages already printed
        self._gate_msgs = {}  # normalized gate message -> gate name
        self._halted_gates = set()
        self._itemized = set()
        self._halt = None
        self._plan = None
        self._last_wave = None  # (index, count) of the last wave line

    # --- options and modes ---------------------------------------------------------------------------------------

    def _option(self, name, default):
        # An older ansible-runner's awx_display, built on this class, may not load this callback's own options.
        try:
            value = self.get_option(name)
        except KeyError:
            return default
        return default if value is None else value

    def _quiet(self):
        return self._display.verbosity < 1

    def _interval(self):
        try:
            return max(0.0, float(self._option("interval", 10)))
        except (TypeError, ValueError):
            return 10.0

    def _say(self, text, color=None, stderr=False):
        self._display.display(LINE + text, color=color, stderr=stderr)

    def _failed_stderr(self):
        return bool(self._option("display_failed_stderr", False))

    # --- playbook and plays --------------------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        super().v2_playbook_on_start(playbook)
        if self._quiet() and self._interval() > 0 and self._ticker is None:
            self._stop_ticking.clear()
            self._ticker = threading.Thread(target=self._tick, name="lockstep-progress", daemon=True)
            self._ticker.start()

    def v2_playbook_on_play_start(self, play):
        if not self._quiet():
            return super().v2_playbook_on_play_start(play)
        self._end_step()
        self._end_batch()
        name = to_text(play.get_name()).strip()
        prefix = to_text(self._option("play_prefix", "Lockstep |"))
        self._mine = bool(prefix) and name.startswith(prefix)
        if not self._mine:
            self._close_phase()
            self._flush()
            self._other_plays = True
            return super().v2_playbook_on_play_start(play)
        self._play = play  # the default callback's state, should a later play be another's
        self._play_label = name[len(prefix):].strip()
        self._play_name = name
        self._serial = bool(getattr(play, "serial", None))
        self._wave = _Wave(time.monotonic()) if self._serial else None

    def v2_playbook_on_task_start(self, task, is_conditional):
        if not self._mine:
            return super().v2_playbook_on_task_start(task, is_conditional)
        self._start_task(task)

    def v2_playbook_on_handler_task_start(self, task):
        if not self._mine:
            return super().v2_playbook_on_handler_task_start(task)
        self._start_task(task)

    def _start_task(self, task):
        now = time.monotonic()
        self._end_step()
        phase = self._phase_of(task)
        if phase is not None and (self._phase is None or phase != self._phase.name):
            self._close_phase()
            self._phase = _Phase(phase, now)
        elif self._phase is None:
            # Tasks outside lockstep's roles (rollback.yml's choice of the release): the play names their phase.
            self._phase = _Phase(re.split(r"[:,\s]", self._play_label, maxsplit=1)[0] or "play", now, roleless=True)
        with self._lock:
            self._step = _Step(task, _short_name(task.name or task.get_name()), self._phase.name, now)

    def _phase_of(self, task):
        phase = phase_of(task, self._play_name)
        # The shared task files (halt, load balancer) belong to the phase that uses them.
        return None if phase == SHARED else phase

    def v2_playbook_on_include(self, included_file):
        if not self._mine:
            super().v2_playbook_on_include(included_file)

    def v2_playbook_on_no_hosts_matched(self):
        if not self._mine:
            super().v2_playbook_on_no_hosts_matched()

    def v2_playbook_on_no_hosts_remaining(self):
        if not self._mine:
            super().v2_playbook_on_no_hosts_remaining()

    def v2_runner_on_start(self, host, task):
        if not self._mine:
            return super().v2_runner_on_start(host, task)
        with self._lock:
            if self._step is not None and self._step.uuid == getattr(task, "_uuid", None):
                name = host.get_name()
                if name not in self._step.hosts:
                    self._step.hosts.append(name)

    def v2_runner_retry(self, result):
        if not self._mine:
            super().v2_runner_retry(result)

    # --- results -------------------------------------------------------------------------------------------------

    def v2_runner_on_ok(self, result):
        if not self._mine:
            return super().v2_runner_on_ok(result)
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not self._mine:
            return super().v2_runner_on_failed(result, ignore_errors)
        try:
            self._result(result, "failed", ignore_errors)
        except Exception as ex:  # a fault of this callback never hides a failure: Ansible's own words for it
            self._display.warning("lockstep.release.progress: %s" % ex)
            super().v2_runner_on_failed(result, ignore_errors)

    def v2_runner_on_unreachable(self, result):
        if not self._mine:
            return super().v2_runner_on_unreachable(result)
        try:
            self._result(result, "unreachable")
        except Exception as ex:
            self._display.warning("lockstep.release.progress: %s" % ex)
            super().v2_runner_on_unreachable(result)

    def v2_runner_on_skipped(self, result):
        if not self._mine:
            return super().v2_runner_on_skipped(result)
        self._done(_host_of(result).get_name(), _task_of(result))

    def v2_runner_item_on_ok(self, result):
        if not self._mine:
            super().v2_runner_item_on_ok(result)

    def v2_runner_item_on_skipped(self, result):
        if not self._mine:
            super().v2_runner_item_on_skipped(result)

    def v2_runner_item_on_failed(self, result):
        if not self._mine:
            return super().v2_runner_item_on_failed(result)
        try:
            host, task, data = _host_of(result).get_name(), _task_of(result), _data_of(result)
            label = self._get_item_label(data)
            self._pend("failed", task, host, "(item=%s) %s" % (label, self._message(data)) if label is not None
                       else self._message(data))
            self._itemized.add((host, getattr(task, "_uuid", None)))
        except Exception as ex:
            self._display.warning("lockstep.release.progress: %s" % ex)
            super().v2_runner_item_on_failed(result)

    def _done(self, host, task):
        with self._lock:
            step = self._step
            if step is not None and step.uuid == getattr(task, "_uuid", None) and host not in step.done:
                step.done[host] = time.monotonic() - step.started

    def _result(self, result, status, ignored=False):
        host, task, data = _host_of(result).get_name(), _task_of(result), _data_of(result)
        self._done(host, task)
        self._handle_warnings(data)
        if isinstance(task, TaskInclude):
            return
        failed = status != "ok"
        items = [data] + [r for r in data.get("results") or [] if isinstance(r, dict)] \
            if isinstance(data.get("results"), list) else [data]
        for res in items:
            self._on_data(host, task, res, failed and (res is data or bool(res.get("failed"))))
        if failed:
            self._on_failure(host, task, data, status, ignored)
        elif _builtin(task.action, "debug"):
            self._on_debug(host, task, data)

    def _on_data(self, host, task, res, failed):
        if isinstance(res.get("lockstep_plan"), dict):
            self._plan = res["lockstep_plan"]
            if self._phase is not None:
                self._phase.plan = self._plan
        if isinstance(res.get("lockstep_gate"), dict):
            self._on_gate(host, task, res["lockstep_gate"], res)
        facts = res.get("ansible_facts")
        record = facts.get(RECORD_FACT) if isinstance(facts, dict) else None
        if isinstance(record, dict) and isinstance(record.get("halt"), dict):
            self._on_halt(record["halt"])
        if _is(task.action, "deploy"):
            self._on_deploy(host, task, res, failed)
        elif _is(task.action, "haproxy"):
            self._on_lb(host, task, res, failed)

    def _on_failure(self, host, task, data, status, ignored):
        if isinstance(data.get("lockstep_gate"), dict):
            return  # the gate's own message is pending already
        if (host, getattr(task, "_uuid", None)) in self._itemized:
            return  # its items said why
        message = self._message(data)
        kind = "unreachable" if status == "unreachable" else "failed"
        if _builtin(task.action, "fail") and message.startswith("lockstep "):
            kind = "verdict"  # lockstep's own exit, which names status, gate and host itself
        self._pend(kind + (" (ignored)" if ignored else ""), task, host, message)
        # lockstep's own fail tasks exit on a cause recorded elsewhere (a gate, the halt): they judge nothing.
        if not ignored and self._phase is not None and not _builtin(task.action, "fail"):
            self._phase.failed = True

    def _on_debug(self, host, task, data):
        if "msg" in data:
            text = to_text(data["msg"]) if not isinstance(data["msg"], (list, dict)) else self._dump_results(
                {"msg": data["msg"]}, indent=None)
        else:
            shown = {k: v for k, v in data.items() if not k.startswith("_") and k not in ("changed", "failed")}
            if not shown:
                return
            text = self._dump_results(shown, indent=None)
        self._pend("said", task, host, text)

    @staticmethod
    def _message(data):
        if data.get("censored"):
            return "output hidden (no_log)"
        text = None
        for key in ("msg", "reason", "stderr"):
            if data.get(key):
                text = to_text(data[key])
                break
        if text is None:
            text = "rc=%s" % data["rc"] if "rc" in data else "failed"
        # A command says why on stderr, or on stdout when stderr is empty: the generic message alone says nothing.
        detail = to_text(data.get("stderr") or "").strip() or (
            to_text(data.get("stdout") or "").strip() if "rc" in data else "")
        if detail and detail not in text:
            text += "%s: %s" % (" (rc=%s)" % data["rc"] if "rc" in data else "", detail)
        if data.get("module_stderr") and text.startswith("MODULE FAILURE"):
            lines = [line for line in to_text(data["module_stderr"]).splitlines() if line.strip()]
            if lines:
                text += ": " + lines[-1].strip()
        return text

    # --- lockstep's results: gates, waves, the halt --------------------------------------------------------------

    def _on_gate(self, host, task, gate, res):
        now = time.monotonic()
        name = to_text(gate.get("gate") or "gate")
        passed = bool(gate.get("passed"))
        hosts = gate.get("hosts") if isinstance(gate.get("hosts"), dict) else {}
        msg = to_text(gate.get("message") or res.get("msg") or "")
        step = self._step
        seconds = now - step.started if step is not None else 0.0
        if msg:
            self._gate_msgs[_norm(msg)] = name
        wave = gate.get("wave")
        if isinstance(wave, dict):
            self._wave_line(name, passed, seconds, wave, now)
        elif self._wave is not None and self._wave.label:
            text = "gate %s %s in %.1f s" % (name, "passed" if passed else "FAILED", seconds)
            self._wave.step("gate", getattr(task, "_uuid", None))["text"] = text
        elif self._phase is not None:
            self._phase.gates.append((name, passed, seconds, len(hosts)))
        if not passed:
            if self._phase is not None:
                self._phase.failed = True
            self._pend("gate", task, host, msg or "gate %s did not pass" % name, gate=name)

    def _wave_line(self, gate, passed, seconds, wave, now):
        hosts = [to_text(h) for h in wave.get("hosts") or []]
        acc = self._wave if self._wave is not None else _Wave(now)
        label = "wave %s/%s [%s]" % (wave.get("index", "?"), wave.get("count", "?"), _hosts(hosts))
        text = "%s version %s: " % (label, wave.get("version") or "-")
        text += "%s/%s hosts done" % (wave.get("done", "?"), wave.get("total", "?")) if passed else "HALTED"
        steps = self._render_steps(acc, hosts)
        if steps:
            text += " - " + steps
        text += "; gate %s %s in %.1f s (wave %.1f s)" % (gate, "passed" if passed else "HALTED", seconds,
                                                          now - acc.started)
        self._say(text, color=None if passed else C.COLOR_ERROR)
        if self._phase is not None:
            self._phase.waves.append("back" if str(wave.get("version") or "").startswith("back") else "forward")
        self._last_wave = (wave.get("index"), wave.get("count"))
        self._wave = _Wave(now, label=label, hosts=hosts)

    def _render_steps(self, acc, hosts):
        """``drained, switched, proven, back`` for a wave whose every host did each; a step done on some of its
        hosts names them, one done on none says so."""
        every = set(hosts or acc.hosts)

        def word(text, names):
            if set(names) == every:
                return text
            return "%s %s" % (text, _hosts(sorted(names, key=_natural))) if names else "%s none" % text

        parts = []
        for s in acc.steps:
            if s["kind"] in LB_WORDS:
                parts.append(word(LB_WORDS[s["kind"]], sorted(s["ok"], key=_natural)))
            elif s["kind"] == "switch":
                # After its gate (the rehearsal on the canary) a wave switches back and forth: say to what.
                to = " to %s" % "/".join(s["versions"]) if acc.label and s["versions"] else ""
                if s["ok"] or not (s["unchanged"] or s["failed"]):
                    parts.append(word("switched" + to, s["ok"]))
                if s["unchanged"]:
                    parts.append(word("unchanged", s["unchanged"]))
                if s["ok"] or s["unchanged"]:
                    parts.append(word("proven", s["ok"] + s["unchanged"]))
                if s["failed"]:
                    parts.append("FAILED %s" % _hosts(sorted(s["failed"], key=_natural)))
            elif s["text"]:
                parts.append(s["text"])
        return ", ".join(parts)

    def _end_wave(self):
        """The line of a batch whose wave line was never printed (it halted before its gate), or of the steps
        that came after its gate (the rollback's rehearsal on the canary, a wave's rescue)."""
        acc = self._wave
        if acc is None or not acc.steps:
            return
        now = time.monotonic()
        if acc.label:
            text = "%s after its gate: %s" % (acc.label, self._render_steps(acc, acc.hosts))
            label = acc.label
        else:
            index, count = self._plan_index(acc.hosts)
            switches = [s for s in acc.steps if s["kind"] == "switch"]
            versions = [v for s in switches for v in s["versions"]] or [v for s in switches for v in s["tried"]]
            label = "wave %s/%s [%s]" % (index, count, _hosts(sorted(acc.hosts, key=_natural)))
            text = "%s version %s: not finished - %s (%.1f s)" % (
                label, versions[-1] if versions else "-", self._render_steps(acc, acc.hosts), now - acc.started)
        failed = any(s["failed"] for s in acc.steps)
        self._say(text, color=C.COLOR_ERROR if failed else None)
        self._wave = _Wave(now, label=label, hosts=acc.hosts)

    def _plan_index(self, hosts):
        waves = (self._plan or {}).get("waves") or []
        for i, wave in enumerate(waves, 1):
            if hosts and hosts[0] in wave:
                return i, len(waves)
        if self._last_wave is not None:  # no plan seen: the wave after the last one printed
            index, count = self._last_wave
            try:
                return int(index) + 1, count
            except (TypeError, ValueError):
                pass
        return "?", len(waves) or "?"

    def _end_batch(self):
        self._end_wave()
        self._wave = None

    def _on_deploy(self, host, task, res, failed):
        args = _args(res)
        # A failure before the module ran (a host unreachable) has no invocation: the task's own literal state.
        state = args.get("state") or (getattr(task, "args", None) or {}).get("state")
        version = args.get("version")
        uuid = getattr(task, "_uuid", None)
        if state == "staged":
            step = self._step
            if step is not None and step.uuid == uuid and not failed:
                step.staged["version"] = version or (self._plan or {}).get("version")
                step.staged["new" if res.get("changed") else "there"].append(host)
            return
        if state == "pruned":
            if res.get("changed") and self._phase is not None and "old releases pruned" not in self._phase.notes:
                self._phase.notes.append("old releases pruned")
            return
        if self._wave is None:
            if self._phase is not None and not failed:
                self._phase.notes.append("%s %s" % ("switched" if res.get("changed") else "unchanged", host))
            return
        self._wave.saw(host)
        s = self._wave.step("switch", uuid)
        s["failed" if failed else ("ok" if res.get("changed") else "unchanged")].append(host)
        versions = s["tried"] if failed else s["versions"]  # a wave is named by what its hosts run, not what failed
        if version and version not in versions:
            versions.append(version)
        if res.get("changed") and not failed and self._phase is not None and host not in self._phase.switched:
            self._phase.switched.append(host)

    def _on_lb(self, host, task, res, failed):
        args = _args(res)
        state = args.get("state")
        error = res.get("lockstep_lb_error") or (self._message(res) if failed else None)
        servers = [to_text(s) for s in args.get("servers") or []]
        if error:
            # Forward, a task of the wave halts on it (the halt then says it); back, it is the rollback's note.
            self._pend("failed", task, host, to_text(error))
            return
        if state not in LB_WORDS or (not servers and self._wave is None):
            return
        if servers == ["*"]:
            servers = sorted(to_text(s) for s in (res.get("servers") or {}))
        if self._wave is not None:
            step = self._wave.step(state, getattr(task, "_uuid", None))
            step["ok"].extend(s for s in servers if s not in step["ok"])
        elif self._phase is not None:
            self._phase.notes.append("%s %s" % (_hosts(sorted(servers, key=_natural)), {
                "drained": "drained", "ready": "put back in the load balancer", "maint": "in MAINT"}[state]))

    def _on_halt(self, halt):
        if self._halt is not None:
            return
        self._halt = halt
        phase = to_text(halt.get("phase") or (self._phase.name if self._phase is not None else ""))
        word = "REFUSED" if phase == "preflight" else "HALTED"
        if self._phase is not None:
            self._phase.halted = word
        self._end_wave()
        message = to_text(halt.get("message") or "")
        if _norm(message):
            self._said.append(_norm(message))
        self._halted_gates.add(to_text(halt.get("gate") or ""))
        self._flush()
        text = "%s by gate %s on %s" % (word, to_text(halt.get("gate") or "?"), to_text(halt.get("host") or "?"))
        if phase and phase != "preflight":
            text += " in %s" % phase
        self._say(text + (": " + message if message else ""), color=C.COLOR_ERROR)

    # --- what is said once -------------------------------------------------------------------------------------

    def _pend(self, kind, task, host, msg, gate=None):
        key = _norm(msg)
        gate = gate or self._gate_msgs.get(key)  # a fail task that repeats a gate's message is that gate's
        for item in self._pending:
            if item["key"] == key:
                if host not in item["hosts"]:
                    item["hosts"].append(host)
                item["kinds"].add(kind)
                item["gate"] = item["gate"] or gate
                return
        self._pending.append({"key": key, "msg": to_text(msg), "kinds": {kind}, "hosts": [host], "gate": gate,
                              "task": _short_name(self._step.name if self._step is not None and self._step.uuid ==
                                                  getattr(task, "_uuid", None) else task.get_name())})

    def _flush(self, verdicts=True):
        """Print what is pending (the verdict last, or later when ``verdicts`` is false)."""
        pending = [i for i in self._pending if "verdict" not in i["kinds"]]
        pending += [i for i in self._pending if "verdict" in i["kinds"]] if verdicts else []
        self._pending = [i for i in self._pending if i not in pending]
        for item in pending:
            text = self._unsaid(item)
            if text is None:
                continue
            if item["gate"]:
                self._said.append(item["key"])
                self._say(text, color=C.COLOR_ERROR)
            elif item["kinds"] == {"said"}:
                self._say(text)
            elif item["kinds"] == {"verdict"}:
                self._display.display(text, color=C.COLOR_ERROR, stderr=self._failed_stderr())
            else:
                kinds = sorted(k for k in item["kinds"] if k != "said")
                hosts = _hosts(sorted(item["hosts"], key=_natural))
                self._say("%s: %s on %s: %s" % (item["task"], " and ".join(kinds), hosts, text),
                          color=C.COLOR_ERROR, stderr=self._failed_stderr())

    def _unsaid(self, item):
        """The item's text without what was said already: None when all of it was (a gate's echo, the halt's own
        words), the halt's reason cut out of a longer message (the release's final verdict)."""
        key, text = item["key"], item["msg"]
        for said in self._said:
            if key == said or (len(key) >= MIN_REASON and key in said):
                return None
            if len(said) >= MIN_REASON and said in key:
                if item["gate"] in self._halted_gates:
                    return None  # the halting gate's own message, and the fail tasks that repeat it
                text = _norm(text)
                text = text.replace(": " + said, "", 1) if ": " + said in text else text.replace(said, "(above)", 1)
        return text

    # --- phases -------------------------------------------------------------------------------------------------

    def _close_phase(self):
        phase = self._phase
        if phase is None:
            return
        self._phase = None
        self._flush(verdicts=False)
        if phase.roleless and not (phase.gates or phase.waves or phase.notes or phase.halted or phase.plan):
            self._flush()
            return
        verdict = phase.halted or ("FAILED" if phase.failed else ("passed" if phase.gates or phase.waves else "done"))
        parts = []
        plan = phase.plan
        if plan:
            parts.append("release %s to %d host(s) in %d wave(s)" % (
                plan.get("version"), sum(len(w) for w in plan.get("waves") or []), len(plan.get("waves") or [])))
        for direction in ("forward", "back"):
            count = phase.waves.count(direction)
            if count:
                parts.append("%d wave%s%s" % (count, "s" if count > 1 else "", " back" if direction == "back" else ""))
        if phase.switched:
            parts.append("%d host%s switched%s" % (len(phase.switched), "s" if len(phase.switched) != 1 else "",
                                                   " back" if phase.waves and "forward" not in phase.waves else ""))
        if phase.gates:
            parts.append(", ".join("gate %s %s in %.1f s%s" % (
                name, "passed" if ok else (phase.halted or "FAILED"), seconds,
                " on %d host%s" % (hosts, "s" if hosts != 1 else "") if hosts else "")
                for name, ok, seconds, hosts in phase.gates))
        parts.extend(phase.notes)
        text = "%s %s in %.1f s" % (phase.name, verdict, time.monotonic() - phase.started)
        self._say(text + (": " + "; ".join(parts) if parts else ""),
                  color=C.COLOR_ERROR if verdict in ("HALTED", "REFUSED", "FAILED") else None)
        self._flush()

    # --- the running step and its progress lines ---------------------------------------------------------------

    def _end_step(self):
        with self._lock:
            step, self._step = self._step, None
        if step is None:
            return
        staged = step.staged
        if staged["new"] or staged["there"]:
            text = "%s staged on %d host%s in %.1f s" % (
                staged["version"], len(staged["new"]) + len(staged["there"]),
                "s" if len(staged["new"]) + len(staged["there"]) != 1 else "", time.monotonic() - step.started)
            if staged["there"]:
                text += " (already there on %s)" % _hosts(staged["there"])
            self._say("%s: %s" % (step.phase, text))

    def _progress_line(self, now):
        step = self._step
        interval = self._interval()
        if step is None or interval <= 0:
            return None
        if now - step.started < interval or now - step.last_line < interval:
            return None
        if step.hosts and len(step.done) >= len(step.hosts):
            return None  # every host it started on is done: the next task is about to start
        step.last_line = now
        elapsed = now - step.started
        if step.duration is not None:
            return "%s: %.0f s left of %g s" % (step.phase, max(0.0, step.duration - elapsed), step.duration)
        text = "%s: %s: %.0f s" % (step.phase, step.name, elapsed)
        if len(step.hosts) > 1:
            text += ", %d/%d hosts done" % (len(step.done), len(step.hosts))
            if step.done:
                left = sum(step.done.values()) / len(step.done) - elapsed
                if left >= 1:
                    text += ", about %.0f s left" % left
        return text

    def _tick(self):
        interval = self._interval()
        while not self._stop_ticking.wait(min(1.0, interval / 4)):
            with self._lock:
                line = self._progress_line(time.monotonic())
            if line:
                self._say(line)

    def _stop_ticker(self):
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            self._stop_ticking.set()
            ticker.join(timeout=10)

    # --- the end -----------------------------------------------------------------------------------------------

    def v2_playbook_on_stats(self, stats):
        if not self._quiet():
            return super().v2_playbook_on_stats(stats)
        self._stop_ticker()
        if self._mine or self._phase is not None:
            self._end_step()
            self._end_batch()
            self._close_phase()
        self._flush()
        if self._other_plays:
            return super().v2_playbook_on_stats(stats)
        hosts = sorted(getattr(stats, "processed", {}) or {})
        failed = [h for h in hosts if stats.summarize(h).get("failures")]
        dark = [h for h in hosts if stats.summarize(h).get("unreachable")]
        self._say("recap: %d host%s, failed: %s, unreachable: %s" % (
            len(hosts), "s" if len(hosts) != 1 else "", _hosts(failed) if failed else "none",
            _hosts(dark) if dark else "none"), color=C.COLOR_ERROR if failed or dark else None)
        if getattr(stats, "custom", None) and self._option("show_custom_stats", False):
            for key in sorted(k for k in stats.custom if k != "_run"):
                self._display.display("\t%s: %s" % (key, self._dump_results(stats.custom[key], indent=1)
                                                    .replace("\n", "")))
            if "_run" in stats.custom:
                self._display.display("\tRUN: %s" % self._dump_results(stats.custom["_run"], indent=1)
                                      .replace("\n", ""))

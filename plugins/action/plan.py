# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.plan: check the release's inputs on the controller and print its plan.

Runs before any host is contacted: bad input (unknown or path-like version, missing or corrupted artifact,
nonsense waves, empty group) fails here with a clear message, so nothing is touched.
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import json
import os
import socket
import tarfile
import time

import yaml
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.lockstep.release.plugins.module_utils.release_state import valid_version
from ansible_collections.lockstep.release.plugins.plugin_utils.flags import disagreement
from ansible_collections.lockstep.release.plugins.plugin_utils.gates import LEDGER_BROKEN_ENV
from ansible_collections.lockstep.release.plugins.plugin_utils.guard import selection_problem
from ansible_collections.lockstep.release.plugins.plugin_utils.ledger_writer import LEDGER_FILE_ENV
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import scrubbed
from ansible_collections.lockstep.release.plugins.plugin_utils.waves import WaveSpecError, batches, serial_list

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "preflight", "meta", "argument_specs.yml")
# Set per host in inventories, or read by playbooks other than release.yml, so not in the role's argument spec.
NOT_IN_SPEC = frozenset({"lockstep_service_url", "lockstep_rollback_to"})


# Strategies that run each task on every host of the batch before the next task. lockstep's wave gates, load balancer
# steps and halts are run_once tasks over the whole batch, so `free` or `host_pinned` would let a host run ahead:
# switched before its wave was drained, or past a gate that has not judged it yet.
BATCH_STRATEGIES = frozenset({"linear", "ansible.builtin.linear", "debug", "ansible.builtin.debug", "mitogen_linear"})


NOT_RECORDING = (
    "the ledger is not recording this run: enable lockstep's callback, in the [defaults] section of your ansible.cfg "
    "'callbacks_enabled = lockstep.release.ledger' (or ANSIBLE_CALLBACKS_ENABLED=lockstep.release.ledger; in AWX, "
    "the project's ansible.cfg); a release is never made without its record (lockstep_require_ledger)")


def ledger_recording():
    """Whether lockstep's ledger callback writes this very ansible-playbook run's ledger: it names its file after
    the controller's pid (the worker's parent) in LOCKSTEP_LEDGER_FILE before any worker starts."""
    path = os.environ.get(LEDGER_FILE_ENV) or ""
    return path.endswith("-%d.jsonl" % os.getppid())


def play_strategy(task):
    """The strategy of the play ``task`` runs in (the play keyword, else ANSIBLE_STRATEGY / ansible.cfg)."""
    node = task
    while node is not None:
        play = getattr(node, "_play", None)
        if play is not None:
            return play.strategy
        node = getattr(node, "_parent", None)
    return None


def unknown_variables(names):
    """lockstep_* names on the command line that lockstep does not know: a typo must not silently fall back to a
    default (``-e lockstep_wave=...`` would otherwise release with the default waves)."""
    with open(SPEC) as f:
        known = set(yaml.safe_load(f)["argument_specs"]["main"]["options"]) | NOT_IN_SPEC
    out = []
    for name in sorted(n for n in names if str(n).startswith("lockstep_") and n not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        out.append("%s%s" % (name, " (did you mean %s?)" % close[0] if close else ""))
    return out


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _member_json(artifact_path, name):
    """A JSON file inside the artifact, read without unpacking it; None when absent or unreadable."""
    try:
        with tarfile.open(artifact_path) as tar:
            for member in tar.getmembers():
                if member.isfile() and os.path.normpath(member.name) == os.path.normpath(name):
                    return json.load(tar.extractfile(member))
    except (OSError, ValueError, tarfile.TarError):
        return None
    return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGS = dict(
        version=dict(type="str", required=True),
        artifact_dir=dict(type="path", required=True),
        artifact_name=dict(type="str", required=True),
        manifest_name=dict(type="str", required=True),
        group=dict(type="str", required=True),
        group_hosts=dict(type="list", elements="str", required=True),
        canary=dict(type="raw", default=1),
        waves=dict(type="raw", required=True),
        flags_file=dict(type="str", default=""),
        lb=dict(type="str", default="haproxy", choices=["haproxy", "tasks", "none"]),
        lb_tasks=dict(type="str", default=""),
        haproxy_socket=dict(type="str", default=""),
        lb_hosts=dict(type="list", elements="str", default=[]),
        lock_host=dict(type="str", default="localhost"),
        require_ledger=dict(type="bool", default=False),
        rehearse=dict(type="bool", default=True),
        rehearse_reason=dict(type="str", default=""),
    )

    def fail(self, msg):
        msg = "refused before touching any host: " + msg
        return {"failed": True, "changed": False, "msg": msg,
                "lockstep_gate": {"gate": "input", "passed": False, "hosts": {},
                                  "halted": [{"host": "controller", "message": msg}], "message": msg}}

    @staticmethod
    def _load_balancer(a):
        """``(what the plan says about the load balancer, problem)``: each mode's own inputs, checked here."""
        if a["lb"] == "haproxy":
            if not a["lb_hosts"]:
                return None, ("lockstep_lb is haproxy but the inventory has no load balancer host (lockstep_lb_group); "
                              "set lockstep_lb: none to release without one, or tasks for your own")
            if not a["haproxy_socket"]:
                return None, "lockstep_lb is haproxy but lockstep_haproxy_socket (its admin socket) is not set"
            return "HAProxy on %s" % a["lb_hosts"][0], None
        if a["lb"] == "tasks":
            if not a["lb_tasks"] or not os.path.isfile(a["lb_tasks"]):
                return None, ("lockstep_lb is tasks but lockstep_lb_tasks %r is not a task file on the controller"
                              % a["lb_tasks"])
            return "task file %s" % a["lb_tasks"], None
        return "none (nothing is drained or put back; which hosts serve traffic has no second source)", None

    @scrubbed
    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        dummy, a = self.validate_argument_spec(argument_spec=self.ARGS)
        version = a["version"]
        broken = os.environ.get(LEDGER_BROKEN_ENV)
        if broken:
            # Set by the ledger callback, which never stops a run itself: this is the ordinary task that does.
            return self.fail("the ledger cannot be written: %s; a release is never made without its record" % broken)
        if a["require_ledger"] and not ledger_recording():
            return self.fail(NOT_RECORDING)
        refused = selection_problem()
        if refused:
            return self.fail(refused.replace("refused before touching any host: ", "", 1))
        unknown = unknown_variables(load_extra_vars(self._loader))
        if unknown:
            return self.fail("unknown variable(s): %s" % ", ".join(unknown))
        strategy = play_strategy(self._task)
        if strategy not in BATCH_STRATEGIES:
            return self.fail("the %r strategy lets a host run ahead of its wave's drain and gate: lockstep runs with "
                             "linear (the default; mitogen_linear too), so unset ANSIBLE_STRATEGY or the "
                             "strategy in ansible.cfg" % strategy)
        if not valid_version(version):
            return self.fail("lockstep_version %r is not a plain version string (letters, digits, '.', '-', '+', "
                             "'_'; no '/', '..' or spaces)" % version)
        if not a["group_hosts"]:
            return self.fail("inventory group %r has no hosts: there is no fleet to release to" % a["group"])
        lb, problem = self._load_balancer(a)
        if problem:
            return self.fail(problem)
        try:
            serial = serial_list(a["canary"], a["waves"])
        except WaveSpecError as e:
            return self.fail(str(e))
        if not a["rehearse"] and not (a["rehearse_reason"] or "").strip():
            return self.fail("lockstep_rehearse is false but lockstep_rehearse_reason is empty: say why the rollback "
                             "is not rehearsed on the canary (it is recorded in the ledger and the summary)")
        fleet = len(a["group_hosts"])
        if serial[0] > fleet or (serial[0] == fleet and fleet > 1):
            # A canary of the whole fleet proves nothing before every host has changed.
            return self.fail("lockstep_canary %s is %s the fleet (%d host(s) in %s): a canary must leave hosts "
                             "untouched until it has passed its gate" % (
                                 serial[0], "larger than" if serial[0] > fleet else "all of", fleet, a["group"]))
        manifest_path = os.path.join(a["artifact_dir"], a["manifest_name"].replace("{version}", version))
        artifact_path = os.path.join(a["artifact_dir"], a["artifact_name"].replace("{version}", version))
        if not os.path.isfile(manifest_path):
            known = sorted(f for f in os.listdir(a["artifact_dir"])) if os.path.isdir(a["artifact_dir"]) else []
            return self.fail("unknown version %s: no manifest %s (artifacts here: %s)" % (
                version, manifest_path, ", ".join(known) or "none"))
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            return self.fail("manifest %s is unreadable: %s" % (manifest_path, e))
        if manifest.get("version") != version:
            return self.fail("manifest %s is for version %r" % (manifest_path, manifest.get("version")))
        if not os.path.isfile(artifact_path):
            return self.fail("artifact %s is missing" % artifact_path)
        digest = _sha256(artifact_path)
        if digest != manifest.get("sha256"):
            return self.fail("artifact %s is corrupted: sha256 %s, manifest says %s (artifact-integrity)" % (
                artifact_path, digest, manifest.get("sha256")))
        if a["flags_file"]:
            problems = disagreement(manifest, _member_json(artifact_path, a["flags_file"]), a["flags_file"])
            if problems:
                return self.fail("manifest %s and the artifact's own flags file disagree: %s (flag-manifest)" % (
                    manifest_path, "; ".join(problems)))
        plan = batches(a["group_hosts"], serial)
        names = ["canary"] + ["wave %d" % i for i in range(1, len(plan))]
        lines = ["%s: %s" % (n, ", ".join(b)) for n, b in zip(names, plan, strict=True)] + [
            "load balancer: " + lb, "lock on " + a["lock_host"],
            "rollback rehearsal: " + ("on the canary after its gate, before wave 1" if a["rehearse"]
                                      else "OFF (%s)" % a["rehearse_reason"].strip())]
        started = time.time()
        return {
            "changed": False,
            "msg": "release %s to %d host(s) of %s in %d wave(s): %s" % (
                version, len(a["group_hosts"]), a["group"], len(plan), " | ".join(lines)),
            "lockstep_plan": {
                "run_id": "%s-%d-%s" % (time.strftime("%Y%m%dT%H%M%S", time.gmtime(started)), os.getppid(),
                                        version),
                "version": version,
                "manifest": manifest,
                "artifact": artifact_path,
                "artifact_bytes": os.path.getsize(artifact_path),
                "serial": serial,
                "waves": plan,
                "summary": " | ".join(lines),
                "lb": lb,
                "user": getpass.getuser(),
                "controller": socket.gethostname(),
                # The worker's parent is the ansible-playbook process: the lock's owner, for stale detection.
                "pid": os.getppid(),
            },
        }

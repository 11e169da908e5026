# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.record: the one way the release record is written (plugins/module_utils/release_record.py
is its schema). Runs on the controller and returns the whole record as a fact, so it lands on ``localhost`` with
``delegate_to: localhost`` and ``delegate_facts: true``.

It never fails: it is a ``run_once`` step, and a failed ``run_once`` step drops its batch's other hosts from every
later play, the rollback's included. A write the schema refuses changes nothing in the record but its halt: the
release halts on it (refused before any host changed, rolled back after), so a record nobody can trust is never
released on."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.lockstep.release.plugins.module_utils.release_record import RECORD_FACT, RecordError, apply


def current_record(task_vars):
    """The record as the controller holds it now, or None (a run that has not started one)."""
    hostvars = task_vars.get("hostvars")
    if hostvars is None:
        return None
    try:
        facts = hostvars.raw_get("localhost").get("ansible_facts") or {}
    except (KeyError, AttributeError):
        return None
    record = facts.get(RECORD_FACT)
    return record if isinstance(record, dict) else None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("set", "add", "reset"))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        self._supports_check_mode = True
        args = self._task.args
        current = None if args.get("reset") else current_record(task_vars or {})
        try:
            for name in ("set", "add"):
                if not isinstance(args.get(name) or {}, dict):
                    raise RecordError("%s must be a dict of the record's fields, not %r" % (name, args.get(name)))
            record, kept = apply(current, args.get("set"), args.get("add"), reset=bool(args.get("reset")))
        except RecordError as e:
            record = apply(current, reset=current is None)[0]
            message = "the release record refused a write: %s" % e
            if "halt" not in record:
                nothing_changed = not record["switches"] and not record["done"] and not record["inherited"]
                record["halt"] = {"phase": "preflight" if nothing_changed else "rollout", "gate": "record",
                                  "host": "controller", "message": message}
            else:
                record["rollback_notes"] = record["rollback_notes"] + [message]
            return {"changed": False, "msg": message, "lockstep_record_error": message, "warnings": [message],
                    "ansible_facts": {RECORD_FACT: record}}
        written = sorted(set(args.get("set") or {}) | set(args.get("add") or {}))
        result = {"changed": False, "fields": written, "ansible_facts": {RECORD_FACT: record}}
        if kept:
            result["kept"] = kept
            result["msg"] = "a halt is recorded already: the first halt wins"
        else:
            result["msg"] = "recorded: %s" % (", ".join(written) or ("a new record" if args.get("reset")
                                                                     else "nothing"))
        return result

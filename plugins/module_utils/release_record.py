# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release record: one typed record of a release run, kept on the controller (the fact ``__lockstep_record`` of
``localhost``, set by ``ansible.builtin.set_fact``: a run's own, never cached), written only through the filter
``lockstep.release.record`` (``write`` below) and read by every phase.

``FIELDS`` is its schema, the one place a field is declared: its type, its value in a new record and what it means
(docs/CONTRACTS.md, "The release record", documents each one: a unit test holds the two together). A write that
names an unknown field, or gives a field a value of another type, is refused whole: the record is never
half-updated."""

from __future__ import annotations

import copy

RECORD_FACT = "__lockstep_record"
PHASES = ("preflight", "rollout", "verify", "smoke", "watch", "rollback", "finish")
HALT_KEYS = ("phase", "gate", "host", "message")
# Of each host's release state (lockstep.release.state), what the record keeps: what its readers use (the waves'
# pending hosts, --check, the outcome's version before). The whole state (its releases, flags, process) is ~80 values
# a host, and every write of the record is a walk of all of it in each worker that makes one.
STATE_KEYS = ("active_version", "consistent", "running_version")

# name: (type, value in a new record, written by, what). Types: "str", "str?" (a string or null), "bool", "int",
# "list" (of host or server names), "strings" (list of sentences), "versions" (host -> version or null),
# "map" (a dict of anything JSON), "halt" ({phase, gate, host, message}, absent until the release halts).
FIELDS = {
    "run": ("map", {}, "preflight (plan)",
            "the plan: run id, version, manifest, artifact, waves, user, controller, pid"),
    "locked": ("bool", False, "preflight", "the release lock is this run's to give back"),
    "lock_stuck": ("bool", False, "finish", "the lock could not be given back"),
    "halt": ("halt", None, "any phase (roles/common/tasks/halt.yml)",
             "why the release halted: {phase, gate, host, message}; absent until it halts; the first halt wins"),
    "before": ("str?", None, "preflight", "the fleet's version before (null on a bare fleet)"),
    "befores": ("versions", {}, "preflight",
                "host -> version it goes back to on a halt: the one place \"the version before\" is computed"),
    "states": ("map", {}, "preflight",
               "host -> its release state as preflight read it (lockstep.release.state), only `active_version`, "
               "`consistent` and `running_version` (null: not read): the one read of each host the waves "
               "(pending_hosts), --check and the outcome per host use"),
    "found": ("versions", {}, "preflight",
              "host -> version its process runs now (baseline smoke, a refusal's census, the wave gates' untouched "
              "hosts)"),
    "reports": ("map", {}, "preflight",
                "releases whose service reports another version than their label: {label: reported}"),
    "inherited": ("list", [], "preflight",
                  "hosts an interrupted run of this release already switched (rolled back with the others)"),
    "fleet": ("list", [], "preflight",
              "the hosts the release runs on, in inventory order: the group less the hosts a partial release leaves "
              "out; every later phase's gates judge these"),
    "excluded": ("list", [], "preflight", "hosts left out of a partial release"),
    "partial": ("bool", False, "preflight", "the release runs on part of the group (lockstep_allow_partial)"),
    "flag_verdict": ("str?", None, "preflight", "the flag-reuse gate's one-line verdict"),
    "before_flags": ("list", [], "preflight", "the flags the running release introduced"),
    "rehearse": ("bool", False, "preflight",
                 "the canary rehearses the rollback (on, and it has a release to go back to)"),
    "rehearsal": ("str", "", "preflight", "what the plan, --check and the summary say of the rehearsal"),
    "rehearsed": ("str?", None, "rollout (rehearse.yml)", "what the rehearsal proved, once it ran to its end"),
    "rehearsal_restore": ("list", [], "rollout (rehearse.yml)",
                          "canary hosts whose previous release did not serve after the new one ran: the rollback "
                          "restores their lockstep_state_paths from the run's snapshot"),
    "lb_before": ("map", {}, "preflight",
                  "the backend as found (show stat): an operator's MAINT or DRAIN is never touched"),
    "lb_drained": ("list", [], "the load balancer steps of rollout and rollback",
                   "servers lockstep holds drained, only as the load balancer confirmed; put back once proven"),
    "lb_step": ("map", {}, "roles/common/tasks/lb.yml",
                "the last load balancer step's answer, the same for every lockstep_lb: "
                "{lb, servers, serving, msg[, lockstep_lb_error]}"),
    "done": ("list", [], "rollout", "hosts of the waves that passed their gate"),
    "wave_index": ("int", 0, "rollout", "waves done (an after_wave hook reads it as lockstep_waves_done)"),
    "switches": ("map", {}, "rollout, once per wave",
                 "host -> what its deploy call did forward (a failed call's too; a host not switched: "
                 "`{\"skipped\": true}`), only `switched`, `changed`, `failed`, `skipped`, `msg`, `previous_version`, "
                 "`lockstep_unreachable`, `lockstep_never_connected` (filter `switch_outcomes`): the rollback's "
                 "plan, its judgement and the outcome per host read it"),
    "switches_back": ("map", {}, "rollback waves, once per wave",
                      "host -> what its deploy call did back (the same fields)"),
    "changed": ("list", [], "rollback (plan)",
                "hosts the release changed, computed once before the first wave back"),
    "unknown": ("list", [], "rollback (plan)", "hosts whose connection was lost mid-switch: assumed changed"),
    "rollback_notes": ("strings", [], "rollout, rollback, finish",
                       "what the rollback had to work around (and a lock that could not be given back)"),
    "rollback_failed": ("str", "", "rollback", "why the rollback could not be verified"),
    "rollback_bad": ("list", [], "rollback", "hosts not proven back"),
    "killed_hosts": ("list", [], "rollback", "hosts the load balancer confirmed taken out (MAINT)"),
    "unkilled_hosts": ("list", [], "rollback", "hosts it could not take out"),
    "first_hosts": ("list", [], "rollback", "a first release's changed hosts (no release to go back to)"),
    "first_stopped": ("list", [], "rollback", "those of them stopped"),
}


class RecordError(ValueError):
    pass


def new_record():
    """Every field at its value in a new record; ``halt`` stays absent until the release halts."""
    return {name: copy.deepcopy(spec[1]) for name, spec in FIELDS.items() if spec[0] != "halt"}


def slim_states(states):
    """``states`` (host -> release state or None) as the record keeps them: ``STATE_KEYS`` of each."""
    return {h: ({k: st.get(k) for k in STATE_KEYS} if isinstance(st, dict) else None)
            for h, st in (states or {}).items()}


def _is_str(value):
    return isinstance(value, str)


def check(name, value):
    """Refuse a value of the wrong type for field ``name`` (RecordError naming the field and what it got)."""
    if name not in FIELDS:
        raise RecordError("the release record has no field %r (fields: %s)" % (name, ", ".join(sorted(FIELDS))))
    kind = FIELDS[name][0]
    ok = {
        "str": _is_str,
        "str?": lambda v: v is None or _is_str(v),
        # A bool is an int in Python: neither passes for the other.
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "list": lambda v: isinstance(v, list) and all(_is_str(x) for x in v),
        "strings": lambda v: isinstance(v, list) and all(_is_str(x) for x in v),
        # A service may report its version as a JSON number: kept as it reported it.
        "versions": lambda v: isinstance(v, dict) and all(_is_str(k) and (x is None or isinstance(x, (str, int, float)))
                                                          for k, x in v.items()),
        "map": lambda v: isinstance(v, dict) and all(_is_str(k) for k in v),
        "halt": lambda v: isinstance(v, dict) and set(v) == set(HALT_KEYS) and all(_is_str(v[k]) for k in HALT_KEYS)
        and v["phase"] in PHASES,
    }[kind]
    if not ok(value):
        raise RecordError("the release record's %s must be %s, not %r" % (name, describe(kind), value))


def describe(kind):
    return {
        "str": "a string", "str?": "a string or null", "bool": "true or false", "int": "a count (0 or more)",
        "list": "a list of names", "strings": "a list of sentences",
        "versions": "a dict of host -> version (a string or a number) or null",
        "map": "a dict", "halt": "{phase, gate, host, message} (strings; phase one of %s)" % ", ".join(PHASES),
    }[kind]


def _plain(value):
    """Plain JSON-like Python values: Ansible hands an action its arguments as its own str, dict and list types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def _typed(name, value):
    """``value`` for field ``name``: plain, with a count from a template rendered as text taken as the number it
    reads (ansible-core 2.16 and 2.17 render ``{{ n + 1 }}`` as "2")."""
    value = _plain(value)
    if FIELDS.get(name, ("",))[0] == "int" and isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def apply(record, set_=None, add=None, reset=False):
    """The record after one write: ``reset`` starts a new one; ``set_`` replaces fields; ``add`` appends to a list
    field or merges into a dict field. Returns ``(record, kept)``: ``kept`` names a halt not replaced (the first
    wins). Raises RecordError, leaving ``record`` untouched, on any value the schema refuses."""
    current = new_record() if reset or not isinstance(record, dict) else _plain(record)
    new = dict(current)  # _plain built every container anew; a write replaces a field's value, never edits it
    kept = []
    for name, value in (set_ or {}).items():
        value = _typed(name, value)
        check(name, value)
        if name == "halt" and "halt" in current:
            kept.append(name)
            continue
        new[name] = value
    for name, value in (add or {}).items():
        value = _typed(name, value)
        if name not in FIELDS:
            check(name, value)
        kind = FIELDS[name][0]
        if kind in ("list", "strings"):
            check(name, value)
            new[name] = list(new.get(name) or []) + value
        elif kind in ("map", "versions"):
            check(name, value)
            merged = dict(new.get(name) or {})
            merged.update(value)
            new[name] = merged
        else:
            raise RecordError("the release record's %s is %s: it can be set, not added to" % (name, describe(kind)))
    for name, value in new.items():
        check(name, value)
    return new, kept


def write(current, set_=None, add=None, reset=False):
    """The record after one write, never an exception: ``(record, error)``. A write the schema refuses changes
    nothing in the record but its halt: the release halts on it (gate ``record``; a refusal while no host has
    changed, a rollback after), or, once halted, the refusal is added to ``rollback_notes``."""
    try:
        for name, value in (("set", set_), ("add", add)):
            if not isinstance(value or {}, dict):
                raise RecordError("%s must be a dict of the record's fields, not %r" % (name, value))
        return apply(current, set_, add, reset)[0], None
    except RecordError as e:
        record = apply(None if reset or not isinstance(current, dict) else current)[0]
        message = "the release record refused a write: %s" % e
        if "halt" not in record:
            nothing_changed = not record["switches"] and not record["done"] and not record["inherited"]
            record["halt"] = {"phase": "preflight" if nothing_changed else "rollout", "gate": "record",
                              "host": "controller", "message": message}
        else:
            record["rollback_notes"] = record["rollback_notes"] + [message]
        return record, message

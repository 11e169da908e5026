"""The release record (issue 19, item 4): one typed record of the run, written only through the filter
lockstep.release.record, checked against the schema in plugins/module_utils/release_record.py and documented field by
field in docs/CONTRACTS.md."""

from __future__ import annotations

import os
import re

import pytest

from ansible_collections.lockstep.release.plugins.module_utils.release_record import (
    FIELDS,
    RecordError,
    apply,
    new_record,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECORD = "hostvars['localhost'].__lockstep_record"


def test_a_new_record_holds_every_field_but_the_halt():
    record = new_record()
    assert set(record) == set(FIELDS) - {"halt"}
    again, kept = apply(record)
    assert again == record and kept == []


@pytest.mark.parametrize("write", [
    {"waves_done": 1},  # no such field
    {"before": ["1.0.0"]},
    {"locked": "yes"},
    {"wave_index": -1},
    {"wave_index": True},
    {"done": "h1"},
    {"done": ["h1", 2]},
    {"befores": {"h1": ["1.0.0"]}},
    {"halt": {"phase": "rollout", "gate": "wave-1", "host": "h1"}},
    {"halt": {"phase": "lunch", "gate": "wave-1", "host": "h1", "message": "m"}},
], ids=lambda w: "%s=%r" % next(iter(w.items())))
def test_a_value_the_schema_refuses_is_refused_and_nothing_of_the_write_is_kept(write):
    record = new_record()
    with pytest.raises(RecordError):
        apply(record, dict({"rehearsal": "a good value beside it"}, **write))
    assert record == new_record()


def test_lists_and_dicts_grow_by_add_counts_rendered_as_text_are_counts_and_the_first_halt_wins():
    record, _ = apply(new_record(), {"wave_index": "2", "befores": {"h1": "1.0.0", "h2": None}},
                      {"done": ["h1"], "switches": {"h1": {"switched": True}}})
    record, _ = apply(record, add={"done": ["h2"], "switches": {"h2": {"failed": True}}, "rollback_notes": []})
    assert record["wave_index"] == 2 and record["done"] == ["h1", "h2"]
    assert record["switches"] == {"h1": {"switched": True}, "h2": {"failed": True}}
    first = {"phase": "verify", "gate": "verify", "host": "h2", "message": "h2 serves 1.0.0"}
    record, kept = apply(record, {"halt": first})
    assert kept == []
    record, kept = apply(record, {"halt": dict(first, gate="smoke", message="a consequence")})
    assert kept == ["halt"] and record["halt"] == first
    with pytest.raises(RecordError):
        apply(record, add={"before": "x"})  # a string is set, never added to
    assert "halt" not in apply(record, reset=True)[0]


def test_contracts_documents_every_field_of_the_record_and_no_other():
    with open(os.path.join(REPO, "docs", "CONTRACTS.md")) as f:
        text = f.read()
    section = text.split("## The release record", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, re.M)
    assert sorted(documented) == sorted(FIELDS)


def write(change):
    """A task that writes the record, as lockstep's roles do."""
    return {"ansible.builtin.set_fact": {
        "__lockstep_record": "{{ hostvars['localhost'].__lockstep_record | default(none)"
                             " | lockstep.release.record(__lockstep_write) }}"}, "vars": {"__lockstep_write": change}}


def test_the_filter_writes_the_record_and_halts_the_release_on_a_write_its_schema_refuses(run_play):
    output = run_play(
        (write({"reset": True}), ["%s.done == []" % RECORD, "%s.halt is not defined" % RECORD]),
        (write({"set": {"wave_index": "{{ 0 + 1 }}"}, "add": {"done": ["h1"]}}),
         ["out is not failed", "%s.wave_index == 1" % RECORD, "%s.done == ['h1']" % RECORD]),
        # Refused after a host changed: a halt of gate "record"; the rest of the write is not kept.
        (write({"set": {"before": ["1.0.0"], "locked": True}}),
         ["out is not failed", "'before must be a string or null' in %s.halt.message" % RECORD,
          "%s.halt.gate == 'record'" % RECORD, "%s.halt.phase == 'rollout'" % RECORD, "not %s.locked" % RECORD]),
        # Once halted, a refused write is a note for the rollback; the first halt stays.
        (write({"set": {"no_such_field": 1}}),
         ["out is not failed", "%s.halt.gate == 'record'" % RECORD,
          "%s.rollback_notes[-1] is search('no field .no_such_field.')" % RECORD]),
        # Before any host changed, a refusal.
        (write({"reset": True, "set": {"halt": "stop"}}),
         ["out is not failed", "%s.halt.phase == 'preflight'" % RECORD]),
    )
    assert "the release record refused a write" in output  # said, as a warning


def test_the_record_is_written_in_check_mode_too(run_play):
    run_play((write({"reset": True, "set": {"before": "1.0.0"}}), ["%s.before == '1.0.0'" % RECORD]), args=("--check",))

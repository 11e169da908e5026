# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``bin/lockstep report [LEDGER] [--out FILE]``: one self-contained HTML page of a release, built from its ledger's
records alone (docs/report.md).

The page: a header (run, playbook, who, when, version before -> after, status, duration, the halt), whether the
ledger verifies (the same :func:`ledger.verify` and :func:`ledger.check_anchor` as ``bin/lockstep ledger verify``),
a timeline of the phases and waves, one lane per host (what the ledger recorded of it, wave by wave: drained,
switched, put back, proven, halted, rolled back), every gate's verdict (the halting one marked ``halting``, "HALTED
HERE"), overrides and their reasons, hosts found dead, failures, and every record. A ledger without
``release_finished`` (the controller died) shows what it recorded up to its last record and says it is
INCOMPLETE.

Every string of the ledger is HTML-escaped (ledgers hold user text: messages, reasons, extra vars); the page loads
nothing (no URL, no script; its Content-Security-Policy forbids both). Stdlib only.

For other code (tests, a fleet test): :func:`render` ``(records, verification) -> str`` and :func:`write_report`
``(ledger_path, out_path=None) -> out_path``; :func:`verify_ledger` gives the ``verification`` :func:`render` shows.
"""

from __future__ import annotations

import html
import os
import re
import sys
import tempfile

from ansible_collections.lockstep.release.plugins.module_utils import ledger
from ansible_collections.lockstep.release.plugins.plugin_utils import history
from ansible_collections.lockstep.release.plugins.plugin_utils.history import (
    format_duration,
    format_time,
    record_time,
    seconds_between,
)
from ansible_collections.lockstep.release.plugins.plugin_utils.phases import ROLLBACK_PLAY, SHARED

WAVE_GATE = re.compile(r"^(rollback-)?wave-(\d+)$")
GOOD = ("succeeded", "partial")
WARN = ("refused", "rolled_back", "lock_broken", "halted")
HALTED_HERE = "HALTED HERE"


def e(value):
    """Escape anything for HTML text and attribute values (quotes too)."""
    if value is None:
        return ""
    return html.escape(str(value), quote=True)


def _natural(name):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(name))]


# --- verification ----------------------------------------------------------------------------------------------

def verify_ledger(path, key=None, anchor=None):
    """What ``bin/lockstep ledger verify`` says of ``path``, as ``{"ok", "text"}``: the chain (with ``key``, else
    the configured one: ``$LOCKSTEP_LEDGER_KEY`` / ``$LOCKSTEP_LEDGER_KEY_FILE``) and the anchor (``anchor``, else
    the one the anchor directory holds for it), in that command's words."""
    if key is None:
        try:
            key = ledger.configured_key()
        except ValueError as ex:
            return {"ok": False, "text": f"CANNOT VERIFY: {ex}"}
    try:
        result = ledger.verify(path, key=key)
    except OSError as ex:
        return {"ok": False, "text": f"CANNOT VERIFY: {ex.strerror or ex}"}
    if result.no_key:
        return {"ok": False, "text": f"CANNOT VERIFY: {result.reason}"}
    if not result.ok:
        return {"ok": False, "text": f"BROKEN at record seq {result.bad_seq} (line {result.bad_line}): "
                                     f"{result.reason}; {result.records} record(s) before it verify"}
    checked = ledger.check_anchor(result, path, anchor=anchor)
    if not checked.ok:
        return {"ok": False, "text": f"BROKEN: {checked.message}; the {result.records} record(s) it has verify"}
    chain = f"keyed chain intact ({result.mac})" if result.mac else "chain intact"
    if not result.complete:
        state = f"INCOMPLETE (no release_finished; last event {result.last_event})"
    elif checked.state == "behind" and not result.mac:
        state = (f"INCOMPLETE (its last record, {result.last_event}, is past the anchor in an unkeyed chain: not "
                 "proven)")
    else:
        state = "complete"
    return {"ok": True, "text": f"OK, {result.records} records, {checked.message}, {chain}, {state}"}


# --- the model: what the records say --------------------------------------------------------------------------

def phase_spans(records):
    """Every phase a run entered: ``{phase, play, start, end, i0, i1, open}`` (``i0``/``i1``: index of its
    phase_enter/phase_leave record; ``open``: no phase_leave, the ledger stops inside it)."""
    spans, current, play = [], None, None
    last = record_time(records[-1]) if records else None
    for i, rec in enumerate(records):
        ev = rec.get("event")
        when = record_time(rec)
        if ev == "play_started":
            play = rec.get("play")
        elif ev == "phase_enter":
            if current is not None:
                current.update(end=when, i1=i)
                spans.append(current)
            current = {"phase": rec.get("phase"), "play": rec.get("play") or play, "start": when, "end": None,
                       "i0": i, "i1": None, "open": False}
        elif ev == "phase_leave" and current is not None:
            current.update(end=when, i1=i)
            spans.append(current)
            current = None
    if current is not None:
        current.update(end=last, i1=len(records) - 1, open=True)
        spans.append(current)
    return spans


def _stage_label(span):
    if span["phase"] == SHARED:  # the shared steps (load balancer, halt): part of the phase around them
        return None
    if span["phase"] == "rollback" or ROLLBACK_PLAY.search(str(span.get("play") or "")):
        return "rollback"
    return span["phase"]


def stages_of(spans):
    """The phases as one line each: consecutive spans of one phase merged (the shared ``common`` steps counted in
    the phase around them; the rollback's waves, which run the rollout's tasks backwards, in ``rollback``)."""
    labels = [_stage_label(s) for s in spans]
    for i in range(len(labels)):
        if labels[i] is None and i > 0:
            labels[i] = labels[i - 1]
    for i in reversed(range(len(labels))):
        if labels[i] is None and i + 1 < len(labels):
            labels[i] = labels[i + 1]
    stages = []
    for span, label in zip(spans, labels, strict=True):
        label = label or span["phase"] or "-"
        if stages and stages[-1]["name"] == label:
            stages[-1].update(end=span["end"], i1=span["i1"], open=span["open"])
        else:
            stages.append({"name": label, "start": span["start"], "end": span["end"], "i0": span["i0"],
                           "i1": span["i1"], "open": span["open"]})
    return stages


def _host_version(rec):
    return ledger.state_version(rec.get("state"))


def waves_of(records, spans, complete):
    """The waves, forward and back: each batch of the serial plays (a play whose name says ``waves``, or that holds
    a wave gate or a ``wave`` record) in which a phase ran, with what happened to each of its hosts."""
    plays = [i for i, r in enumerate(records) if r.get("event") == "play_started"]
    waves = []
    numbers = {False: 0, True: 0}
    for k, i in enumerate(plays):
        j = plays[k + 1] if k + 1 < len(plays) else len(records)
        window = list(range(i + 1, j))
        play = records[i]
        name = str(play.get("play") or "")
        gates = [x for x in window if records[x].get("event") == "gate"
                 and WAVE_GATE.match(str(records[x].get("gate") or ""))]
        marks = [x for x in window if records[x].get("event") == "wave"]
        if not any(records[x].get("event") == "phase_enter" for x in window):
            continue  # a batch the halt skipped whole (the rollback's waves of a clean release)
        if not ("waves" in name.lower() or gates or marks):
            continue
        mark = records[marks[0]] if marks else {}
        gate_i = gates[0] if gates else None
        gate = records[gate_i] if gate_i is not None else None
        back = bool(ROLLBACK_PLAY.search(name) or (gate and str(gate.get("gate")).startswith("rollback-"))
                    or str(mark.get("version") or "").startswith("back"))
        numbers[back] += 1
        number = mark.get("index")
        if number is None and gate is not None:
            number = int(WAVE_GATE.match(str(gate.get("gate"))).group(2))
        if number is None:
            number = numbers[back]
        hosts = [str(h) for h in (mark.get("hosts") or play.get("hosts") or [])]
        wave = {"number": number, "back": back, "hosts": hosts, "count": mark.get("count"), "done": mark.get("done"),
                "total": mark.get("total"), "version": mark.get("version"), "play": name,
                "start": record_time(play), "end": record_time(records[j - 1]) if j - 1 > i else record_time(play),
                "i0": i, "i1": j - 1, "gate": gate, "in_progress": j == len(records) and not complete and gate is None,
                "events": {h: [] for h in hosts}}
        changes = [x for x in window if records[x].get("event") in ("host_state", "host_failed", "host_unreachable")
                   and records[x].get("host") in wave["events"]]
        switched = [x for x in window if records[x].get("event") == "host_state"
                    and records[x].get("host") in wave["events"]]
        commons = [s for s in spans if s["phase"] == "common" and s["i0"] > i and s["i1"] is not None and s["i1"] < j]
        before = [s for s in commons if not changes or s["i1"] < changes[0]]
        drain = (before[-1] if changes else before[0]) if before else None
        putback = None
        if switched:
            after = [s for s in commons if s["i0"] > switched[-1] and (gate_i is None or s["i1"] < gate_i)]
            putback = after[0] if after else None
        failed_hosts = {records[x].get("host") for x in window
                        if records[x].get("event") in ("host_failed", "host_unreachable")
                        and not records[x].get("ignored") and not _echo_of_gate(records[x])}
        for x in window:
            rec = records[x]
            host = rec.get("host")
            if host not in wave["events"]:
                continue
            if rec.get("event") == "host_state":
                version = _host_version(rec) if _host_version(rec) is not None else "?"
                if host in failed_hosts:  # what the failed switch left: not a switch
                    wave["events"][host].append(("state", record_time(rec), f"runs {version}", rec.get("task")))
                    continue
                label = ("back on {}" if back else "switched to {}").format(version)
                wave["events"][host].append(("rolled-back" if back else "switched", record_time(rec), label, None))
            elif rec.get("event") in ("host_failed", "host_unreachable") and not rec.get("ignored"):
                if _echo_of_gate(rec):
                    continue
                what = "unreachable" if rec["event"] == "host_unreachable" else "failed"
                wave["events"][host].append(("failed", record_time(rec), f"{what}: {rec.get('message') or ''}",
                                             rec.get("task")))
        for host in hosts:
            events = wave["events"][host]
            if drain is not None:
                events.insert(0, ("drained", drain["end"], "drained",
                                  "the wave's load balancer step before the switch ended"))
            did_switch = any(event[0] in ("switched", "rolled-back") for event in events)
            if putback is not None and did_switch and host not in failed_hosts:
                events.append(("put-back", putback["end"], "put back",
                               "the wave's load balancer step after the switch ended"))
            if gate is not None:
                halted = {h.get("host"): h.get("message") for h in gate.get("halted") or [] if isinstance(h, dict)}
                if host in halted:
                    events.append(("halted", record_time(gate), f"HALTED by gate {gate.get('gate')}: "
                                                                f"{halted[host] or gate.get('message') or ''}", None))
                elif gate.get("passed"):
                    events.append(("proven", record_time(gate),
                                   "proven back" if back else "proven", f"gate {gate.get('gate')} passed"))
                else:
                    events.append(("not-proven", record_time(gate), f"gate {gate.get('gate')} halted the wave",
                                   gate.get("message")))
            if wave["in_progress"]:
                events.append(("open", wave["end"], "in progress when the recording stopped", None))
        waves.append(wave)
    return waves


def _echo_of_gate(rec):
    """A failure that only repeats a gate's halt on every host (the "halt unless the gate passed" task) or the
    run's final verdict: the gate's row and the header say it already."""
    message = str(rec.get("message") or "")
    if re.match(r"^gate \S+ halted the release", message):
        return True
    return bool(re.match(r"^lockstep [a-z_]+: release of ", message))


def hosts_of(records, finish, waves):
    names = set()
    for rec in records:
        if rec.get("event") in ("host_state", "host_failed", "host_unreachable") and rec.get("host"):
            names.add(str(rec["host"]))
        if rec.get("event") == "status_reported":
            data = rec.get("data") or {}
            names.update(str(h) for h in (data.get("lockstep_hosts") or {}))
    names.update(str(h) for h in ((finish or {}).get("hosts") or {}))
    names.update(str(h) for h in ((finish or {}).get("found_dead") or []))
    for wave in waves:
        names.update(wave["hosts"])
    return sorted(names, key=_natural)


def lanes_of(records, finish, waves, hosts):
    """Per host: before, after, result, and its events in time order (``(kind, time, label, title)``)."""
    in_wave = set()
    for wave in waves:
        in_wave.update(range(wave["i0"], wave["i1"] + 1))
    reported = {}
    for rec in records:
        if rec.get("event") == "status_reported":
            reported.update(rec.get("data") or {})
    final_hosts = dict(reported.get("lockstep_hosts") or {})
    final_hosts.update((finish or {}).get("hosts") or {})
    first_seen, last_seen = history.observed_versions(records)
    found_dead = set(str(h) for h in ((finish or {}).get("found_dead") or reported.get("lockstep_found_dead") or []))
    killed = set(str(h) for h in (reported.get("lockstep_killed_hosts") or []))
    play_of, play = [], None
    for rec in records:  # the play each record belongs to
        play = rec.get("play") if rec.get("event") == "play_started" else play
        play_of.append(play)
    times = [record_time(rec) for rec in records]
    lanes = []
    for host in hosts:
        events = []
        known = None
        staged = False
        for i, rec in enumerate(records):
            ev = rec.get("event")
            if i in in_wave:  # the wave's own events come from waves_of; what the host runs is still known
                if ev == "host_state" and rec.get("host") == host and _host_version(rec) is not None:
                    known = _host_version(rec)
                continue
            when = times[i]
            if ev == "host_state" and rec.get("host") == host:
                version = _host_version(rec)
                play = str(play_of[i] or "")
                if known is None:
                    events.append(("found", when, f"found on {version if version is not None else '-'}",
                                   rec.get("task")))
                elif "stage" in play.lower() and not staged:
                    events.append(("staged", when, "staged", rec.get("task")))
                    staged = True
                elif version != known:
                    events.append(("state", when, f"runs {version if version is not None else '-'}", rec.get("task")))
                known = version if version is not None else known
            elif ev == "gate":
                halted = {h.get("host"): h.get("message") for h in rec.get("halted") or [] if isinstance(h, dict)}
                if host in halted:
                    events.append(("halted", when, f"HALTED by gate {rec.get('gate')}: "
                                                   f"{halted[host] or rec.get('message') or ''}", None))
                elif host in (rec.get("hosts") or {}):
                    if rec.get("passed"):
                        events.append(("gate", when, f"{rec.get('gate')} \u2713", rec.get("message")))
                    else:
                        events.append(("not-proven", when, f"{rec.get('gate')} halted (not on this host)",
                                       rec.get("message")))
            elif ev in ("host_failed", "host_unreachable") and rec.get("host") == host and not rec.get("ignored"):
                if not _echo_of_gate(rec):
                    what = "unreachable" if ev == "host_unreachable" else "failed"
                    events.append(("failed", when, f"{what}: {rec.get('message') or ''}", rec.get("task")))
            elif (ev == "rollback_step" and rec.get("host") == host and rec.get("status") == "failed"
                  and not _echo_of_gate(rec)):
                events.append(("failed", when, f"rollback step failed: {rec.get('task') or ''}", rec.get("message")))
        for wave in waves:
            for kind, when, label, title in wave["events"].get(host, []):
                prefix = "{} {}".format("back" if wave["back"] else "wave", wave["number"])
                events.append((kind, when, f"{prefix}: {label}", title))
        end = record_time(finish) if finish else None
        if host in killed:
            events.append(("halted", end, "taken out of the load balancer (kill switch)", None))
        if host in found_dead:
            events.append(("dead", end, "found dead", "not serving what it served before; not changed by this "
                                                      "release"))
        events.sort(key=lambda ev: (ev[1] is None, ev[1] or 0))
        final = final_hosts.get(host) or {}
        lanes.append({"host": host, "before": final.get("before", first_seen.get(host)),
                      "after": final.get("after", last_seen.get(host)), "result": final.get("result"),
                      "phase": final.get("phase"), "events": events, "dead": host in found_dead})
    return lanes


def gates_of(records, halted_by):
    """Every gate's verdict, in order, and which is the halting one: the first failed gate of the halt's name (the
    one naming its host, when one does). A halt with no failed gate record of its name (a task of the phase failed:
    a smoke command, a switch) is shown as its own row, where the phase first failed."""
    rows = []
    for i, rec in enumerate(records):
        if rec.get("event") == "gate":
            rows.append({"i": i, "kind": "gate", "rec": rec, "halting": False})
        elif rec.get("event") == "audit":
            rows.append({"i": i, "kind": "audit", "rec": rec, "halting": False})
    if not halted_by:
        return rows
    name = halted_by.get("gate")
    failed = [r for r in rows if r["kind"] == "gate" and r["rec"].get("gate") == name and not r["rec"].get("passed")]
    naming = [r for r in failed if halted_by.get("host") in
              [h.get("host") for h in r["rec"].get("halted") or [] if isinstance(h, dict)]]
    chosen = (naming or failed or [None])[0]
    if chosen is not None:
        chosen["halting"] = True
        return rows
    phase = halted_by.get("phase")
    at = next((i for i, rec in enumerate(records) if rec.get("event") in ("host_failed", "host_unreachable")
               and not rec.get("ignored") and (phase is None or rec.get("phase") == phase)), None)
    if at is None:
        at = max([r["i"] for r in rows], default=len(records) - 1)
    synthetic = {"event": "gate", "gate": name, "passed": False, "phase": phase, "ts": records[at].get("ts") if
                 records else None, "message": None if halted_by.get("host") else halted_by.get("message"),
                 "halted": [{"host": halted_by.get("host"), "message": halted_by.get("message")}]}
    rows.append({"i": at + 0.5, "kind": "halt", "rec": synthetic, "halting": True})
    rows.sort(key=lambda r: r["i"])
    return rows


def overrides_of(records):
    """The safety valves the run used (``lockstep_allow_*`` extra vars with their ``lockstep_*_reason``) and what the
    gates recorded of them (the flag-reuse verdict)."""
    start = history.first_of(records, "release_started") or {}
    extra = start.get("extra_vars") if isinstance(start.get("extra_vars"), dict) else {}
    found = []
    for key in sorted(extra):
        m = re.match(r"^lockstep_allow_(\w+)$", key)
        value = extra[key]
        if m and (value is True or str(value).strip().lower() in ("true", "yes", "on", "1")):
            found.append({"name": key, "reason": extra.get(f"lockstep_{m.group(1)}_reason"), "source": "extra vars"})
    for rec in records:
        if rec.get("event") == "gate" and rec.get("flags") and "allowed" in str(rec["flags"]).lower():
            found.append({"name": f"gate {rec.get('gate')}: flags", "reason": rec["flags"], "source": "gate"})
    return found


def build(records, problem=None):
    """Everything the page shows, from the records alone (``problem``: see :func:`render`)."""
    summary = history.summarize(records, problem)
    finish = history.last_of(records, "release_finished")
    start = history.first_of(records, "release_started")
    t0 = record_time(start) if start else (record_time(records[0]) if records else None)
    t_end = record_time(records[-1]) if records else None
    complete = bool(records) and records[-1].get("event") in ledger.COMPLETE_EVENTS
    finished = finish is not None or history.first_of(records, "lock_broken") is not None
    spans = phase_spans(records)
    waves = waves_of(records, spans, finished)
    hosts = hosts_of(records, finish, waves)
    reported = {}
    for rec in records:
        if rec.get("event") == "status_reported":
            reported.update(rec.get("data") or {})
    return {
        "summary": summary, "start": start or {}, "finish": finish, "t0": t0, "t_end": t_end,
        "complete": complete, "finished": finished, "stages": stages_of(spans), "waves": waves,
        "lanes": lanes_of(records, finish, waves, hosts), "gates": gates_of(records, summary["halted_by"]),
        "overrides": overrides_of(records), "reported": reported,
        "failures": [r for r in records if (r.get("event") in ("host_failed", "host_unreachable")
                                            and not r.get("ignored"))
                     or (r.get("event") == "rollback_step" and r.get("status") == "failed")],
        "records": records, "open_stage": next((s for s in reversed(spans) if s["open"]), None),
    }


# --- HTML ------------------------------------------------------------------------------------------------------

CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--warn:#bf8700;--mute:#57606a;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1f2328}
main{max-width:1280px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line)}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.facts dt{color:var(--mute)}dl.facts dd{margin:0;word-break:break-word}
.badge{display:inline-block;padding:1px 10px;border-radius:12px;font-weight:600;color:#fff;background:var(--mute)}
.badge.good{background:var(--ok)}.badge.warn{background:var(--warn)}.badge.bad{background:var(--bad)}
.badge.incomplete{background:#8250df}
.box{border:1px solid var(--line);border-left:6px solid var(--mute);padding:8px 12px;margin:10px 0;background:var(--bg)}
.box.ok{border-left-color:var(--ok)}.box.bad{border-left-color:var(--bad);background:#fff5f5}
.box.incomplete{border-left-color:#8250df;background:#fbf7ff;font-weight:600}
.box.halt{border-left-color:var(--bad);background:#fff5f5}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600}
td.msg{word-break:break-word;max-width:640px}
.pass{color:var(--ok);font-weight:600}.fail{color:var(--bad);font-weight:700}.mute{color:var(--mute)}
tr.halted td{background:#fff8f8}
tr.halting td{background:#ffebe9;border-top:2px solid var(--bad);border-bottom:2px solid var(--bad)}
.here{display:inline-block;background:var(--bad);color:#fff;font-weight:700;padding:0 6px;border-radius:4px;
margin-left:6px;font-size:12px}
.chart{margin:8px 0}
.row{display:grid;grid-template-columns:220px 1fr 90px;gap:8px;align-items:center;margin:2px 0}
.row .name{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.track{position:relative;height:18px;background:var(--bg);border:1px solid var(--line);border-radius:3px}
.bar{position:absolute;top:2px;bottom:2px;min-width:3px;border-radius:2px;background:#54aeff}
.bar.wave{background:#4ac26b}.bar.back{background:#d4a72c}.bar.halted{background:var(--bad)}
.bar.open{background:repeating-linear-gradient(45deg,#8250df,#8250df 4px,#c297ff 4px,#c297ff 8px)}
.bar.rollback{background:#d4a72c}.mark{position:absolute;top:-3px;bottom:-3px;width:3px;background:var(--bad)}
.lane{border:1px solid var(--line);border-radius:6px;padding:8px 12px;margin:8px 0}
.lane.dead{border-color:var(--bad)}
.lane h3{margin:0 0 4px;font-size:15px}.lane h3 .v{font-weight:400;color:var(--mute);margin-left:8px}
.lane .track{height:14px;margin:4px 0}.lane .dot{position:absolute;top:1px;width:10px;height:10px;margin-left:-5px;
border-radius:50%;background:#54aeff;border:1px solid #fff}
ol.events{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px}
ol.events li{border:1px solid var(--line);border-radius:12px;padding:0 8px;font-size:12.5px;background:#fff}
.ev-drained,.dot.ev-drained{background:#ddf4ff}.ev-switched,.dot.ev-switched{background:#dafbe1}
.ev-put-back,.dot.ev-put-back{background:#ddf4ff}.ev-proven,.dot.ev-proven{background:#aceebb}
.ev-rolled-back,.dot.ev-rolled-back{background:#fff8c5}.ev-halted,.dot.ev-halted{background:#ffcecb}
.ev-failed,.dot.ev-failed{background:#ffcecb}.ev-dead,.dot.ev-dead{background:#ff8182}
.ev-not-proven{background:#fff1e5}.ev-open,.dot.ev-open{background:#e6d9ff}.ev-gate{background:#f6f8fa}
ol.events li.ev-halted,ol.events li.ev-failed,ol.events li.ev-dead{font-weight:600}
.t{color:var(--mute);margin-right:4px}
details{margin:8px 0}summary{cursor:pointer;color:#0969da}
footer{margin-top:32px;color:var(--mute);font-size:12px}
"""


def _status_class(status):
    if status == history.INCOMPLETE:
        return "incomplete"
    if status in GOOD:
        return "good"
    if status in WARN:
        return "warn"
    return "bad"


def _pct(when, t0, total):
    if when is None or t0 is None or not total:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (when - t0).total_seconds() / total))


def _offset(when, t0):
    seconds = seconds_between(t0, when)
    return "+" + format_duration(seconds) if seconds is not None else ""


def _time(when):
    return format_time(when, date=False) if when is not None else "-"


def _bar(start, end, t0, total, css, title):
    left = _pct(start, t0, total)
    width = max(0.25, _pct(end, t0, total) - left)
    return (f'<div class="bar {e(css)}" style="left:{left:.3f}%;width:{width:.3f}%" title="{e(title)}"></div>')


def _header(model, verification, source):
    s = model["summary"]
    start, finish = model["start"], model["finish"]
    status = s["status"]
    out = ["<header id=\"summary\">",
           f"<h1>lockstep {e(s['kind'])} report <span id=\"status\" class=\"badge {_status_class(status)}\">"
           f"{e(status)}</span></h1>",
           '<dl class="facts">']

    def fact(label, value, raw=False, ident=None):
        attr = f' id="{ident}"' if ident else ""
        out.append(f"<dt>{e(label)}</dt>\n<dd{attr}>{value if raw else e(value if value not in (None, '') else '-')}"
                   "</dd>")

    fact("run", s["run"], ident="run-id")
    fact("playbook", s["playbook"])
    fact("by", s["who"])
    fact("started (UTC)", format_time(model["t0"]) + (f".{model['t0'].microsecond // 1000:03d}" if model["t0"]
                                                      else ""))
    if finish is not None:
        fact("finished (UTC)", format_time(record_time(finish)))
    else:
        fact("last record (UTC)", format_time(model["t_end"]))
    fact("duration", format_duration(s["duration_seconds"]) + ("" if model["finished"] else " (up to the last record)"))
    fact("version", history.versions_text(s) + (" (as the hosts reported it)" if s["versions_observed"] else ""),
         ident="versions")
    fact("target version", s["target"])
    if start.get("limit"):
        fact("limit", start.get("limit"))
    if start.get("check_mode"):
        fact("check mode", "yes: nothing was changed")
    if finish is not None:
        fact("failures / unreachable", f"{finish.get('failures', '-')} / {finish.get('unreachable', '-')}")
        if finish.get("status_consistent") is False:
            fact("status consistent", "NO: the playbook reported a status Ansible's counts contradict")
    partial = model["reported"].get("lockstep_partial_reason")
    if partial:
        fact("partial because", partial)
    if source:
        fact("ledger", source)
    out.append("</dl>")
    halted = s["halted_by"]
    if halted:
        where = f" in phase {e(halted.get('phase'))}" if halted.get("phase") else ""
        out.append(f'<div class="box halt" id="halt"><strong>Halted by gate {e(halted.get("gate") or "?")} on host '
                   f'{e(halted.get("host") or "-")}</strong>{where}: {e(halted.get("message") or "")}</div>')
    if not model["finished"]:
        stage = model["open_stage"]
        last = model["records"][-1].get("event") if model["records"] else "-"
        inside = f", inside phase {stage['phase']}" if stage else ""
        out.append(f'<div class="box incomplete" id="incomplete">INCOMPLETE: the run stopped recording at '
                   f'{e(format_time(model["t_end"]))} UTC (controller killed?). No release_finished record: the '
                   f"page shows what the ledger recorded up to its last record ({e(last)}{e(inside)}).</div>")
    if model.get("problem"):
        out.append(f'<div class="box bad" id="unreadable">UNREADABLE: {e(model["problem"])}; the page shows the '
                   f'{len(model["records"])} record(s) before it.</div>')
    if verification is None:
        out.append('<div class="box" id="verification">Ledger not verified (no ledger file was given).</div>')
    else:
        ok = bool(verification.get("ok"))
        word = "Ledger verifies" if ok else "Ledger does NOT verify"
        out.append(f'<div class="box {"ok" if ok else "bad"}" id="verification"><strong>{word}:</strong> '
                   f'{e(verification.get("text"))}</div>')
    out.append("</header>")
    return out


def _timeline(model):
    t0, t_end = model["t0"], model["t_end"]
    total = seconds_between(t0, t_end) or 0.0
    out = ['<section id="timeline"><h2>Timeline</h2>']
    if not model["stages"] and not model["waves"]:
        out.append('<p class="mute">No phase was recorded.</p></section>')
        return out
    out.append(f'<p class="mute">{e(_time(t0))} to {e(_time(t_end))} UTC, {e(format_duration(total))}.</p>')
    out.append('<div class="chart">')
    halt_at = None
    for row in model["gates"]:
        if row["halting"]:
            halt_at = record_time(row["rec"])
    for stage in model["stages"]:
        css = "open" if stage["open"] and not model["finished"] else ("rollback" if stage["name"] == "rollback" else "")
        title = f"{stage['name']}: {_time(stage['start'])} - {_time(stage['end'])}"
        mark = ""
        if halt_at is not None and stage["start"] and stage["end"] and stage["start"] <= halt_at <= stage["end"]:
            mark = f'<div class="mark" style="left:{_pct(halt_at, t0, total):.3f}%" title="halt"></div>'
        out.append(f'<div class="row stage"><span class="name">phase {e(stage["name"])}</span><div class="track">'
                   f'{_bar(stage["start"], stage["end"], t0, total, css, title)}{mark}</div>'
                   f'<span class="mono">{e(format_duration(seconds_between(stage["start"], stage["end"])))}</span>'
                   "</div>")
    for wave in model["waves"]:
        gate = wave["gate"]
        css = "back" if wave["back"] else "wave"
        if gate is not None and not gate.get("passed"):
            css = "halted"
        if wave["in_progress"]:
            css = "open"
        label = "{} {}: {}".format("back" if wave["back"] else "wave", wave["number"], ", ".join(wave["hosts"]))
        out.append(f'<div class="row wave-row"><span class="name" title="{e(label)}">{e(label)}</span>'
                   f'<div class="track">{_bar(wave["start"], wave["end"], t0, total, css, label)}</div>'
                   f'<span class="mono">{e(format_duration(seconds_between(wave["start"], wave["end"])))}</span>'
                   "</div>")
    out.append("</div>")
    out.append("<table><thead><tr><th>phase</th><th>start (UTC)</th><th>end</th><th>duration</th></tr></thead><tbody>")
    for stage in model["stages"]:
        end = _time(stage["end"]) + (" (still in it at the last record)" if stage["open"] and not model["finished"]
                                     else "")
        out.append(f'<tr class="stage"><td>{e(stage["name"])}</td><td class="mono">{e(_time(stage["start"]))}</td>'
                   f'<td class="mono">{e(end)}</td>'
                   f'<td class="mono">{e(format_duration(seconds_between(stage["start"], stage["end"])))}</td></tr>')
    out.append("</tbody></table></section>")
    return out


def _waves(model):
    out = ['<section id="waves"><h2>Waves</h2>']
    if not model["waves"]:
        out.append('<p class="mute">No wave ran.</p></section>')
        return out
    out.append("<table><thead><tr><th>wave</th><th>direction</th><th>hosts</th><th>start (UTC)</th><th>end</th>"
               "<th>duration</th><th>gate</th><th>done</th></tr></thead><tbody>")
    for n, wave in enumerate(model["waves"]):
        gate = wave["gate"]
        if gate is None:
            verdict = ('<span class="fail">in progress when the recording stopped</span>' if wave["in_progress"]
                       else '<span class="fail">no gate: halted before it</span>')
        elif gate.get("passed"):
            verdict = f'<span class="pass">{e(gate.get("gate"))} passed</span>'
        else:
            verdict = f'<span class="fail">{e(gate.get("gate"))} HALTED</span>: {e(gate.get("message"))}'
        done = f"{wave['done']}/{wave['total']}" if wave["done"] is not None else "-"
        direction = "back" if wave["back"] else "forward"
        if wave["version"]:
            direction += f" ({wave['version']})"
        css = "wave" + (" halted" if gate is not None and not gate.get("passed") else "")
        back = "true" if wave["back"] else "false"
        out.append(f'<tr class="{css}" id="wave-{n}" data-wave="{e(wave["number"])}" data-back="{back}">'
                   f'<td>{e(wave["number"])}{"/" + e(wave["count"]) if wave["count"] else ""}</td>'
                   f'<td>{e(direction)}</td><td>{e(", ".join(wave["hosts"]))}</td>'
                   f'<td class="mono">{e(_time(wave["start"]))}</td><td class="mono">{e(_time(wave["end"]))}</td>'
                   f'<td class="mono">{e(format_duration(seconds_between(wave["start"], wave["end"])))}</td>'
                   f'<td class="msg">{verdict}</td><td>{e(done)}</td></tr>')
    out.append("</tbody></table></section>")
    return out


def _lanes(model):
    t0, total = model["t0"], seconds_between(model["t0"], model["t_end"]) or 0.0
    out = ['<section id="hosts"><h2>Hosts</h2>']
    if not model["lanes"]:
        out.append('<p class="mute">No host was recorded.</p></section>')
        return out
    for n, lane in enumerate(model["lanes"]):
        css = "lane" + (" dead" if lane["dead"] else "")
        result = f" result {lane['result']}" if lane["result"] else ""
        phase = f" (last phase {lane['phase']})" if lane["phase"] else ""
        out.append(f'<div class="{css}" id="lane-{n}" data-host="{e(lane["host"])}">'
                   f'<h3><span class="host">{e(lane["host"])}</span><span class="v">'
                   f'{e(lane["before"] if lane["before"] is not None else "-")} \u2192 '
                   f'{e(lane["after"] if lane["after"] is not None else "-")}{e(result)}{e(phase)}</span></h3>')
        dots = "".join(f'<span class="dot ev-{e(event[0])}" style="left:{_pct(event[1], t0, total):.3f}%" '
                       f'title="{e(event[2])}"></span>' for event in lane["events"] if event[1] is not None)
        out.append(f'<div class="track">{dots}</div><ol class="events">')
        for kind, when, label, title in lane["events"]:
            tip = f"{_time(when)} UTC" + (f" - {title}" if title else "")
            out.append(f'<li class="ev-{e(kind)}" title="{e(tip)}"><span class="t">{e(_offset(when, t0))}</span>'
                       f"{e(label)}</li>")
        out.append("</ol></div>")
    out.append("</section>")
    return out


def _gates(model):
    t0 = model["t0"]
    out = ['<section id="gates"><h2>Gates</h2>']
    if not model["gates"]:
        out.append('<p class="mute">No gate was recorded.</p></section>')
        return out
    out.append("<table><thead><tr><th>time</th><th>phase</th><th>gate</th><th>verdict</th><th>hosts</th>"
               "<th>message</th></tr></thead><tbody>")
    for row in model["gates"]:
        rec = row["rec"]
        when = record_time(rec)
        if row["kind"] == "audit":
            name = "audit"
            passed = bool(rec.get("passed"))
            halted = rec.get("problems") or []
            message = "version {}".format(rec.get("version") if rec.get("version") is not None else "-")
        else:
            name = rec.get("gate")
            passed = bool(rec.get("passed"))
            halted = rec.get("halted") or []
            message = rec.get("message") or ""
        classes = ["gate"]
        if not passed:
            classes.append("halted")
        if row["halting"]:
            classes.append("halting")
        verdict = '<span class="pass">passed</span>' if passed else '<span class="fail">HALTED</span>'
        if row["halting"]:
            verdict += f'<span class="here">{HALTED_HERE}</span>'
        detail = [e(message)]
        for item in halted:
            if isinstance(item, dict):
                detail.append(f'<br><strong>{e(item.get("host"))}</strong>: {e(item.get("message"))}')
        if rec.get("flags"):
            detail.append(f'<br><span class="mute">flags:</span> {e(rec.get("flags"))}')
        if row["kind"] == "halt":
            detail.append('<br><span class="mute">(the halt the run recorded; no gate record of this name '
                          "failed: a task of its phase did)</span>")
        hosts = rec.get("hosts")
        count = len(hosts) if isinstance(hosts, dict) else "-"
        ident = ' id="halting-gate"' if row["halting"] else ""
        out.append(f'<tr class="{" ".join(classes)}"{ident} data-gate="{e(name)}"><td class="mono" '
                   f'title="{e(_time(when))} UTC">{e(_offset(when, t0))}</td><td>{e(rec.get("phase"))}</td>'
                   f'<td>{e(name)}</td><td>{verdict}</td><td>{e(count)}</td><td class="msg">{"".join(detail)}</td>'
                   "</tr>")
    out.append("</tbody></table></section>")
    return out


def _overrides(model):
    out = ['<section id="overrides"><h2>Overrides</h2>']
    if not model["overrides"]:
        out.append('<p class="mute">None: no safety valve was opened.</p>')
    else:
        out.append("<table><thead><tr><th>override</th><th>reason</th><th>from</th></tr></thead><tbody>")
        for item in model["overrides"]:
            reason = e(item["reason"]) if item["reason"] else '<span class="fail">no reason given</span>'
            out.append(f'<tr class="override"><td>{e(item["name"])}</td><td class="msg">{reason}</td>'
                       f'<td>{e(item["source"])}</td></tr>')
        out.append("</tbody></table>")
    extra = model["start"].get("extra_vars")
    if isinstance(extra, dict) and extra:
        out.append("<details><summary>extra vars of the run (secrets redacted by the ledger)</summary><table>")
        for key in sorted(extra):
            out.append(f'<tr><td class="mono">{e(key)}</td><td class="mono msg">{e(extra[key])}</td></tr>')
        out.append("</table></details>")
    out.append("</section>")
    return out


def _dead(model):
    finish = model["finish"] or {}
    dead = list(finish.get("found_dead") or model["reported"].get("lockstep_found_dead") or [])
    killed = list(model["reported"].get("lockstep_killed_hosts") or [])
    if not dead and not killed:
        return []
    out = ['<section id="found-dead"><h2>Found dead, taken out</h2>']
    if dead:
        out.append(f'<p class="box bad">Found dead (not serving what they served before; not changed by this '
                   f'release): <strong>{e(", ".join(str(h) for h in dead))}</strong></p>')
    if killed:
        out.append(f'<p class="box bad">Taken out of the load balancer by the kill switch (confirmed by it): '
                   f'<strong>{e(", ".join(str(h) for h in killed))}</strong></p>')
    out.append("</section>")
    return out


def _failures(model):
    t0 = model["t0"]
    failures = model["failures"]
    out = ['<section id="failures"><h2>Failures</h2>']
    if not failures:
        out.append('<p class="mute">No task failed.</p></section>')
        return out
    out.append(f"<details><summary>{len(failures)} failed or unreachable task result(s)</summary><table><thead><tr>"
               "<th>time</th><th>host</th><th>phase</th><th>task</th><th>message</th></tr></thead><tbody>")
    for rec in failures:
        what = rec.get("message") or ""
        if rec.get("event") == "host_unreachable":
            what = "unreachable: " + what
        elif rec.get("event") == "rollback_step":
            what = "rollback step failed" + (": " + what if what else "")
        out.append(f'<tr><td class="mono">{e(_offset(record_time(rec), t0))}</td><td>{e(rec.get("host"))}</td>'
                   f'<td>{e(rec.get("phase"))}</td><td>{e(rec.get("task"))}</td><td class="msg">{e(what)}</td></tr>')
    out.append("</tbody></table></details></section>")
    return out


def _records(model):
    records = model["records"]
    details = getattr(ledger, "_details", lambda rec: "")
    out = ['<section id="records"><h2>Records</h2>',
           f"<details><summary>all {len(records)} records of the ledger</summary><table><thead><tr><th>seq</th>"
           "<th>time (UTC)</th><th>event</th><th>phase</th><th>host</th><th>details</th></tr></thead><tbody>"]
    for rec in records:
        host = rec.get("host")
        if host is None and rec.get("event") in ("gate", "wave", "audit"):
            host = rec.get("reporter")
        try:
            text = details(rec)
        except Exception:  # a record of a shape this version does not know: its event is enough
            text = ""
        out.append(f'<tr><td>{e(rec.get("seq"))}</td><td class="mono">{e(_time(record_time(rec)))}</td>'
                   f'<td>{e(rec.get("event"))}</td><td>{e(rec.get("phase"))}</td><td>{e(host)}</td>'
                   f'<td class="msg">{e(text)}</td></tr>')
    out.append("</tbody></table></details></section>")
    return out


def render(records, verification, source=None, problem=None):
    """The page (a str) of a ledger's ``records`` (dicts, as :func:`ledger.read_records` returns them).

    ``verification`` is what :func:`verify_ledger` returns (``{"ok": bool, "text": str}``), or None (not verified);
    ``source`` names the ledger (shown, escaped); ``problem`` is what :func:`history.read_ledger` found wrong with
    the file (the page says it is unreadable from there)."""
    records = [r for r in records if isinstance(r, dict)]
    model = build(records, problem)
    model["problem"] = problem
    s = model["summary"]
    title = "lockstep {} {}: {}".format(s["kind"], s["run"] or "", s["status"])
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             # Nothing to load and nothing to run: even a string the escaping missed could not fetch or execute.
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
             "img-src 'none'; base-uri 'none'; form-action 'none'\">",
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{e(title)}</title><style>{CSS}</style></head><body><main>"]
    parts += _header(model, verification, source)
    parts += _timeline(model)
    parts += _waves(model)
    parts += _lanes(model)
    parts += _gates(model)
    parts += _overrides(model)
    parts += _dead(model)
    parts += _failures(model)
    parts += _records(model)
    parts.append("<footer>Built by <code>bin/lockstep report</code> from the ledger's records alone "
                 "(docs/report.md); times are UTC, offsets from the first record.</footer></main></body></html>")
    return "\n".join(parts) + "\n"


def default_out(ledger_path):
    """``<ledger without .jsonl>.html`` next to the ledger."""
    base = ledger_path[:-len(ledger.LEDGER_SUFFIX)] if ledger_path.endswith(ledger.LEDGER_SUFFIX) else ledger_path
    return base + ".html"


def _write(ledger_path, out_path, key, anchor):
    out_path = out_path or default_out(ledger_path)
    records, problem = history.read_ledger(ledger_path)
    check = verify_ledger(ledger_path, key=key, anchor=anchor)
    page = render(records, check, ledger_path, problem=problem)
    directory = os.path.dirname(os.path.abspath(out_path))
    fd, tmp = tempfile.mkstemp(prefix=".lockstep-report-", suffix=".html", dir=directory)  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, ledger.FILE_MODE)
        os.replace(tmp, out_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return out_path, records, problem, check


def write_report(ledger_path, out_path=None, key=None, anchor=None):
    """Write the page of the ledger at ``ledger_path`` to ``out_path`` (default :func:`default_out`), mode 0600 like
    the ledger (it holds what the ledger holds), replaced atomically; verified with ``key`` and ``anchor`` as
    :func:`verify_ledger` does (default: the configured ones). Returns ``out_path``."""
    return _write(ledger_path, out_path, key, anchor)[0]


def cmd_report(args, resolve, key_of):
    """``bin/lockstep report [LEDGER] [--out FILE]``: exit 0 when the page is written and the ledger verifies, 1
    when it is written but the ledger does not verify (or is unreadable)."""
    path = resolve(args.path)
    out, records, problem, check = _write(path, args.out, key_of(args), args.anchor)
    summary = history.summarize(records, problem, path)
    print(f"{out}: {summary['kind']} {summary['status']}, {len(records)} records")
    if problem:
        print(f"WARNING: {path}: {problem}", file=sys.stderr)
    if not check["ok"]:
        print(f"WARNING: {path}: {check['text']}", file=sys.stderr)
        return 1
    return 1 if problem else 0


def add_command(subparsers, resolve, key_of, path_help, key_help):
    """``report`` on ``bin/lockstep``'s subparsers."""
    p = subparsers.add_parser("report", help="write one self-contained HTML page of a release from its ledger")
    p.add_argument("path", nargs="?", metavar="LEDGER", help=path_help)
    p.add_argument("--out", help="the page to write (default: the ledger's name with .html, next to it)")
    p.add_argument("--anchor", help="the ledger's anchor file, as for ledger verify")
    p.add_argument("--key-file", help=key_help)
    p.set_defaults(func=lambda args: cmd_report(args, resolve, key_of))
    return p

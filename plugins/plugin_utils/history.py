# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release history of a ledger directory (``bin/lockstep ledger list [DIR] [--json]``) and the one-line summary
of a ledger it is made of, also the header of ``bin/lockstep report`` (plugins/plugin_utils/report.py).

Fed by the ledgers' records alone (docs/ledger.md): a ledger whose run never wrote its ``release_finished`` (the
controller was killed) is listed as ``INCOMPLETE`` with what it recorded up to then; a file that is not a ledger of
JSON records is listed as ``unreadable``, never a crash. Stdlib only.
"""

from __future__ import annotations

import datetime
import json
import os
import re

from ansible_collections.lockstep.release.plugins.module_utils import ledger

INCOMPLETE = "INCOMPLETE"
UNREADABLE = "unreadable"
LIST_HEADERS = ("when (UTC)", "who", "kind", "target", "version", "status", "duration", "halted by", "ledger")
# The UTC time the callback puts first in a ledger's file name (``<yyyymmddThhmmssffffffZ>-<playbook>-<pid>.jsonl``)
_NAME_TIME = re.compile(r"^(\d{8}T\d{6})(\d{0,6})Z")


# --- reading ---------------------------------------------------------------------------------------------------

def read_ledger(path):
    """``(records, problem)``: the JSON records of the ledger at ``path`` up to its first line that is not one, and
    what is wrong with it (None when every line is a record). Never raises for a bad file: ``problem`` says why."""
    records = []
    try:
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as ex:
                    return records, f"line {lineno} is not a JSON record ({ex})"
                if not isinstance(rec, dict) or not isinstance(rec.get("event"), str):
                    return records, f"line {lineno} is not a ledger record (no event)"
                records.append(rec)
    except OSError as ex:
        return records, f"cannot read it: {ex.strerror or ex}"
    if not records:
        return records, "no record in it"
    return records, None


# --- time ------------------------------------------------------------------------------------------------------

def record_time(record):
    """The UTC time (an aware datetime) a record was written, or None: ``ts`` (``time`` in the guard's records)."""
    if not isinstance(record, dict):
        return None
    return parse_time(record.get("ts") or record.get("time"))


def parse_time(value):
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC)


def name_time(path):
    """The UTC time in a ledger's file name, or None."""
    m = _NAME_TIME.match(os.path.basename(path))
    if not m:
        return None
    try:
        when = datetime.datetime.strptime(m.group(1), "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    micro = int((m.group(2) or "0").ljust(6, "0"))
    return when.replace(microsecond=micro, tzinfo=datetime.UTC)


def format_time(when, date=True):
    """``2026-12-04 01:48:53`` (UTC), or ``01:48:53.582`` with ``date=False``; ``-`` for None."""
    if when is None:
        return "-"
    if date:
        return when.strftime("%Y-%m-%d %H:%M:%S")
    return when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}"


def format_duration(seconds):
    """``0.4s``, ``12.3s``, ``4m 05s``, ``1h 02m 03s``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def seconds_between(start, end):
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


# --- one ledger ------------------------------------------------------------------------------------------------

def first_of(records, event):
    return next((r for r in records if r.get("event") == event), None)


def last_of(records, event):
    return next((r for r in reversed(records) if r.get("event") == event), None)


def first_halt(records):
    """The halt as the callback derives it when no ``release_finished`` says: the first gate that did not pass,
    its first halted host and that host's message (else the gate's). None when every gate passed."""
    for rec in records:
        if rec.get("event") == "gate" and not rec.get("passed"):
            halted = rec.get("halted") or []
            first = halted[0] if halted and isinstance(halted[0], dict) else {}
            return {"gate": rec.get("gate"), "host": first.get("host"),
                    "message": first.get("message") or rec.get("message"), "phase": rec.get("phase")}
    return None


def _one_version(values):
    values = [v for v in values if v not in (None, "")]
    if not values:
        return None
    distinct = sorted(set(str(v) for v in values))
    if len(distinct) == 1:
        return distinct[0]
    return "mixed ({})".format(", ".join(distinct))


def observed_versions(records):
    """``({host: first version}, {host: last version})`` from the hosts' ``host_state`` records."""
    first, last = {}, {}
    for rec in records:
        if rec.get("event") != "host_state" or not rec.get("host"):
            continue
        version = ledger.state_version(rec.get("state"))
        if version is None:
            continue
        first.setdefault(rec["host"], version)
        last[rec["host"]] = version
    return first, last


def kind_of(records):
    """What the run was: the stem of its playbook (``release``, ``rollback``, ``halt``, ``verify``, ...), or
    ``lock-break``, ``fallback`` (a fallback ledger), ``guard`` for the ledgers without a run."""
    start = first_of(records, "release_started")
    if start is not None and start.get("playbook"):
        return os.path.splitext(os.path.basename(str(start["playbook"])))[0]
    if not records:
        return "-"
    first = records[0].get("event")
    return {"lock_broken": "lock-break", "ledger_fallback": "fallback", "guard_fault": "guard"}.get(first, first)


def summarize(records, problem=None, path=None):
    """The summary of one ledger's records (``problem``: what :func:`read_ledger` found wrong; the status is then
    ``unreadable``), as plain data: when, who, kind, versions, status, duration, halt. Pure: only the records."""
    start = first_of(records, "release_started")
    finish = last_of(records, "release_finished")
    lock = first_of(records, "lock_broken")
    head = start or (records[0] if records else {})
    when = record_time(head)
    if when is None and path:
        when = name_time(path)
    last = record_time(records[-1]) if records else None
    end = record_time(finish) if finish is not None else last
    if problem:
        status = UNREADABLE
    elif finish is not None:
        status = finish.get("status") or "-"
    elif lock is not None:
        status = "lock_broken"
    else:
        status = INCOMPLETE
    halted = finish.get("halted_by") if finish is not None else first_halt(records)
    first_seen, last_seen = observed_versions(records)
    reported = finish or {}
    before = reported.get("version_before")
    after = reported.get("version_after")
    derived = False
    if before is None and first_seen:
        before, derived = _one_version(first_seen.values()), True
    if after is None and last_seen:
        after, derived = _one_version(last_seen.values()), True
    user = head.get("user")
    controller = head.get("controller")
    return {
        "ledger": path,
        "file": os.path.basename(path) if path else None,
        "run": head.get("release") or (os.path.splitext(os.path.basename(path))[0] if path else None),
        "when": when.isoformat().replace("+00:00", "Z") if when else None,
        "last_record": last.isoformat().replace("+00:00", "Z") if last else None,
        "user": user,
        "controller": controller,
        "awx_user": head.get("awx_user"),
        "awx_job_id": head.get("awx_job_id"),
        "who": who(user, controller, head.get("awx_user"), head.get("awx_job_id")),
        "kind": kind_of(records),
        "playbook": head.get("playbook"),
        "target": head.get("version"),
        "version_before": before,
        "version_after": after,
        "versions_observed": derived,
        "status": status,
        "complete": bool(records) and records[-1].get("event") in ledger.COMPLETE_EVENTS,
        "duration_seconds": seconds_between(when, end),
        "halted_by": halted if isinstance(halted, dict) else None,
        "found_dead": list(reported.get("found_dead") or []),
        "records": len(records),
        "problem": problem,
    }


def who(user, controller, awx_user=None, awx_job_id=None):
    text = "{}@{}".format(user or "?", controller or "?") if (user or controller) else "-"
    if awx_user or awx_job_id:
        text = "{} (AWX{}{}) {}".format(awx_user or "?", " job " if awx_job_id else "", awx_job_id or "", text)
    return text


def halted_text(halted):
    """``gate on host`` (``-`` when not halted)."""
    if not halted:
        return "-"
    text = str(halted.get("gate") or "?")
    if halted.get("host"):
        text += " on {}".format(halted["host"])
    return text


def versions_text(summary):
    before, after = summary.get("version_before"), summary.get("version_after")
    if before is None and after is None:
        return "-"
    return "{} -> {}".format(before if before is not None else "-", after if after is not None else "-")


# --- a directory -----------------------------------------------------------------------------------------------

def ledger_paths(directory):
    """The ledgers (``*.jsonl`` files) of ``directory``; anything else there is not a ledger and is skipped."""
    paths = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith(ledger.LEDGER_SUFFIX) and os.path.isfile(path):
            paths.append(path)
    return paths


def _sort_key(summary):
    when = parse_time(summary.get("when"))
    if when is None:
        try:
            when = datetime.datetime.fromtimestamp(os.stat(summary["ledger"]).st_mtime, datetime.UTC)
        except (OSError, KeyError, TypeError):
            when = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return (when, summary.get("file") or "")


def ledger_list(directory):
    """One summary (:func:`summarize`) per ledger of ``directory``, newest first. A path that is a file lists that
    ledger alone."""
    paths = [directory] if os.path.isfile(directory) else ledger_paths(directory)
    rows = []
    for path in paths:
        records, problem = read_ledger(path)
        rows.append(summarize(records, problem, path))
    rows.sort(key=_sort_key, reverse=True)
    return rows


def format_list(rows):
    """The history as a plain aligned table, one line per ledger."""
    table = []
    for s in rows:
        table.append((format_time(parse_time(s.get("when"))), s.get("who"), s.get("kind"), s.get("target"),
                      versions_text(s), s.get("status"), format_duration(s.get("duration_seconds")),
                      halted_text(s.get("halted_by")), s.get("file")))
    return ledger.format_table(LIST_HEADERS, table)


def cmd_list(args, default_dir):
    """``bin/lockstep ledger list [DIR] [--json]``: exit 0, 1 when DIR is not there."""
    directory = args.path or os.environ.get("LOCKSTEP_LEDGER_DIR") or default_dir
    if not os.path.exists(directory):
        raise SystemExit(f"lockstep: {directory}: no such ledger directory")
    rows = ledger_list(directory)
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
    elif not rows:
        print(f"no ledger (*.jsonl) in {directory}")
    else:
        print(format_list(rows))
    return 0


def add_list_command(ledger_subparsers, default_dir):
    """``ledger list`` on the ``ledger`` command's subparsers."""
    p = ledger_subparsers.add_parser("list", help="the release history of a ledger directory, newest first")
    p.add_argument("path", nargs="?", metavar="DIR",
                   help="ledger directory (default: $LOCKSTEP_LEDGER_DIR or .lockstep/ledger)")
    p.add_argument("--json", action="store_true", help="one JSON object per ledger instead of the table")
    p.set_defaults(func=lambda args: cmd_list(args, default_dir))
    return p

"""``bin/lockstep report`` and ``bin/lockstep ledger list`` (issue 21 items 2 and 3), without the fleet.

The ledgers are written through the ledger module's writer (tests/unit/_report_ledgers.py: the records a release
writes on the fleet): a clean release, one halted in a wave and rolled back, a refused one, one whose controller was
killed, and one whose messages carry markup. The page is parsed (html.parser) and checked for what it must show;
tests/unit/test_report_browser.py loads the same pages in a real browser.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from html.parser import HTMLParser

import _report_ledgers as L
import pytest

from ansible_collections.lockstep.release.plugins.module_utils import ledger
from ansible_collections.lockstep.release.plugins.plugin_utils import history, report

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCKSTEP = os.path.join(REPO, "bin", "lockstep")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Elements a browser lays out apart: their text is separated from their neighbours' by a space.
BLOCK = {"br", "dd", "div", "dt", "h1", "h2", "h3", "li", "p", "td", "th", "tr"}


@pytest.fixture(autouse=True)
def configuration(tmp_path, monkeypatch):
    """An anchor directory of this test's own (not created unless a ledger is anchored), no ledger key; the
    bin/lockstep processes inherit it."""
    monkeypatch.setenv(ledger.ANCHOR_DIR_ENV, str(tmp_path / "anchors"))
    monkeypatch.delenv(ledger.KEY_ENV, raising=False)
    monkeypatch.delenv(ledger.KEY_FILE_ENV, raising=False)
    monkeypatch.delenv("LOCKSTEP_LEDGER_DIR", raising=False)


class Element:
    def __init__(self, tag, attrs):
        self.tag = tag
        self.attrs = {k: (v if v is not None else "") for k, v in attrs}
        self.parts = []

    @property
    def text(self):
        return re.sub(r"\s+", " ", "".join(self.parts)).strip()

    @property
    def classes(self):
        return self.attrs.get("class", "").split()


class Page(HTMLParser):
    """Every element of a page with its attributes and its text (its descendants' included)."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements = []
        self._open = []
        self.feed(text)
        self.close()
        assert not self._open, f"unclosed elements: {[e.tag for e in self._open]}"

    def _apart(self, tag):
        if tag in BLOCK:
            for el in self._open:
                el.parts.append(" ")

    def handle_starttag(self, tag, attrs):
        self._apart(tag)
        el = Element(tag, attrs)
        self.elements.append(el)
        if tag not in VOID:
            self._open.append(el)

    def handle_startendtag(self, tag, attrs):
        self.elements.append(Element(tag, attrs))

    def handle_endtag(self, tag):
        self._apart(tag)
        if tag in VOID:
            return
        assert self._open and self._open[-1].tag == tag, f"</{tag}> closes <{self._open[-1].tag if self._open else ''}>"
        self._open.pop()

    def handle_data(self, data):
        for el in self._open:
            el.parts.append(data)

    def by_class(self, name):
        return [el for el in self.elements if name in el.classes]

    def by_id(self, ident):
        found = [el for el in self.elements if el.attrs.get("id") == ident]
        assert len(found) <= 1, f"id {ident} twice"
        return found[0] if found else None

    def lanes(self):
        return {el.attrs["data-host"]: el for el in self.by_class("lane")}

    def waves(self):
        return [el for el in self.by_class("wave") if el.tag == "tr"]


def make(tmp_path, records, name="20260102T030405000000Z-release-4242.jsonl", anchored=False):
    path = str(tmp_path / "ledger" / name)
    anchor = ledger.anchor_path(str(tmp_path / "anchors"), path) if anchored else None
    return L.write(path, records, anchor=anchor)


def page_of(path, **kw):
    out = report.write_report(path, **kw)
    with open(out, encoding="utf-8") as f:
        text = f.read()
    return out, text, Page(text)


def lockstep(*args, cwd=None):
    return subprocess.run([sys.executable, LOCKSTEP, *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd or REPO, env=dict(os.environ))


def assert_self_contained(text):
    """One page that loads nothing: no URL, no script, no external style or image."""
    low = text.lower()
    assert "<script" not in low
    assert "<link" not in low and "<img" not in low and "<iframe" not in low
    assert not re.search(r"(src|href)\s*=", low)
    assert "http://" not in low and "https://" not in low and "url(" not in low
    assert "content-security-policy" in low and "default-src 'none'" in low


# --- the page ---------------------------------------------------------------------------------------------------

def test_clean_release(tmp_path):
    path = make(tmp_path, L.clean(extra_vars={"lockstep_allow_mixed_start": True}), anchored=True)
    proc = lockstep("report", path)
    assert proc.returncode == 0, proc.stderr
    out = path[:-len(".jsonl")] + ".html"
    assert proc.stdout.startswith(out + ": release succeeded")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600  # it holds what the ledger holds
    with open(out, encoding="utf-8") as f:
        text = f.read()
    assert_self_contained(text)
    page = Page(text)
    assert page.by_id("status").text == "succeeded"
    assert page.by_id("run-id").text == "run-2.1.0"
    assert page.by_id("versions").text == "1.0.0 -> 2.1.0"
    summary = page.by_id("summary").text
    for fact in ("playbooks/release.yml", "alice@ctl", "2026-01-02 03:04:05", "target version 2.1.0"):
        assert fact in summary
    verification = page.by_id("verification")
    assert "ok" in verification.classes
    assert verification.text.startswith("Ledger verifies: OK, ")
    assert "anchored at seq" in verification.text and "chain intact, complete" in verification.text
    verify = lockstep("ledger", "verify", path)  # the page says what ledger verify says
    assert verify.returncode == 0 and verify.stdout.strip() == f"{path}: {verification.text[len('Ledger verifies: '):]}"
    assert page.by_id("incomplete") is None and page.by_id("halt") is None
    # every host's lane, with what the ledger recorded of it in its wave
    lanes = page.lanes()
    assert sorted(lanes) == L.HOSTS
    for n, batch in enumerate(L.WAVES, 1):
        for host in batch:
            lane = lanes[host].text
            assert "1.0.0 \u2192 2.1.0 result released" in lane
            for step in ("drained", "switched to 2.1.0", "put back", "proven"):
                assert f"wave {n}: {step}" in lane, (host, step, lane)
            assert lane.index(f"wave {n}: drained") < lane.index(f"wave {n}: switched") \
                < lane.index(f"wave {n}: put back") < lane.index(f"wave {n}: proven")
            for gate in ("preflight", "baseline-smoke", "verify", "smoke", "watch", "final"):
                assert f"{gate} \u2713" in lane
    # every wave, forward only: the rollback's batches that the halt skipped are no wave
    waves = page.waves()
    assert [(w.attrs["data-wave"], w.attrs["data-back"]) for w in waves] == [("1", "false"), ("2", "false"),
                                                                             ("3", "false")]
    for row, batch in zip(waves, L.WAVES, strict=True):
        assert ", ".join(batch) in row.text and f"wave-{row.attrs['data-wave']} passed" in row.text
    # the timeline: every phase with its times, the waves beside them
    stages = [el.text.split()[0] for el in page.elements if el.tag == "tr" and "stage" in el.classes]
    assert stages == ["preflight", "rollout", "verify", "smoke", "watch", "finish"]
    assert "wave 3: h3, h4" in page.by_id("timeline").text
    # every gate passed, none halting
    gates = [el for el in page.by_class("gate") if el.tag == "tr"]
    assert [g.attrs["data-gate"] for g in gates] == ["preflight", "baseline-smoke", "wave-1", "wave-2", "wave-3",
                                                     "verify", "smoke", "watch", "final"]
    assert not page.by_class("halting") and "HALTED" not in page.by_id("gates").text
    # an override without a reason is shown as such
    overrides = page.by_class("override")
    assert [o.text for o in overrides] == ["lockstep_allow_mixed_start no reason given extra vars"]


def test_halted_and_rolled_back(tmp_path):
    extra = {"lockstep_allow_flag_reuse": True, "lockstep_flag_reuse_reason": "no client sends rlp since 09:31"}
    path = make(tmp_path, L.halted(extra_vars=extra))
    out, text, page = page_of(path)
    assert out == path[:-len(".jsonl")] + ".html"
    assert_self_contained(text)
    assert page.by_id("status").text == "rolled_back"
    assert "warn" in page.by_id("status").classes
    halt = page.by_id("halt")
    assert halt.text == f"Halted by gate wave-2 on host h2 in phase rollout: {L.HALT_MESSAGE}"
    # the halting gate, marked once, where it halted
    halting = page.by_class("halting")
    assert len(halting) == 1
    row = halting[0]
    assert row.tag == "tr" and row.attrs["id"] == "halting-gate" and row.attrs["data-gate"] == "wave-2"
    assert "HALTED HERE" in row.text and L.HALT_MESSAGE in row.text and "h2" in row.text
    gates = [el.attrs["data-gate"] for el in page.by_class("gate") if el.tag == "tr"]
    assert gates == ["preflight", "baseline-smoke", "wave-1", "wave-2", "rollback-wave-1", "rollback-wave-2",
                     "rollback-verify", "final"]
    # the waves forward, then back
    waves = page.waves()
    assert [(w.attrs["data-wave"], w.attrs["data-back"]) for w in waves] == [
        ("1", "false"), ("2", "false"), ("1", "true"), ("2", "true")]
    assert "halted" in waves[1].classes and "wave-2 HALTED" in waves[1].text
    assert "back (back to 1.0.0)" in waves[2].text and "rollback-wave-1 passed" in waves[2].text
    # every host's lane: the halted one, the ones rolled back, the ones never touched, the one found dead
    lanes = page.lanes()
    assert sorted(lanes) == L.HOSTS
    h1, h2 = lanes["h1"].text, lanes["h2"].text
    assert "wave 1: switched to 2.1.0" in h1 and "wave 1: proven" in h1
    assert "back 1: drained" in h1 and "back 1: back on 1.0.0" in h1 and "back 1: proven back" in h1
    assert "result rolled_back" in h1
    assert f"wave 2: HALTED by gate wave-2: {L.HALT_MESSAGE}" in h2 and "back 2: back on 1.0.0" in h2
    assert "wave 2: put back" in h2  # the wave's load balancer step after its switch, before its gate
    assert "switched" not in lanes["h3"].text and "result unchanged" in lanes["h3"].text
    assert "dead" in lanes["h4"].classes and "found dead" in lanes["h4"].text
    assert "h4" in page.by_id("found-dead").text
    # the rollback is a phase of the timeline, its waves included
    stages = [el.text.split()[0] for el in page.elements if el.tag == "tr" and "stage" in el.classes]
    assert stages == ["preflight", "rollout", "rollback", "finish"]
    assert [o.text for o in page.by_class("override")] == [
        "lockstep_allow_flag_reuse no client sends rlp since 09:31 extra vars"]
    assert "chain" in page.by_id("verification").text and "complete" in page.by_id("verification").text


def test_refused_release(tmp_path):
    path = make(tmp_path, L.refused())
    _, text, page = page_of(path)
    assert page.by_id("status").text == "refused"
    assert page.by_id("halt").text == f"Halted by gate preflight on host h3 in phase preflight: {L.REFUSAL}"
    [row] = page.by_class("halting")
    assert row.attrs["data-gate"] == "preflight" and "HALTED HERE" in row.text and L.REFUSAL in row.text
    assert not page.waves() and "No wave ran." in page.by_id("waves").text
    lanes = page.lanes()
    assert sorted(lanes) == L.HOSTS
    assert f"HALTED by gate preflight: {L.REFUSAL}" in lanes["h3"].text
    assert "preflight halted (not on this host)" in lanes["h1"].text
    for lane in lanes.values():
        assert "1.0.0 \u2192 1.0.0 result unchanged" in lane.text and "switched" not in lane.text
    stages = [el.text.split()[0] for el in page.elements if el.tag == "tr" and "stage" in el.classes]
    assert stages == ["preflight", "finish"]


def test_killed_controller_incomplete(tmp_path):
    records = L.killed()
    path = make(tmp_path, records)
    _, text, page = page_of(path)
    last = history.format_time(history.record_time(records[-1]))
    assert last == "2026-01-02 03:04:" + last[-2:]
    banner = page.by_id("incomplete")
    assert banner.text.startswith(f"INCOMPLETE: the run stopped recording at {last} UTC (controller killed?)")
    assert "incomplete" in banner.classes
    assert page.by_id("status").text == "INCOMPLETE"
    verification = page.by_id("verification")
    assert "ok" in verification.classes and "chain intact, INCOMPLETE (no release_finished" in verification.text
    # what happened up to the kill: wave 1 whole, wave 2 drained and then nothing
    waves = page.waves()
    assert [w.attrs["data-wave"] for w in waves] == ["1", "2"]
    assert "wave-1 passed" in waves[0].text and "in progress when the recording stopped" in waves[1].text
    lanes = page.lanes()
    assert sorted(lanes) == L.HOSTS
    assert "wave 1: proven" in lanes["h1"].text and "2.1.0" in lanes["h1"].text
    assert "wave 2: drained" in lanes["h2"].text and "wave 2: in progress when the recording stopped" in \
        lanes["h2"].text and "switched" not in lanes["h2"].text
    assert "still in it at the last record" in page.by_id("timeline").text
    assert not page.by_class("halting")


SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '" onmouseover="alert(2)'


def test_every_ledger_string_is_escaped(tmp_path):
    message = f"{SCRIPT} {ATTRIBUTE} & <b>bold</b>"
    extra = {"lockstep_allow_partial": True, "lockstep_partial_reason": SCRIPT, "note": ATTRIBUTE}
    records = L.halted(message=message, extra_vars=extra)
    for rec in records:
        if rec["event"] == "release_started":
            rec["user"] = SCRIPT
            rec["playbook"] = f"playbooks/{SCRIPT}.yml"
        if rec["event"] == "host_failed":
            rec["task"] = ATTRIBUTE
    path = make(tmp_path, records, name=f"20260102T030405000000Z-{ATTRIBUTE}.jsonl")
    _, text, page = page_of(path, out_path=str(tmp_path / "page.html"))
    assert SCRIPT not in text and "<script" not in text.lower() and "<b>" not in text
    assert 'onmouseover="' not in text
    assert not [el for el in page.elements if any(a.startswith("on") for a in el.attrs)]
    assert_self_contained(text)
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert text.count(escaped) >= 5
    # and it still reads as the text it was
    assert page.by_id("halt").text.endswith(f"{SCRIPT} {ATTRIBUTE} & <b>bold</b>")
    assert SCRIPT in page.by_class("halting")[0].text
    assert [o.text for o in page.by_class("override")] == [f"lockstep_allow_partial {SCRIPT} extra vars"]
    assert SCRIPT in page.by_id("summary").text


# --- the functions a fleet test calls -----------------------------------------------------------------------------

def test_render_and_write_report(tmp_path):
    path = make(tmp_path, L.halted())
    records = ledger.read_records(path)
    page = report.render(records, report.verify_ledger(path))
    assert page.startswith("<!DOCTYPE html>") and "HALTED HERE" in page and 'class="gate halted halting"' in page
    assert report.render(records, None).count('id="verification"') == 1  # not verified: said so
    out = str(tmp_path / "elsewhere" / "r.html")
    os.makedirs(os.path.dirname(out))
    assert report.write_report(path, out) == out
    with open(out, encoding="utf-8") as f:
        assert f.read() == report.render(records, report.verify_ledger(path), path)


def test_a_ledger_that_does_not_verify_is_reported_so(tmp_path):
    path = make(tmp_path, L.clean())
    with open(path) as f:
        lines = f.readlines()
    lines[5] = lines[5].replace('"phase":"preflight"', '"phase":"edited"')
    with open(path, "w") as f:
        f.writelines(lines)
    proc = lockstep("report", path, "--out", str(tmp_path / "broken.html"))
    assert proc.returncode == 1 and "BROKEN at record seq 5" in proc.stderr
    with open(tmp_path / "broken.html", encoding="utf-8") as f:
        page = Page(f.read())
    verification = page.by_id("verification")
    assert "bad" in verification.classes
    assert verification.text.startswith("Ledger does NOT verify: BROKEN at record seq 5 (line 6): record hash does "
                                        "not match its content")


def test_a_keyed_ledger_verifies_with_its_key_only(tmp_path, monkeypatch):
    key = "report-" + "test-key-" + "0123456789abcdef"
    path = make(tmp_path, L.clean())
    keyed = L.write(str(tmp_path / "keyed" / "20260102T030405000000Z-release-1.jsonl"), L.clean(), key=key.encode())
    _, _, page = page_of(keyed)
    assert page.by_id("verification").text.startswith("Ledger does NOT verify: CANNOT VERIFY: keyed ledger")
    monkeypatch.setenv(ledger.KEY_ENV, key)
    _, _, page = page_of(keyed)
    assert "keyed chain intact (hmac-sha256), complete" in page.by_id("verification").text
    _, _, page = page_of(path)  # with a key configured, an unkeyed ledger fails, as ledger verify says
    assert "unkeyed ledger but a key is configured" in page.by_id("verification").text


def test_an_unreadable_line_is_said_and_the_records_before_it_shown(tmp_path):
    path = make(tmp_path, L.killed())
    with open(path, "a") as f:
        f.write("{not json\n")
    proc = lockstep("report", path)
    assert proc.returncode == 1
    with open(path[:-len(".jsonl")] + ".html", encoding="utf-8") as f:
        page = Page(f.read())
    assert page.by_id("unreadable").text.startswith("UNREADABLE: line ")
    assert page.by_id("status").text == "unreadable"
    assert sorted(page.lanes()) == L.HOSTS


def test_report_resolves_the_newest_ledger_of_a_directory(tmp_path):
    older = make(tmp_path, L.clean(), name="20260102T030405000000Z-release-1.jsonl")
    newer = make(tmp_path, L.refused(), name="20260103T030405000000Z-release-2.jsonl")
    os.utime(older, (1_700_000_000, 1_700_000_000))
    proc = lockstep("report", str(tmp_path / "ledger"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(newer[:-len(".jsonl")] + ".html: release refused")
    # the page in the ledger directory is no ledger: still the newest ledger, and not in the history
    proc = lockstep("report", str(tmp_path / "ledger"), "--out", str(tmp_path / "again.html"))
    assert "release refused" in proc.stdout
    assert lockstep("report", str(tmp_path / "nowhere")).returncode == 1


# --- ledger list --------------------------------------------------------------------------------------------------

def test_ledger_list(tmp_path):
    day = L.T0.replace(hour=9, minute=0, second=0)
    first = make(tmp_path, L.clean(start=day), name="20260102T090000000000Z-release-1.jsonl")
    second = make(tmp_path, L.halted(start=day.replace(hour=10)), name="20260102T100000000000Z-release-2.jsonl")
    third = make(tmp_path, L.killed(start=day.replace(hour=11)), name="20260102T110000000000Z-release-3.jsonl")
    directory = tmp_path / "ledger"
    (directory / "20260102T120000000000Z-garbage-9.jsonl").write_text("this is not a ledger\n{}\n")
    (directory / "notes.txt").write_text("not a ledger at all\n")
    report.write_report(first)  # a page next to the ledgers
    proc = lockstep("ledger", "list", str(directory))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip("\n").split("\n")
    header = lines[0]
    assert header.split() == ["when", "(UTC)", "who", "kind", "target", "version", "status", "duration", "halted",
                              "by", "ledger"]
    assert set(lines[1]) == {"-", " "}
    rows = lines[2:]
    assert len(rows) == 4, proc.stdout  # 3 ledgers and the garbage; not the notes nor the page
    assert "notes.txt" not in proc.stdout and ".html" not in proc.stdout
    # a plain aligned table: every column starts where its header does
    for column in ("who", "kind", "status", "duration", "halted by", "ledger"):
        at = header.index(column)
        for row in rows:
            assert row[at - 2:at] == "  " and row[at] != " ", (column, row)
    by_file = {row.split()[-1]: row for row in rows}
    garbage = by_file["20260102T120000000000Z-garbage-9.jsonl"]
    assert " unreadable " in garbage
    # newest first: the garbage's time is its name's; then the killed, the halted, the clean release
    assert [row.split()[-1] for row in rows] == [os.path.basename(p) for p in (
        str(directory / "20260102T120000000000Z-garbage-9.jsonl"), third, second, first)]
    clean_row = by_file[os.path.basename(first)]
    assert clean_row.startswith("2026-01-02 09:00:00  alice@ctl  release  2.1.0")
    assert "1.0.0 -> 2.1.0" in clean_row and " succeeded " in clean_row
    halted_row = by_file[os.path.basename(second)]
    assert "1.0.0 -> 1.0.0" in halted_row and " rolled_back " in halted_row and " wave-2 on h2 " in halted_row
    killed_row = by_file[os.path.basename(third)]
    assert " INCOMPLETE " in killed_row
    # the duration: from release_started to release_finished (to the last record of the killed run)
    durations = {os.path.basename(p): len(ledger.read_records(p)) - 1 for p in (first, second, third)}
    for name, steps in durations.items():
        assert history.format_duration(steps * 0.5) in by_file[name]

    proc = lockstep("ledger", "list", "--json", str(directory))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [d["file"] for d in data] == [row.split()[-1] for row in rows]
    assert data[0]["status"] == "unreadable" and data[0]["problem"].startswith("line 1 is not a JSON record")
    entry = data[2]
    assert entry["status"] == "rolled_back" and entry["who"] == "alice@ctl" and entry["kind"] == "release"
    assert entry["when"] == "2026-01-02T10:00:00Z" and entry["version_before"] == "1.0.0"
    assert entry["halted_by"] == {"gate": "wave-2", "host": "h2", "message": L.HALT_MESSAGE, "phase": "rollout"}
    assert data[1]["status"] == "INCOMPLETE" and data[1]["complete"] is False
    assert data[1]["version_after"] == "mixed (1.0.0, 2.1.0)"  # what the hosts reported up to the kill
    assert data[3]["duration_seconds"] == durations[os.path.basename(first)] * 0.5


def test_ledger_list_of_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = lockstep("ledger", "list", str(tmp_path / "empty"))
    assert proc.returncode == 0 and proc.stdout.startswith("no ledger")
    assert lockstep("ledger", "list", "--json", str(tmp_path / "empty")).stdout.strip() == "[]"
    proc = lockstep("ledger", "list", str(tmp_path / "missing"))
    assert proc.returncode == 1 and "no such ledger directory" in proc.stderr

"""What a release prints with lockstep.release.progress (the repository's ansible.cfg), on the real fleet.

One fleet of 8 hosts on 1.0.0 for the whole module, and the releases in this order (each test starts from where the
one before left the fleet):
1. 2.0.0 is refused (the flag-reuse gate): a few lines, the reason once;
2. 2.1.0, clean, with a watch window of 6 s: at most 40 lines, one per phase and per wave, the countdown;
3. 9.9.9, a version nobody built (refused by the plan), by ansible-playbook and as an AWX job through
   ansible-runner with ANSIBLE_STDOUT_CALLBACK: the job's stdout is the same lines;
4. 2.2.0 with h8's restart silently doing nothing: the halt once, the rollback wave by wave.
Every output is counted on stdout alone (stderr carries Ansible's warnings).
"""

from __future__ import annotations

import os
import re
import subprocess

import ansible_runner
import pytest
from release_helpers import (
    REPO,
    VENV_BIN,
    assert_whole_fleet_on,
    env,
    fleet_lock,
    ledgers,
    records_in,
    release_cmd,
)
from test_release_halts import stale_pidfile

from lockstep_fleet import Fleet

PROGRESS = "lockstep.release.progress"
HOSTS = ["h%d" % i for i in range(1, 9)]
WAVES = [["h1"], ["h2", "h3"], ["h4", "h5", "h6", "h7", "h8"]]
# Ansible's default callback: banners and a line per task and host. None of them is lockstep's output.
DEFAULT_LINES = re.compile(r"^(PLAY|TASK|RUNNING HANDLER) \[|^(ok|changed|skipping|fatal|failed|included): ")
# What the summary table and lockstep's lines look like: how the job's stdout (stderr too: runner reads a
# terminal) is compared with ansible-playbook's stdout.
LOCKSTEP_LINES = re.compile(r"^(lockstep|LOCKSTEP|halted by|not halted|ledger: |host +before|-+ +-+|h\d+ +)")


class Out:
    def __init__(self, proc, records):
        self.rc, self.out, self.err, self.records = proc.returncode, proc.stdout, proc.stderr, records
        self.lines = self.out.splitlines()

    @property
    def finished(self):
        return self.records[-1] if self.records and self.records[-1].get("event") == "release_finished" else {}

    def mine(self, pattern):
        return [line for line in self.lines if re.search(pattern, line)]

    def __repr__(self):
        return "rc=%s status=%s, %d lines on stdout\n%s\n--- stderr\n%s" % (
            self.rc, self.finished.get("status"), len(self.lines), self.out[-8000:], self.err[-3000:])


def run(tmp_path, version, extra=None, **environ):
    before = ledgers(tmp_path)
    proc = subprocess.run(release_cmd(version, extra), cwd=REPO, env=env(tmp_path, **environ), capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    return Out(proc, records_in(tmp_path, before))


def normalized(lines):
    """Lines without what changes from one run to the next: seconds, the ledger's file."""
    return [re.sub(r"\d+(\.\d+)? s\b", "N s", re.sub(r"^ledger: .*", "ledger: <LEDGER>", line)) for line in lines]


def assert_reason_said_once(out):
    """The reason the release stopped, as the ledger recorded it, is in the output exactly once: on the halt's own
    line. The final failure message and the summary name the gate and host without it."""
    halted = out.finished.get("halted_by") or {}
    reason = halted.get("message")
    assert reason and len(reason) > 20, out
    assert out.out.count(reason) == 1 and reason not in out.err, (reason, out)
    word = "REFUSED" if out.finished["status"] == "refused" else "HALTED"
    [line] = out.mine("^lockstep: %s by gate " % word)
    assert line.startswith("lockstep: %s by gate %s on %s" % (word, halted["gate"], halted["host"])), (line, out)
    assert line.endswith(": " + reason), (line, out)
    assert out.lines.count("halted by gate %s on host %s" % (halted["gate"], halted["host"])) == 1, out
    [verdict] = out.mine("^lockstep %s: release of " % out.finished["status"])
    assert "halted by gate %s on %s" % (halted["gate"], halted["host"]) in verdict, (verdict, out)
    return reason


def assert_summary(out, status, before, after):
    assert out.lines.count("LOCKSTEP RELEASE SUMMARY: status %s, version %s -> %s" % (status, before, after)) == 1, out
    start = out.lines.index("LOCKSTEP RELEASE SUMMARY: status %s, version %s -> %s" % (status, before, after))
    rows = [line.split()[0] for line in out.lines[start + 3:start + 3 + len(HOSTS)]]
    assert rows == HOSTS, out
    assert out.lines[-1].startswith("ledger: "), out


@pytest.fixture(scope="module")
def fleet8():
    with fleet_lock():
        f = Fleet(REPO)
        f.down()
        f.up(hosts=8, version="1.0.0")
        try:
            yield f
        finally:
            f.down()


def test_a_refused_release_is_a_few_lines_with_its_reason_once(fleet8, tmp_path):
    out = run(tmp_path, "2.0.0")
    assert out.rc == 2 and out.finished.get("status") == "refused", out
    assert not out.mine(DEFAULT_LINES), out
    reason = assert_reason_said_once(out)
    assert "flag rlp means" in reason and "power peg" in reason and "flag-reuse" in reason, reason
    assert out.lines[0].startswith("lockstep: REFUSED by gate preflight on "), out
    assert out.mine(r"^lockstep: preflight REFUSED in \d+\.\d s: release 2\.0\.0 to 8 host\(s\) in 3 wave\(s\); "
                    r".*gate preflight REFUSED in"), out
    assert not out.mine(r"^lockstep: (wave|rollout|verify|smoke|watch|rollback)"), out
    assert out.mine(r"^lockstep: finish passed in .*gate final passed"), out
    # A refusal records no version before or after (the ledger's release_finished says null): the summary says "-".
    assert_summary(out, "refused", "-", "-")
    # REFUSED, preflight, finish, the verdict, the recap, the summary of 8 hosts (13 lines): 18.
    assert len(out.lines) <= 20, out
    assert_whole_fleet_on(fleet8, "1.0.0")


def test_a_clean_release_of_8_hosts_prints_at_most_40_lines(fleet8, tmp_path):
    out = run(tmp_path, "2.1.0", {"lockstep_watch_seconds": 6}, LOCKSTEP_PROGRESS_INTERVAL="2.5")
    assert out.rc == 0 and out.finished.get("status") == "succeeded", out
    assert len(out.lines) <= 40, out
    assert not out.mine(DEFAULT_LINES), out
    # One line per phase, in order, each with its verdict and the gates that judged it.
    phases = [re.match(r"lockstep: (\w+) passed in \d+\.\d s", line).group(1)
              for line in out.mine(r"^lockstep: \w+ passed in \d+\.\d s")]
    assert phases == ["preflight", "rollout", "verify", "smoke", "watch", "finish"], out
    for phase, gates in (("preflight", ["preflight", "baseline-smoke"]), ("verify", ["verify"]),
                         ("smoke", ["smoke"]), ("watch", ["watch"]), ("finish", ["final"])):
        [line] = out.mine(r"^lockstep: %s passed in " % phase)
        for gate in gates:
            assert re.search(r"gate %s passed in \d+\.\d s" % gate, line), (gate, line)
    assert out.mine(r"^lockstep: rollout passed in \d+\.\d s: 3 waves; 8 hosts switched$"), out
    assert out.mine(r"^lockstep: rollout: 2\.1\.0 staged on 8 hosts in \d+\.\d s"), out
    # One line per wave: its hosts, what each step did to all of them, its gate's verdict and seconds.
    waves = [line for line in out.mine(r"^lockstep: wave ") if " after its gate: " not in line]
    assert len(waves) == 3, out
    done = 0
    for i, (line, hosts) in enumerate(zip(waves, WAVES, strict=True), 1):
        done += len(hosts)
        # The canary is put back at the end of its rehearsal, on the line of what followed its gate.
        steps = "drained, switched, proven" + ("" if i == 1 else ", back")
        assert line.startswith("lockstep: wave %d/3 [%s] version 2.1.0: %d/8 hosts done - %s; gate wave-%d passed in "
                               % (i, ",".join(hosts), done, steps, i)), (line, out)
    assert out.mine(r"^lockstep: wave 1/3 \[h1\] after its gate: switched to 1\.0\.0, proven, gate rehearsal-smoke "
                    r"passed in \d+\.\d s, switched to 2\.1\.0, proven, back$"), out
    # The watch window counts down.
    left = out.mine(r"^lockstep: watch: \d+ s left of 6 s$")
    assert 1 <= len(left) <= 3, out
    assert out.lines.index(left[-1]) < out.lines.index(out.mine(r"^lockstep: watch passed")[0]), out
    assert out.mine(r"^lockstep: recap: \d+ hosts, failed: none, unreachable: none$"), out
    assert out.lines.count("not halted by any gate") == 1, out
    assert_summary(out, "succeeded", "1.0.0", "2.1.0")
    assert_whole_fleet_on(fleet8, "2.1.0")


def test_an_awx_job_shows_the_same_lines_through_ansible_runner(fleet8, tmp_path, monkeypatch):
    # A version nobody built: refused by the plan before any host is contacted.
    played = run(tmp_path, "9.9.9")
    assert played.rc == 2 and played.finished.get("status") == "refused", played
    assert "unknown version 9.9.9" in assert_reason_said_once(played), played

    # The job as AWX runs it: ansible-runner sets ANSIBLE_STDOUT_CALLBACK=awx_display itself; the callback named
    # in the job's environment (AWX: Extra Environment Variables) is the one awx_display is built on.
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    for name in list(os.environ):
        if name.startswith(("ANSIBLE_", "LOCKSTEP_")):
            monkeypatch.delenv(name)
    job_env = {k: v for k, v in env(tmp_path).items() if k.startswith(("ANSIBLE_", "LOCKSTEP_"))}
    job_env.update({"ANSIBLE_STDOUT_CALLBACK": PROGRESS, "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp-job")})
    before = ledgers(tmp_path)
    (tmp_path / "job").mkdir()
    r = ansible_runner.run(private_data_dir=str(tmp_path / "job"), project_dir=REPO,
                           playbook=os.path.join(REPO, "playbooks", "release.yml"),
                           inventory=os.path.join(REPO, "inventory", "local"),
                           extravars={"lockstep_version": "9.9.9", "lockstep_watch_seconds": 0},
                           envvars=job_env, quiet=True)
    stdout = r.stdout.read()
    assert r.rc == 2, stdout[-6000:]
    job = [line.rstrip("\r") for line in stdout.splitlines()]
    assert not [line for line in job if DEFAULT_LINES.search(line)], stdout[-6000:]
    assert normalized([line for line in job if LOCKSTEP_LINES.search(line)]) == normalized(
        [line for line in played.lines if LOCKSTEP_LINES.search(line)]), (stdout[-6000:], played)
    events = list(r.events)
    assert any(e.get("stdout", "").startswith("lockstep: REFUSED by gate input") for e in events), stdout[-6000:]
    [stats] = [e for e in events if e["event"] == "playbook_on_stats"]
    assert stats["event_data"]["artifact_data"]["lockstep_status"] == "refused", stats["event_data"]
    assert records_in(tmp_path, before)[-1]["status"] == "refused"
    assert_whole_fleet_on(fleet8, "2.1.0")


def test_a_halted_release_says_its_reason_once_and_rolls_back_wave_by_wave(fleet8, tmp_path):
    stale_pidfile(fleet8, "h8")
    out = run(tmp_path, "2.2.0", {"lockstep_switch_timeout": 5})
    assert out.rc == 2 and out.finished.get("status") == "rolled_back", out
    assert not out.mine(DEFAULT_LINES), out
    halted = out.finished["halted_by"]
    assert (halted["gate"], halted["host"]) == ("running-version", "h8"), halted
    reason = assert_reason_said_once(out)
    assert "running-version check failed" in reason, reason
    # The waves forward: the third never reached its gate (h8 failed its switch) and says what it did first.
    forward = [line for line in out.mine(r"^lockstep: wave \d/3 \[.*\] version 2\.2\.0: ")
               if " after its gate: " not in line]
    assert [line.split(" version ")[0] for line in forward] == [
        "lockstep: wave 1/3 [h1]", "lockstep: wave 2/3 [h2,h3]", "lockstep: wave 3/3 [h4,h5,h6,h7,h8]"], out
    assert "not finished - drained, switched h4,h5,h6,h7, proven h4,h5,h6,h7, FAILED h8" in forward[2], out
    [halt] = out.mine("^lockstep: HALTED by gate ")
    assert out.lines.index(halt) == out.lines.index(forward[2]) + 1, out
    assert halt.startswith("lockstep: HALTED by gate running-version on h8 in rollout: "), halt
    assert out.mine(r"^lockstep: rollout HALTED in \d+\.\d s"), out
    assert not out.mine(r"^lockstep: (verify|smoke|watch) "), out
    # The rollback, wave by wave the same way, each judged by its gate.
    back = out.mine(r"^lockstep: wave \d/3 \[.*\] version back to 2\.1\.0: ")
    assert [line.split(" version ")[0] for line in back] == [
        "lockstep: wave 1/3 [h1]", "lockstep: wave 2/3 [h2,h3]", "lockstep: wave 3/3 [h4,h5,h6,h7,h8]"], out
    for i, line in enumerate(back, 1):
        assert "drained, switched, proven, back; gate rollback-wave-%d passed in" % i in line, (line, out)
    [rollback] = out.mine(r"^lockstep: rollback passed in ")
    assert "3 waves back" in rollback and "gate rollback-verify passed" in rollback, rollback
    assert out.lines.index(halt) < out.lines.index(back[0]) < out.lines.index(rollback), out
    [verdict] = out.mine("^lockstep rolled_back: release of 2.2.0 halted by gate running-version on h8")
    assert "every changed host was rolled back to 2.1.0 and verified" in verdict, verdict
    assert_summary(out, "rolled_back", "2.1.0", "2.1.0")
    assert len(out.lines) <= 40, out
    on_disk = {}
    for host in HOSTS:
        on_disk[host] = os.path.basename(fleet8.exec(host, "readlink", "/srv/order-router/current").stdout.strip())
    assert set(on_disk.values()) == {"2.1.0"}, on_disk

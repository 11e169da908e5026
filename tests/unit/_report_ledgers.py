"""Ledgers of releases for the report's tests (tests/unit/test_report*.py), without the fleet.

Each is the sequence of records the ledger callback writes for a run of playbooks/release.yml (the shapes of real
fleet ledgers: plays, phases, host states, gates, waves, the rollback's waves back, status, release_finished),
written through the ledger module's own writer (``ledger.LedgerWriter``), so the chain is genuine and ``bin/lockstep
ledger verify`` passes on it.
"""

from __future__ import annotations

import datetime

from ansible_collections.lockstep.release.plugins.module_utils import ledger

HOSTS = ["h1", "h2", "h3", "h4"]
WAVES = [["h1"], ["h2"], ["h3", "h4"]]
PLAY_PREFLIGHT = "Lockstep | preflight: every host of the fleet, checked before anything changes"
PLAY_STAGE = "Lockstep | rollout: stage the release on every host"
PLAY_WAVES = "Lockstep | rollout: canary, then waves"
PLAY_CHECKS = "Lockstep | verify, smoke and watch the whole fleet"
PLAY_ROLLBACK_PLAN = "Lockstep | rollback: which hosts the release changed (or may have: a connection lost mid-switch)"
PLAY_ROLLBACK_WAVES = "Lockstep | rollback: canary, then waves, back to the previous release"
PLAY_ROLLBACK_CHECK = ("Lockstep | rollback: every changed host verified on the previous release, the load balancer "
                       "set straight")
PLAY_FINISH = "Lockstep | finish: status, lock, summary"
T0 = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


class Story:
    """The records of one run, each half a second after the one before (``start``: the first one's time)."""

    def __init__(self, start=T0, step=0.5):
        self.records = []
        self.now = start
        self.step = datetime.timedelta(seconds=step)
        self.play_name = None

    def ts(self):
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def add(self, event, **fields):
        rec = dict(fields, event=event, ts=self.ts())
        self.records.append(rec)
        self.now += self.step
        return rec

    def play(self, name, hosts):
        self.play_name = name
        self.add("play_started", play=name, pattern=["app"], hosts=list(hosts))

    def enter(self, phase):
        self.add("phase_enter", phase=phase, play=self.play_name)

    def leave(self, phase):
        self.add("phase_leave", phase=phase, play=self.play_name)

    def common(self, phase):
        """A shared step (the load balancer's, a halt) inside ``phase``."""
        self.leave(phase)
        self.enter("common")
        self.leave("common")
        self.enter(phase)

    def state(self, host, version, phase, task="lockstep.release.rollout : Rollout | switch, restart and prove the "
                                               "version runs"):
        self.add("host_state", host=host, phase=phase, task=task,
                 state={"active_version": version, "running_version": version})

    def gate(self, gate, phase, hosts, passed=True, halted=(), message=None, **extra):
        halted = [{"host": h, "message": m} for h, m in halted]
        if message is None:
            message = (f"gate {gate} passed on {len(hosts)} host(s)" if passed else
                       f"gate {gate} halted the release on {halted[0]['host']}: {halted[0]['message']}")
        self.add("gate", gate=gate, phase=phase, passed=passed, message=message, halted=halted,
                 hosts={h: {"ok": h not in dict((x["host"], 1) for x in halted)} for h in hosts},
                 reporter=hosts[0], task=f"lockstep.release.{phase} : {gate}", **extra)

    def failed(self, host, phase, message, task="a task"):
        self.add("host_failed", host=host, phase=phase, message=message, ignored=False, task=task)


def started(story, version="2.1.0", extra_vars=None, user="alice", controller="ctl"):
    story.add("release_started", format=1, release="run-" + version, user=user, controller=controller,
              awx_user=None, awx_job_id=None, cwd="/srv/project", pid=4242, playbook="playbooks/release.yml",
              version=version, inventory=["inventory/prod"], limit=None, tags=["all"], check_mode=False,
              extra_vars=dict({"lockstep_version": version}, **(extra_vars or {})), ansible_version="2.19.14")


def preflight(story, hosts=HOSTS, before="1.0.0", halted=()):
    story.play(PLAY_PREFLIGHT, hosts + ["lb"])
    story.enter("preflight")
    for h in hosts:
        story.state(h, before, "preflight", task="lockstep.release.preflight : Preflight | read every host's state")
    story.common("preflight")
    story.gate("preflight", "preflight", hosts, passed=not halted, halted=halted,
               flags="flags consistent: rli across 1.0.0, 2.1.0")
    if not halted:
        story.gate("baseline-smoke", "preflight", hosts + ["lb"])
    story.leave("preflight")


def stage(story, hosts=HOSTS, before="1.0.0"):
    story.play(PLAY_STAGE, hosts)
    story.enter("rollout")
    for h in hosts:
        story.state(h, before, "rollout", task="lockstep.release.rollout : Rollout | stage")
    story.leave("rollout")


def wave(story, number, batch, done, version, hosts=HOSTS, back=False, halt=None, stop_after_drain=False):
    """One wave: drain, switch, put back, the wave gate, the wave record (``halt``: ``(host, message)`` the gate
    halts on; ``stop_after_drain``: the run is killed right after the drain)."""
    story.play(PLAY_ROLLBACK_WAVES if back else PLAY_WAVES, batch)
    story.enter("rollout")
    story.common("rollout")  # drain
    if stop_after_drain:
        return
    for h in batch:
        story.state(h, version, "rollout")
    story.common("rollout")  # put back
    name = ("rollback-wave-%d" if back else "wave-%d") % number
    story.gate(name, "rollout", batch if back else hosts, passed=halt is None, halted=[halt] if halt else ())
    if halt is None:
        story.add("wave", index=number, count=len(WAVES), hosts=batch, done=done, total=len(hosts),
                  version=("back to " + version) if back else version, reporter=batch[0], phase="rollout",
                  task="lockstep.release.rollout : Rollout | wave gate")
    else:
        for h in batch:
            story.failed(h, "rollout", f"gate {name} halted the release on {halt[0]}: {halt[1]}",
                         task="lockstep.release.rollout : Rollout | halt unless the gate passed")
        story.common("rollout")  # the halt
    story.leave("rollout")


def checks(story, hosts=HOSTS, version="2.1.0"):
    story.play(PLAY_CHECKS, hosts)
    story.enter("verify")
    for h in hosts:
        story.state(h, version, "verify", task="lockstep.release.verify : Verify | state")
    story.gate("verify", "verify", hosts)
    story.leave("verify")
    for phase in ("smoke", "watch"):
        story.enter(phase)
        story.gate(phase, phase, hosts)
        story.leave(phase)


def finish(story, status, before, after, hosts_map, halted_by=None, found_dead=(), census=HOSTS):
    story.play(PLAY_FINISH, HOSTS + ["lb"])
    story.enter("finish")
    story.gate("final", "finish", census)
    data = {"lockstep_status": status, "lockstep_version_before": before, "lockstep_version_after": after,
            "lockstep_halted_by": halted_by, "lockstep_hosts": hosts_map, "lockstep_found_dead": list(found_dead)}
    story.add("status_reported", data=data, host="h1", phase="finish", task="lockstep.release.finish : Finish")
    story.leave("finish")
    story.add("release_finished", status=status, status_source="playbook", status_consistent=True,
              reported_status=status, version_before=before, version_after=after, halted_by=halted_by,
              hosts=hosts_map, failures=0, unreachable=0, ledger_broken=None, found_dead=list(found_dead))


def hosts_map(before, after, result, phase="finish", hosts=HOSTS):
    return {h: {"before": before, "after": after, "phase": phase, "result": result} for h in hosts}


# --- the releases ------------------------------------------------------------------------------------------------

def clean(start=T0, extra_vars=None):
    story = Story(start)
    started(story, extra_vars=extra_vars)
    preflight(story)
    stage(story)
    done = 0
    for n, batch in enumerate(WAVES, 1):
        done += len(batch)
        wave(story, n, batch, done, "2.1.0")
    checks(story)
    story.play(PLAY_ROLLBACK_PLAN, HOSTS)  # skipped whole by the halt condition: no phase
    story.play(PLAY_ROLLBACK_WAVES, ["h1"])
    finish(story, "succeeded", "1.0.0", "2.1.0", hosts_map("1.0.0", "2.1.0", "released"))
    return story.records


HALT_MESSAGE = "reports 1.0.0 (expected 2.1.0): the restart did not take"


def halted(start=T0, message=HALT_MESSAGE, extra_vars=None, found_dead=("h4",)):
    """Wave 2's gate halts on h2; the waves that ran go back; h4 (never changed) is found dead."""
    story = Story(start)
    started(story, extra_vars=extra_vars)
    preflight(story)
    stage(story)
    wave(story, 1, ["h1"], 1, "2.1.0")
    wave(story, 2, ["h2"], 2, "2.1.0", halt=("h2", message))
    story.play(PLAY_ROLLBACK_PLAN, HOSTS)
    story.enter("rollback")
    story.add("rollback_step", host="h1", phase="rollback", status="ok", task="Rollback | the hosts to bring back")
    story.leave("rollback")
    wave(story, 1, ["h1"], 1, "1.0.0", back=True)
    wave(story, 2, ["h2"], 2, "1.0.0", back=True)
    story.play(PLAY_ROLLBACK_CHECK, HOSTS)
    story.enter("rollback")
    story.gate("rollback-verify", "rollback", ["h1", "h2"])
    story.leave("rollback")
    result = hosts_map("1.0.0", "1.0.0", "unchanged")
    result["h1"]["result"] = result["h2"]["result"] = "rolled_back"
    halted_by = {"gate": "wave-2", "host": "h2", "message": message, "phase": "rollout"}
    finish(story, "rolled_back", "1.0.0", "1.0.0", result, halted_by=halted_by, found_dead=found_dead)
    return story.records


REFUSAL = "disk: 12 MB free under /srv/order-router, 300 MB needed"


def refused(start=T0):
    story = Story(start)
    started(story)
    preflight(story, halted=[("h3", REFUSAL)])
    for name, hosts in ((PLAY_STAGE, HOSTS), (PLAY_WAVES, ["h1"]), (PLAY_CHECKS, HOSTS)):
        story.play(name, hosts)  # skipped whole: no phase
    halted_by = {"gate": "preflight", "host": "h3", "message": REFUSAL, "phase": "preflight"}
    finish(story, "refused", "1.0.0", "1.0.0", hosts_map("1.0.0", "1.0.0", "unchanged", "preflight"),
           halted_by=halted_by)
    return story.records


def killed(start=T0):
    """The controller is killed in wave 2, right after its drain: no release_finished."""
    story = Story(start)
    started(story)
    preflight(story)
    stage(story)
    wave(story, 1, ["h1"], 1, "2.1.0")
    wave(story, 2, ["h2"], 2, "2.1.0", stop_after_drain=True)
    return story.records


def write(path, records, anchor=None, key=None):
    """Write ``records`` through the ledger's writer (sealed, chained; anchored at ``anchor``). Returns the path."""
    writer = ledger.LedgerWriter(str(path), fsync=False, anchor=anchor, key=key)
    try:
        for rec in records:
            writer.append(rec)
    finally:
        writer.close()
    return str(path)

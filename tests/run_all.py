#!/usr/bin/env python3
"""`make test`: the lint and every test, in two lines of work side by side (the 30-minute budget on 2 cores).

- The fleet line: every test that runs on the local fleet (`pytest -m fleet`), one at a time, since the machine has
  one fleet. Its output is streamed as it runs. The fleet tests that assert a reaction time (marker `quiet`) run
  last, once the other line has ended: on 2 cores, its load is not the fault they time.
- The other line, all at once at the lowest priority (see LOWEST): the lint (`make lint-only`) then every test that
  needs no fleet (unit tests, localhost releases, the sanity test: `pytest -m "not fleet and not other_cores"`); the
  safeguard mutations (`tests/mutate_safeguards.py --ci`, which edit a scratch copy of the repository, never the
  tree the fleet tests read); the unit tests on every other supported ansible-core (`pytest -m other_cores`). A
  release on the fleet leaves part of the two cores idle (waits on HAProxy, on services starting); this line fills
  it. Its output is kept and printed whole at the end, and one line says when each of its steps ends.

Both lines always run to the end, so one run shows every failure; make test fails if any step failed.
Run from the repository root with the virtualenv built (`make setup`): `.venv/bin/python tests/run_all.py
[PYTEST ARG ...]`; the pytest arguments (for example `-k name`) go to both pytest runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTEST = os.path.join(REPO, ".venv", "bin", "pytest")
PYTHON = os.path.join(REPO, ".venv", "bin", "python")


# The second line's commands run through this: a session of their own at the lowest priority. Where the kernel
# groups each session's processes for the scheduler (autogroup), a niced process still weighs as much as the whole
# session it is in whenever the fleet line's controller waits, and the fleet hosts' sshd sessions, each its own group,
# are what it then takes the CPU from (a 4-host release: 9 s alone, 12 s beside three niced loops in its session,
# 10 s beside the same loops in a session of their own at autogroup nice 19).
LOWEST = """
import os, sys
os.setsid()
try:
    with open("/proc/self/autogroup", "w") as f:
        f.write("19")
except OSError:
    pass  # no autogroup: nice alone decides
os.nice(19)
os.execvp(sys.argv[1], sys.argv[1:])
"""


# The second line's processes, each the leader of its own session (LOWEST): an interrupted make test stops them,
# since the terminal's Ctrl-C no longer reaches them.
STARTED = []


def wait(proc):
    """``(exit code, CPU seconds)`` of a process and of every descendant it waited for: on 2 cores the machine is
    busy through make test, so its length is the CPU its steps take (what to cut next is the step that takes most)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def step(name, cmd, pytest_args, log, results):
    start = time.monotonic()
    shown = ["(lowest priority)", *cmd[3:]] if cmd[:3] == [PYTHON, "-c", LOWEST] else cmd
    log.write("\n=== %s: %s\n" % (name, " ".join(shown)))
    log.flush()
    try:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        STARTED.append(proc)
        rc, cpu = wait(proc)
    except Exception as e:  # a step that cannot even start is a failed step, never a missing one
        log.write("%s could not run: %r\n" % (name, e))
        rc, cpu = 1, 0.0
    if rc == 5 and pytest_args and PYTEST in cmd:
        rc = 0  # nothing collected: the caller's own selection (-k) left this step's tests out
    results.append((name, rc))
    print("\n[beside the fleet tests] %s: %s in %.0f s (CPU %.0f s)" % (
        name, "ok" if rc == 0 else "FAILED (exit %d)" % rc, time.monotonic() - start, cpu), flush=True)


def beside(pytest_args, log, results):
    """The second line's steps, all started at once at a lower priority than the fleet line: the lint and the tests
    without the fleet one after the other, the mutations, the other cores' unit tests. Run one after the other they
    left the machine idle whenever a fleet test waited (on HAProxy, a service starting) while the line ran one
    single-threaded step; side by side they fill those waits. The fleet line is the longer one (its tests run one at
    a time), so this line runs at the lowest priority: it takes what the fleet line leaves."""
    nice = [PYTHON, "-c", LOWEST]

    def alone(name, cmd, out):
        thread = threading.Thread(target=step, args=(name, cmd, pytest_args, out, results))
        thread.start()
        return thread

    with tempfile.TemporaryFile("w+") as cores_log, tempfile.TemporaryFile("w+") as mutations_log:
        cores = alone("unit tests on the other ansible-cores",
                      [*nice, PYTEST, "-q", "-m", "other_cores", "tests/integration", *pytest_args], cores_log)
        mutations = alone("safeguard mutations", [*nice, PYTHON, os.path.join("tests", "mutate_safeguards.py"),
                                                  "--ci"], mutations_log)
        step("lint", [*nice, "make", "--no-print-directory", "lint-only"], pytest_args, log, results)
        step("tests without the fleet", [*nice, PYTEST, "-q", "--durations=30", "-m",
                                         "not fleet and not other_cores", "tests", *pytest_args],
             pytest_args, log, results)
        for thread, out in ((mutations, mutations_log), (cores, cores_log)):
            thread.join()
            out.seek(0)
            log.write(out.read())


def main(pytest_args):
    results = []
    with tempfile.TemporaryFile("w+") as log:
        other = threading.Thread(target=beside, args=(pytest_args, log, results))
        other.start()
        fleet, cpu = wait(subprocess.Popen([PYTEST, "-q", "--durations=60", "-m", "fleet and not quiet",
                                            "tests/integration", *pytest_args], cwd=REPO, stdin=subprocess.DEVNULL))
        print("\n[the fleet tests] CPU %.0f s (their controller's; the hosts' sshd are not counted)" % cpu, flush=True)
        other.join()
        print("\n[the fleet tests that time a reaction, on a quiet machine]", flush=True)
        quiet = subprocess.run([PYTEST, "-q", "-m", "fleet and quiet", "tests/integration", *pytest_args], cwd=REPO,
                               stdin=subprocess.DEVNULL).returncode
        # Nothing collected is a failure, unless the caller's own selection (-k) left these tests out.
        fleet = fleet or (0 if quiet == 5 and pytest_args else quiet)
        log.seek(0)
        sys.stdout.write("\n===== beside the fleet tests: lint, tests without the fleet, safeguard mutations, "
                         "the other cores' unit tests =====")
        sys.stdout.write(log.read())
    if len(results) < 4:  # the second line died before every step said how it ended
        results.append(("beside the fleet (died)", 1))
    results.insert(0, ("fleet tests", fleet))
    print("\n===== make test =====")
    for name, rc in results:
        print("%-26s %s" % (name, "ok" if rc == 0 else "FAILED (exit %d)" % rc))
    return 0 if all(rc == 0 for _, rc in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        for started in STARTED:
            if started.poll() is None:
                os.killpg(started.pid, signal.SIGTERM)
        raise

"""Every ansible-core that AWX and AAP users run (2.16 to 2.19) runs lockstep's unit tests and releases and halts on
the real fleet, each from its own virtualenv.

The versions are named once, in requirements.txt: the development pin (`ansible-core==X`, `.venv/`, on which
`make test` runs everything) and one `# also supported: ansible-core==X` line per other minor (the latest patch of
each). For each of those this file builds `.venvs/ansible-core-X/` (all at once, reused while the pins are
unchanged) and runs there:
- the unit tests that touch ansible-core (all of tests/unit but VERSION_INDEPENDENT and DEV_CORE_ONLY): the older
  versions take the files in turn, so each file runs on one of them and on the development core (``unit_files``),
  the three versions at once (the last test, which needs no fleet: `make test` runs it beside the fleet tests);
- on a fleet of 4 hosts on 1.0.0 (canary, then one wave), a clean release of 2.1.0 and a release of 2.2.0 halted
  by its smoke check and rolled back, with the ledger's report checked against what every host really runs (a
  report that contradicts the fleet was the failure seen on 2.16 and 2.18); on the oldest also a refusal.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml
from release_helpers import REPO, Run, assert_whole_fleet_on, env, ledgers, records_in, release_cmd

VENVS = os.path.join(REPO, ".venvs")
REQUIREMENTS = os.path.join(REPO, "requirements.txt")
# Unit test files whose outcome cannot depend on ansible-core: they never import ansible or the collection, never
# run an Ansible command or a module (the fleet tool, the sample service and its build, the repository scan).
# Everything else under tests/unit runs on every supported version, new files included.
VERSION_INDEPENDENT = ["test_fleet_render.py", "test_fleet_tools.py", "test_no_insecure_ssh.py",
                       "test_sample_build.py", "test_sample_service.py"]
# Unit tests that touch lockstep but run on the development core only, each for its reason.
DEV_CORE_ONLY = {
    "test_awx_workflow.py": "it drives release/verify/halt through ansible-runner, which the range's virtualenvs "
                            "do not hold (about 70 s of both cores); the same playbooks run on each core below",
    "test_report_browser.py": "the report in a real browser (selenium, chromium); the page is rendered from the "
                              "ledger by test_report.py, which runs on every core",
    "test_release_in_miniature.py": "lockstep's playbooks in miniature, for the safeguard mutations (about 2 min of "
                                    "both cores); the same playbooks release and halt on each core on the fleet below",
    # Single tests of a file that otherwise runs on every core.
    "test_progress_callback.py::test_an_ansible_runner_job_shows_the_same_lines":
        "an AWX job through ansible-runner, which only the development core's virtualenv holds: on another core it "
        "would run the development core's ansible-playbook again (about 35 s of a core)",
    "test_progress_callback.py::test_an_ansible_runner_job_ignores_the_stdout_callback_of_ansible_cfg":
        "the same, for the job's stdout callback",
}


def requirements():
    with open(REQUIREMENTS) as f:
        return f.read()


def dev_core():
    return re.search(r"^ansible-core==(\S+)$", requirements(), re.M).group(1)


def other_cores():
    """The other supported ansible-core versions, oldest first: ``["2.16.19", ...]``."""
    found = re.findall(r"^# also supported: ansible-core==(\S+)$", requirements(), re.M)
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def minor(version):
    return tuple(int(p) for p in version.split(".")[:2])


def pin(name):
    return re.search(r"^(%s==\S+)$" % re.escape(name), requirements(), re.M | re.I).group(1)


def build_venv(version):
    """``.venvs/ansible-core-<version>/``: that ansible-core and what lockstep's controller side and its unit tests
    need, as requirements.txt pins them; pip of the development virtualenv installs into it (no pip bootstrap)."""
    path = os.path.join(VENVS, "ansible-core-%s" % version)
    spec = ["ansible-core==%s" % version] + [pin(n) for n in ("prometheus-client", "PyYAML", "pytest")]
    # What they pull in at the versions requirements.txt pins, but ansible-core and resolvelib (each ansible-core
    # sets resolvelib's range): a dependency's new release must not change a run on an older core either.
    pins = sorted(p for p in re.findall(r"^(\S+==\S+)$", requirements(), re.M)
                  if p.split("==")[0].lower() not in ("ansible-core", "resolvelib"))
    stamp = os.path.join(path, ".installed")
    if os.path.exists(stamp) and open(stamp).read() == " ".join(spec + pins):
        return path
    subprocess.run([sys.executable, "-m", "venv", "--clear", "--without-pip", path], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as constraints:
        constraints.write("\n".join(pins) + "\n")
        constraints.flush()
        proc = subprocess.run([sys.executable, "-m", "pip", "--python", os.path.join(path, "bin", "python"),
                               "install", "-q", "-c", constraints.name, *spec],
                              capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(stamp, "w") as f:
        f.write(" ".join(spec + pins))
    return path


@pytest.fixture(scope="module")
def venvs():
    """``{version: virtualenv path}`` for every supported ansible-core but the development pin, built in parallel
    (one build at a time per machine: a second test run waits, then reuses them)."""
    os.makedirs(VENVS, exist_ok=True)
    with open(os.path.join(VENVS, ".lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with concurrent.futures.ThreadPoolExecutor() as pool:
            built = dict(zip(other_cores(), pool.map(build_venv, other_cores()), strict=True))
    for version, path in built.items():
        out = subprocess.run([os.path.join(path, "bin", "ansible-playbook"), "--version"], capture_output=True,
                             text=True).stdout
        assert "[core %s]" % version in out.splitlines()[0], out
    return built


def unit_files(files, versions):
    """``{version: the unit test files it runs}``: the versions before the development core take the files in turn,
    so each file runs on one of them and on the development core. 2.16 to 2.18 share the templating engine 2.19
    replaced, the task result's underscored API and the strategy lockstep's callbacks see, so a file shows there
    what it shows on any of them; each of them still releases and halts on the fleet. Every file on the oldest as
    well had cost `make test` about 200 CPU seconds on a machine that is busy through the whole run
    (docs/performance.md)."""
    shares = {v: files[i::len(versions)] for i, v in enumerate(versions)}
    assert sorted(f for share in shares.values() for f in share) == sorted(files), shares
    return shares


@pytest.fixture(scope="module")
def unit_runs(venvs):
    """The unit tests that touch ansible-core, on every other supported version at once, started in the background.
    ``{version: (process, output file)}``; the test that asks for them collects them, and whatever still runs when
    the module ends is stopped."""
    unit = os.path.join(REPO, "tests", "unit")
    files = unit_files(sorted(n for n in os.listdir(unit) if n.startswith("test_") and n.endswith(".py")
                              and n not in VERSION_INDEPENDENT and n not in DEV_CORE_ONLY), list(venvs))
    # A short base directory: some unit tests put Unix sockets in their tmp_path (at most 107 bytes).
    base = tempfile.mkdtemp(prefix="lockstep-units-")
    runs = {}
    for version, path in venvs.items():
        e = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_", "PYTEST_"))}
        e["PATH"] = os.path.join(path, "bin") + os.pathsep + e["PATH"]
        out = open(os.path.join(base, "%s.out" % version), "w+")
        runs[version] = (subprocess.Popen(
            [os.path.join(path, "bin", "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
             os.path.join(base, version), *(os.path.join(unit, n) for n in files[version]),
             *("--deselect=tests/unit/" + n for n in DEV_CORE_ONLY if "::" in n)],  # a node id, from REPO
            cwd=REPO, env=e, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), out)
    yield runs
    for proc, out in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
    shutil.rmtree(base)


def test_supported_range_is_declared_as_tested():
    """meta/runtime.yml and the README's table say the range requirements.txt tests: one pin per minor, no gap."""
    cores = other_cores() + [dev_core()]
    minors = [minor(v) for v in cores]
    assert minors == [(2, minors[0][1] + i) for i in range(len(minors))], cores
    with open(os.path.join(REPO, "meta", "runtime.yml")) as f:
        requires = yaml.safe_load(f)["requires_ansible"]
    assert requires == ">=%d.%d.0,<%d.%d.0" % (minors[0] + (minors[-1][0], minors[-1][1] + 1)), requires
    with open(os.path.join(REPO, "README.md")) as f:
        table = f.read().split("## Supported versions", 1)[1].split("\n## ", 1)[0]
    for version in cores:
        assert "| %d.%d | 3.11 |" % minor(version) in table and version in table, (version, table)
    assert sys.version_info[:2] == (3, 11), sys.version


# The canary, then one wave: still Ansible's serial list with a percentage, forward and back, at one batch less.
WAVES = {"lockstep_canary": 1, "lockstep_waves": ["100%"]}


def run(tmp_path, venv, version, extra=None):
    cmd = release_cmd(version, dict(WAVES, **(extra or {})))
    cmd[0] = os.path.join(venv, "bin", "ansible-playbook")
    e = env(tmp_path)
    e["PATH"] = os.path.join(venv, "bin") + os.pathsep + e["PATH"]
    before = ledgers(tmp_path)
    proc = subprocess.run(cmd, cwd=REPO, env=e, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    return Run(proc.returncode, proc.stdout + proc.stderr, records_in(tmp_path, before))


def assert_report_is_the_fleet(fleet, result, core, before, after):
    """The ledger (what people and AWX read) says what every host really runs, and that this ansible-core ran;
    the ledger callback worked through the whole run (ansible-core only warns when a callback method raises)."""
    assert result.records[0]["ansible_version"] == core, result.records[0]
    assert "Failure using method" not in result.out, result
    events = {r["event"] for r in result.records}
    assert {"host_state", "gate", "wave", "status_reported"} <= events, (sorted(events), result)
    assert_whole_fleet_on(fleet, after)
    last = result.records[-1]
    assert last["event"] == "release_finished" and last["status_consistent"] is True, last
    assert (last["version_before"], last["version_after"]) == (before, after), last
    assert {h: rec["after"] for h, rec in last["hosts"].items()} == dict.fromkeys(fleet.hosts, after), last
    assert result.stats.get("lockstep_status") == result.status, result.stats


@pytest.mark.parametrize("core", other_cores())
def test_release_and_halt_on_each_supported_ansible_core(core, venvs, fleet, tmp_path):
    venv = venvs[core]
    fleet.up(hosts=4, version="1.0.0")

    clean = run(tmp_path, venv, "2.1.0")
    assert clean.rc == 0 and clean.status == "succeeded", clean
    assert_report_is_the_fleet(fleet, clean, core, "1.0.0", "2.1.0")

    halted = run(tmp_path, venv, "2.2.0", {"lockstep_smoke_commands": ["false"]})
    assert halted.rc == 2 and halted.status == "rolled_back", halted
    assert halted.records[-1]["halted_by"]["gate"] == "smoke", halted.records[-1]
    assert any(r["event"] == "rollback_step" for r in halted.records), halted
    assert_report_is_the_fleet(fleet, halted, core, "2.1.0", "2.1.0")

    if core == other_cores()[0]:
        refused = run(tmp_path, venv, "9.9.9")
        assert refused.rc == 2 and refused.status == "refused" and "unknown version 9.9.9" in refused.out, refused
        assert_whole_fleet_on(fleet, "2.1.0")
    assert not os.path.exists(os.path.join(fleet.root, ".fleet", "lockstep-release.lock"))


# No fleet: tests/run_all.py runs it as the last step beside the fleet tests, at a low priority, where the fleet
# line alone would leave a core idle at its end.
@pytest.mark.without_fleet
@pytest.mark.other_cores
def test_unit_tests_pass_on_every_supported_ansible_core(unit_runs):
    """The unit runs, the three cores at once, collected."""
    for name in VERSION_INDEPENDENT:  # the reason they may be left out still holds
        with open(os.path.join(REPO, "tests", "unit", name)) as f:
            text = f.read()
        for word in ("import ansible", "from ansible", "ansible_collections", "ansible-", "run_play", "run_module",
                     "call_module", "bin/lockstep", '"lockstep"'):
            assert word not in text, (name, word)
    for name in DEV_CORE_ONLY:
        path, _, test = name.partition("::")
        with open(os.path.join(REPO, "tests", "unit", path)) as f:
            assert not test or "\ndef %s(" % test in f.read(), name
    for version, (proc, out) in unit_runs.items():
        proc.wait(timeout=1800)  # three cores at once beside the releases, on 2 cores
        out.seek(0)
        text = out.read()
        assert proc.returncode == 0, "ansible-core %s:\n%s" % (version, text[-8000:])
        # Passed, nothing else: a deprecation warning of an older core (2.16's crypt) is said, not a failure.
        assert re.search(r"^\d+ passed(, \d+ deselected)?(, \d+ warnings?)? in ", text, re.M), (
            "ansible-core %s:\n%s" % (version, text[-3000:]))

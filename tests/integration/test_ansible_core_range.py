"""The oldest ansible-core that AWX and AAP users run still releases, halts and refuses correctly on the real fleet.

Its version is named once, in requirements.txt (`# oldest: ansible-core==X`); the test builds a virtualenv for it
(.venv-oldest/, reused while the pin is unchanged) with lockstep's controller-side needs, and runs the release
playbook from there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from release_helpers import REPO, assert_whole_fleet_on, env, records_in

VENV = os.path.join(REPO, ".venv-oldest")


def oldest_venv():
    with open(os.path.join(REPO, "requirements.txt")) as f:
        text = f.read()
    core = re.search(r"^# oldest: (ansible-core==\S+)$", text, re.M).group(1)
    prometheus = re.search(r"^(prometheus-client==\S+)$", text, re.M).group(1)
    stamp = os.path.join(VENV, ".installed")
    if not os.path.exists(stamp) or open(stamp).read() != core:
        subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", core, prometheus, "PyYAML"], check=True)
        with open(stamp, "w") as f:
            f.write(core)
    return os.path.join(VENV, "bin", "ansible-playbook")


def run(tmp_path, playbook, version, **extra):
    cmd = [playbook, "-i", os.path.join(REPO, "inventory", "local"), os.path.join(REPO, "playbooks", "release.yml"),
           "-e", "lockstep_version=%s" % version, "-e", '{"lockstep_watch_seconds": 0}']
    for k, v in extra.items():
        cmd += ["-e", '{"%s": %s}' % (k, v)]
    before = set(os.listdir(tmp_path / "ledger")) if (tmp_path / "ledger").exists() else set()
    proc = subprocess.run(cmd, cwd=REPO, env=env(tmp_path), capture_output=True, text=True, timeout=600)
    records = records_in(tmp_path, before)
    status = next((r.get("status") for r in reversed(records) if r.get("event") == "release_finished"), None)
    return proc.returncode, status, proc.stdout + proc.stderr


def test_oldest_supported_ansible_core_releases_halts_and_refuses(fleet, tmp_path):
    playbook = oldest_venv()
    version = subprocess.run([playbook, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    assert "core 2.16" in version, version
    fleet.up(hosts=3, version="1.0.0")

    rc, status, out = run(tmp_path, playbook, "2.1.0")
    assert rc == 0 and status == "succeeded", out[-3000:]
    assert_whole_fleet_on(fleet, "2.1.0")

    rc, status, out = run(tmp_path, playbook, "2.2.0", lockstep_smoke_commands='["false"]')
    assert rc == 2 and status == "rolled_back", out[-3000:]
    assert_whole_fleet_on(fleet, "2.1.0")

    rc, status, out = run(tmp_path, playbook, "9.9.9")
    assert rc == 2 and status == "refused" and "unknown version 9.9.9" in out, out[-3000:]
    assert not os.path.exists(os.path.join(fleet.root, ".fleet", "lockstep-release.lock"))

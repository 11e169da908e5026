"""molecule verify for every lockstep scenario: what each host of the fleet really has and runs, read over SSH.

testinfra connects to every host of the group `app` with the fleet's own inventory (keys, known_hosts). The
scenario says what the fleet must look like in ``LOCKSTEP_MOLECULE_EXPECT`` (its molecule.yml, verifier.env)::

    {"version": "1.0.0", "releases": ["1.0.0"], "lb": "UP", "login": "root", "service_user": "root",
     "hosts": {"h3": {"version": "2.1.0", "releases": ["1.0.0", "2.1.0"], "lb": "MAINT"}}}

``version``: the release ``current`` points to, the one the process listening on the host's service port was
started from, and the one it reports over HTTP; ``releases``: the release directories on disk, each with the
manifest of that version; ``lb``: the host's server in HAProxy's own ``show stat``. Nothing here reads a ledger:
the hosts are the truth.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from urllib.parse import urlsplit

import pytest

from lockstep_fleet import Fleet

EXPECT = json.loads(os.environ.get("LOCKSTEP_MOLECULE_EXPECT", "{}"))
PROJECT = os.environ["MOLECULE_PROJECT_DIRECTORY"]
HOSTS = 3  # molecule/shared/create.yml


def expected(host, key, default=None):
    per_host = EXPECT.get("hosts", {}).get(host.backend.get_hostname(), {})
    return per_host.get(key, EXPECT.get(key, default))


@pytest.fixture
def hostvars(host):
    return host.ansible.get_variables()


@pytest.fixture
def listener(host, hostvars):
    """The process listening on the host's service address, found through the kernel's socket table (``ss -p``
    inside the host's PID namespace), not through the pidfile the service writes."""
    url = urlsplit(hostvars["lockstep_service_url"])
    sock = host.socket("tcp://%s:%d" % (url.hostname, url.port))
    assert sock.is_listening, "nothing listens on %s" % hostvars["lockstep_service_url"]
    out = host.check_output("ss -Hltnp src %s", "%s:%d" % (url.hostname, url.port))
    pids = set(re.findall(r"pid=(\d+)", out))
    assert len(pids) == 1, out
    return int(pids.pop())


def test_the_inventory_has_every_host_of_the_fleet(host):
    # No vacuous pass: testinfra runs this file once per host of the group app.
    names = host.ansible.get_variables()["groups"]["app"]
    assert len(names) == HOSTS, names


def test_current_points_to_the_expected_release(host, hostvars):
    current = host.file(hostvars["lockstep_base"] + "/current")
    assert current.is_symlink
    assert host.check_output("readlink %s", current.path) == "releases/" + expected(host, "version")


def test_release_directories_on_disk_are_the_expected_ones_with_their_manifests(host, hostvars):
    releases = hostvars["lockstep_base"] + "/releases"
    on_disk = sorted(host.check_output("ls -1 %s", releases).split())
    assert on_disk == sorted(expected(host, "releases")), on_disk
    for version in on_disk:
        manifest = json.loads(host.file("%s/%s/MANIFEST.json" % (releases, version)).content_string)
        assert manifest["version"] == version, manifest


def test_the_listening_process_was_started_from_the_expected_release(host, hostvars, listener):
    release_dir = "%s/releases/%s" % (hostvars["lockstep_base"], expected(host, "version"))
    # The kernel's view of the process: its real working directory (bin/ctl starts it from the release).
    assert host.check_output("readlink /proc/%s/cwd", str(listener)) == release_dir
    assert host.process.get(pid=listener).comm.startswith("python")


def test_the_login_and_the_service_run_as_the_expected_users(host, hostvars, listener):
    # Scenario default logs in as a deploy user with sudo and runs the service as its own user, as teams do.
    assert hostvars["ansible_user"] == EXPECT.get("login", "root"), hostvars["ansible_user"]
    assert host.process.get(pid=listener).user == EXPECT.get("service_user", "root")


def test_the_process_reports_the_expected_version_over_http(host, hostvars, listener):
    body = host.check_output(
        "python3 -c %s %s",
        "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
        hostvars["lockstep_service_url"] + "/version")
    version = json.loads(body)
    assert version["version"] == expected(host, "version"), version
    assert version["directory"] == "%s/releases/%s" % (hostvars["lockstep_base"], version["version"]), version
    assert version["pid"] == listener, (version, listener)


def test_haproxy_sends_traffic_to_the_expected_servers():
    rows = csv.DictReader(io.StringIO(Fleet(PROJECT).haproxy("show stat").lstrip("# ")))
    status = {r["svname"]: r["status"] for r in rows
              if r["pxname"] == "order_router" and r["svname"] not in ("FRONTEND", "BACKEND")}
    want = {"h%d" % i: EXPECT.get("hosts", {}).get("h%d" % i, {}).get("lb", EXPECT.get("lb", "UP"))
            for i in range(1, HOSTS + 1)}
    assert status == want

"""A service that is not the sample and shares none of its code, released by lockstep on the real local fleet.

"static-site" is the standard library's ``python3 -m http.server`` started by a 40-line shell supervisor
(``any_service/ctl``) from the release directory: ``/version`` answers plain text (the release's ``version`` file),
``/health`` is a file, the only record of the process is a pidfile. Its artifacts are built by ``bin/lockstep
package``; it is described to lockstep by extra vars alone (``any_service/static_site.yml``). Every verdict is
taken from what the hosts serve (their own address and through HAProxy) and from /proc on the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import about_site
import yaml
from release_helpers import REPO, lb_status, release

from lockstep_fleet.render import host_ip

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "any_service")
BASE = "/srv/static-site"
with open(os.path.join(HERE, "static_site.yml")) as _f:
    VARS = yaml.safe_load(_f)


def build(tmp_path, version, healthy=True):
    """The release directory of ``version`` packaged with ``bin/lockstep package``; without ``health`` when not
    ``healthy`` (the broken release: its /health answers 404)."""
    src = tmp_path / "src" / version
    (src / "bin").mkdir(parents=True)
    shutil.copy(os.path.join(HERE, "ctl"), src / "bin" / "ctl")
    (src / "version").write_text(version + "\n")
    (src / "index.html").write_text("<h1>static-site %s</h1>\n" % version)
    # The watch phase scrapes every host's metrics; a static page is all this service offers.
    (src / "metrics").write_text("# TYPE static_site_up gauge\nstatic_site_up 1\n")
    if healthy:
        (src / "health").write_text("ok\n")
    proc = subprocess.run([sys.executable, os.path.join(REPO, "bin", "lockstep"), "package", str(src), "--version",
                           version, "--name", "static-site", "--out", str(tmp_path / "artifacts")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def ship(tmp_path, version):
    return release(tmp_path, version, extra=dict(VARS, lockstep_artifact_dir=str(tmp_path / "artifacts")))


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.read().decode().strip()
    except (urllib.error.URLError, OSError) as e:
        return "unreachable: %s" % e


def served(fleet):
    """``{host: what its /version answers}`` from the host's own address."""
    return {h: get("http://%s:8080/version" % host_ip(h)) for h in fleet.hosts}


def on_host(fleet, host):
    """The active release and the release the pidfile's process was started from, read on the host."""
    current = fleet.exec(host, "readlink", "-f", BASE + "/current").stdout.strip()
    cwd = fleet.exec(host, "sh", "-c", "readlink /proc/$(cat %s/run/http.pid)/cwd" % BASE).stdout.strip()
    return current, cwd


def assert_serving(fleet, version):
    assert set(served(fleet).values()) == {version}, served(fleet)
    for host in fleet.hosts:
        assert on_host(fleet, host) == (BASE + "/releases/" + version,) * 2, (host, on_host(fleet, host))
    # Through the load balancer, every server UP and answering the same version.
    assert {get("http://127.0.0.1:8000/version") for _ in range(6)} == {version}
    assert set(lb_status(fleet).values()) == {"UP"}, lb_status(fleet)


def test_first_clean_and_halted_releases(fleet, tmp_path):
    # One fleet for the three: a first release onto bare hosts, a clean release, a broken one rolled back.
    fleet.up(hosts=3)  # no --version: bare hosts, nothing listens on :8080
    assert set(served(fleet).values()) != {"1.0.0"}
    build(tmp_path, "1.0.0")
    build(tmp_path, "2.0.0")
    build(tmp_path, "3.0.0", healthy=False)
    first = ship(tmp_path, "1.0.0")
    assert first.rc == 0 and first.status == "succeeded", first
    assert_serving(fleet, "1.0.0")

    run = ship(tmp_path, "2.0.0")
    assert run.rc == 0, run
    assert run.status == "succeeded", run
    assert_serving(fleet, "2.0.0")
    for host in fleet.hosts:
        kept = fleet.exec(host, "ls", BASE + "/releases").stdout.split()
        assert kept == ["1.0.0", "2.0.0"], (host, kept)

    run = ship(tmp_path, "3.0.0")
    assert run.rc != 0, run
    assert run.status == "rolled_back", run
    halted = next(r for r in reversed(run.records) if r.get("event") == "release_finished")
    assert "health" in str(halted), halted
    # The canary served 3.0.0 for a moment; every host serves 2.0.0 again, from the 2.0.0 release.
    assert_serving(fleet, "2.0.0")


def test_an_application_from_a_package_index_nested_version_no_health_no_metrics(fleet, tmp_path):
    # about-site (about_site.py): the version only nested in a JSON document, no /health, no /metrics; HAProxy
    # checks the document's path; the build machine's cache and scripts left out of the package.
    fleet.up(hosts=3, health_path="/about")
    artifacts = about_site.build(tmp_path, "1.0.0")
    # An application version with new data: its manifest says the service reports 2.0.0.
    about_site.build(tmp_path, "2.0.0-data2", reports="2.0.0")
    about_site.build(tmp_path, "2.1.0", reports="2.0.9", declare=False)
    extra = dict(about_site.VARS, lockstep_artifact_dir=artifacts)

    for version, reports in (("1.0.0", "1.0.0"), ("2.0.0-data2", "2.0.0")):
        run = release(tmp_path, version, extra=extra)
        assert run.rc == 0 and run.status == "succeeded", run
        assert {get("http://%s:8080/about" % host_ip(h)) for h in fleet.hosts} == {
            json.dumps(about_site.about(reports), sort_keys=True)}
        for host in fleet.hosts:
            current = fleet.exec(host, "readlink", about_site.BASE + "/current").stdout.strip()
            assert current == "releases/" + version, (host, current)
    assert set(lb_status(fleet).values()) == {"UP"}, lb_status(fleet)
    for host in fleet.hosts:
        tree = fleet.exec(host, "find", about_site.BASE + "/releases/2.0.0-data2").stdout
        assert "/bin/ctl" in tree and ".cache" not in tree and "scripts" not in tree, (host, tree)

    # A release whose document reports another version than its label, undeclared: the version check halts it,
    # and the rollback proves every host back on 2.0.0-data2 by what that release's manifest says it reports.
    wrong = release(tmp_path, "2.1.0", extra=extra)
    assert wrong.rc != 0 and wrong.status == "rolled_back", wrong
    assert "2.0.9" in wrong.out, wrong
    assert {get("http://%s:8080/about" % host_ip(h)) for h in fleet.hosts} == {
        json.dumps(about_site.about("2.0.0"), sort_keys=True)}
    for host in fleet.hosts:
        current = fleet.exec(host, "readlink", about_site.BASE + "/current").stdout.strip()
        assert current == "releases/2.0.0-data2", (host, current)
    assert set(lb_status(fleet).values()) == {"UP"}, lb_status(fleet)

"""The "about-site" variant of the second service (tests/integration/about_site.py), proven without the fleet: built
by ``bin/lockstep package --exclude``, staged and switched by the real deploy module, started by its real supervisor
(``any_service/ctl``, ``python3 -m http.server``) on 127.0.0.1 with a kernel-chosen port, and read the way lockstep
reads it with its extra vars (about_site.yml): the version nested in ``GET /about``, no /health, no /metrics."""

import json
import os
import socket
import subprocess
import tarfile
import urllib.error
import urllib.request

import about_site
import pytest

from ansible_collections.lockstep.release.plugins.action.smoke import check_step, substitute
from ansible_collections.lockstep.release.plugins.module_utils.release_state import parse_version


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


@pytest.fixture
def site(tmp_path, run_module):
    """``site(version, reports=None) -> deploy result``: the variant built, staged and made active on a host base
    in ``tmp_path`` (its service on ``site.url``), as the rollout's deploy task does with about_site.yml."""
    base = tmp_path / "srv" / "static-site"
    port = _free_port()
    ctl = ["env", "STATIC_SITE_BASE=%s" % base, str(base / "current" / "bin" / "ctl")]
    url = "http://127.0.0.1:%d" % port
    v = about_site.VARS

    def make(version, reports=None, timeout=15, declare=True):
        out = about_site.build(tmp_path / version, version, reports=reports, declare=declare)
        manifest = json.loads(open(os.path.join(out, "about-site-%s.manifest.json" % version)).read())
        rc, res = run_module("deploy", dict(base=str(base), state="staged", version=version, manifest=manifest,
                                            artifact_path=os.path.join(out, "about-site-%s.tar.gz" % version)))
        assert rc == 0, res
        return run_module("deploy", dict(
            base=str(base), state="active", version=version, restart_command=ctl + ["restart", "127.0.0.1",
                                                                                      str(port)],
            health_url=url + v["lockstep_health_path"], version_url=url + v["lockstep_version_path"],
            version_field=v["lockstep_version_field"], pidfile=str(base / "run" / "http.pid"), timeout=timeout))

    make.url, make.base = url, base
    yield make
    if (base / "current").exists():
        subprocess.run(ctl + ["stop"], capture_output=True, timeout=30)


def test_the_package_leaves_the_build_machine_out(tmp_path):
    out = about_site.build(tmp_path, "1.0.0")
    with tarfile.open(os.path.join(out, "about-site-1.0.0.tar.gz")) as tar:
        assert sorted(tar.getnames()) == ["about", "bin", "bin/ctl", "index.html"]
        assert json.load(tar.extractfile("about")) == {"app": {"name": "about-site", "version": "1.0.0"},
                                                       "status": "ok"}


def test_released_and_read_as_lockstep_reads_it(site):
    rc, res = site("1.0.0")
    assert rc == 0, res
    state = res["lockstep_state"]
    assert state["consistent"] is True and state["running"]["version"] == "1.0.0"
    assert state["running"]["pid_source"] == "pidfile"  # a pidfile its only record of the process
    # Its traits: the version nested in a JSON document, no health endpoint, no Prometheus metrics.
    status, body = _get(site.url + "/about")
    assert status == 200 and json.loads(body)["app"]["version"] == "1.0.0"
    assert parse_version(body, about_site.VARS["lockstep_version_field"])[0] == "1.0.0"
    assert parse_version(body, None)[0] is None  # lockstep's default field ("version") finds nothing
    assert _get(site.url + "/health")[0] == 404
    assert _get(site.url + "/metrics")[0] == 404
    # Its smoke checks, as the smoke phase substitutes them: the nested version, the name, through dotted keys.
    names = {"host": "h1", "url": site.url, "lb": site.url, "run": "r1", "flags": [], "version": "1.0.0",
             "service_version": "1.0.0"}
    for check in about_site.VARS["lockstep_smoke_checks"]:
        step = substitute({k: v for k, v in check.items() if k not in ("name", "per_host")}, names)
        assert check_step(step, timeout=5) is None, check["name"]
    step = substitute({"url": "{url}/about", "json": {"app.version": "{version}"}}, dict(names, version="2.0.0"))
    assert "app.version is '1.0.0', expected '2.0.0'" in check_step(step, timeout=5)
    # And the next release replaces it.
    rc, res = site("2.0.0")
    assert rc == 0, res
    assert res["lockstep_state"]["running"]["version"] == "2.0.0"
    assert res["lockstep_state"]["running"]["cwd"] == str(site.base / "releases" / "2.0.0")


def test_a_label_other_than_the_reported_version_is_proven_by_its_manifest(site):
    # The same application version with new data: label 1.0.0-data2, /about still says 1.0.0. Undeclared, that is
    # a process that does not run the release; declared in the manifest (package --service-version), it is proven.
    assert site("1.0.0")[0] == 0
    rc, res = site("1.0.0-data1", reports="1.0.0", timeout=3, declare=False)
    assert rc != 0
    assert res["lockstep_check"] == "running-version", res
    rc, res = site("1.0.0-data2", reports="1.0.0")
    assert rc == 0, res
    run = res["lockstep_state"]["running"]
    assert (run["version"], run["reported_version"]) == ("1.0.0-data2", "1.0.0"), run
    assert res["lockstep_state"]["consistent"] is True, res

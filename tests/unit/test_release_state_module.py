"""lockstep.release.state, run as Ansible runs a module, on temporary host base directories.

Releases are staged with the real deploy module from the real artifacts; running processes are real.
"""

import json
import os
import sys

import pytest


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "srv" / "order-router"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def staged(staged_base):
    """The real 2.0.0 and 2.1.0 releases staged by the deploy module, 2.1.0 active (``current`` -> releases/2.1.0)."""
    os.symlink("releases/2.1.0", staged_base / "current")
    return staged_base


def state(run_module, base, **args):
    rc, res = run_module("state", dict(base=str(base), **args))
    assert rc == 0, res
    assert res["changed"] is False
    return res["lockstep_state"]


def test_bare_host(run_module, base):
    st = state(run_module, base)
    assert st["bare"] is True
    assert st["active_version"] is None
    assert st["releases"] == []
    assert st["consistent"] is False
    assert st["disk_free_bytes"] > 0
    assert st["running"]["reachable"] is False
    assert st["running"]["error"] == "no version URL configured"


def test_base_that_does_not_exist_yet_is_bare(run_module, tmp_path):
    st = state(run_module, tmp_path / "no" / "such" / "base")
    assert st["bare"] is True
    assert st["disk_free_bytes"] > 0


def test_valid_active_release(run_module, staged, artifacts):
    st = state(run_module, staged, flags_file="flags.json")
    assert st["bare"] is False
    assert st["active_version"] == "2.1.0"
    assert st["active_path"] == str(staged / "releases" / "2.1.0")
    assert st["active_valid"] is True
    assert st["active_problem"] is None
    assert st["active_content_sha256"] == artifacts["2.1.0"][1]["content_sha256"]
    assert [(r["version"], r["valid"], r["sha256"]) for r in st["releases"]] == [
        ("2.0.0", True, artifacts["2.0.0"][1]["sha256"]), ("2.1.0", True, artifacts["2.1.0"][1]["sha256"])]
    with open(staged / "releases" / "2.1.0" / "flags.json") as f:
        assert st["flags"] == json.load(f)
    # Valid on disk, but nothing proven to run it.
    assert st["consistent"] is False


def test_tampered_file_in_active_release_is_reported(run_module, staged):
    (staged / "releases" / "2.1.0" / "routing.py").write_text("# edited on the host\n")
    st = state(run_module, staged)
    assert st["active_version"] == "2.1.0"
    assert st["active_valid"] is False
    assert "does not match the manifest" in st["active_problem"]
    by_version = {r["version"]: r for r in st["releases"]}
    assert by_version["2.1.0"]["valid"] is False
    assert by_version["2.0.0"]["valid"] is True


def test_mode_change_in_active_release_is_reported(run_module, staged):
    os.chmod(staged / "releases" / "2.1.0" / "bin" / "ctl", 0o644)
    st = state(run_module, staged)
    assert st["active_valid"] is False
    assert st["active_problem"]


def test_release_renamed_to_another_version_is_not_trusted(run_module, staged):
    os.rename(staged / "releases" / "2.0.0", staged / "releases" / "2.2.0")
    st = state(run_module, staged)
    renamed = next(r for r in st["releases"] if r["version"] == "2.2.0")
    assert renamed["valid"] is False
    assert renamed["problem"] == "manifest says version '2.0.0', directory is named '2.2.0'"


def test_current_pointing_outside_the_kept_releases(run_module, staged, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.unlink(staged / "current")
    os.symlink(str(elsewhere), staged / "current")
    st = state(run_module, staged)
    assert st["active_version"] is None
    assert st["active_valid"] is False
    assert st["active_problem"] == "current points at %s, which is not a kept release" % elsewhere


def test_running_info_comes_from_the_version_url_and_proc(run_module, staged, http_service):
    me = {"version": "2.1.0", "sha256": "abc", "directory": os.getcwd(), "pid": os.getpid()}
    svc = http_service({"/version": (200, me)})
    (staged / "run").mkdir()
    (staged / "run" / "router.pid").write_text("4242\n")
    st = state(run_module, staged, version_url=svc.url + "/version", pidfile=str(staged / "run" / "router.pid"))
    run = st["running"]
    assert run["reachable"] is True
    assert run["error"] is None
    assert run["version"] == "2.1.0"
    assert st["running_version"] == "2.1.0"
    assert run["pid"] == os.getpid()
    assert run["pidfile_pid"] == 4242
    # The kernel's view of the pid that answered, not what it claims:
    assert run["cwd"] == os.path.realpath(os.getcwd())
    assert run["exe"] == os.path.realpath(sys.executable)
    # It claims 2.1.0 but does not run from the active release directory.
    assert run["from_active"] is False
    assert st["consistent"] is False


def test_process_running_from_the_active_release_is_consistent(run_module, staged, fake_service):
    service = fake_service(staged)
    rc, res = run_module("deploy", dict(base=str(staged), state="active", version="2.1.0",
                                        restart_command=service.restart_command, health_url=service.health_url,
                                        version_url=service.version_url, timeout=10))
    assert rc == 0, res
    st = state(run_module, staged, version_url=service.version_url)
    assert st["running"]["from_active"] is True
    assert st["running"]["cwd"] == str(staged / "releases" / "2.1.0")
    assert st["consistent"] is True

    # current switched under the running process: on disk 2.0.0, the process still runs 2.1.0.
    os.unlink(staged / "current")
    os.symlink("releases/2.0.0", staged / "current")
    st = state(run_module, staged, version_url=service.version_url)
    assert st["active_version"] == "2.0.0"
    assert st["running_version"] == "2.1.0"
    assert st["running"]["from_active"] is False
    assert st["consistent"] is False


def test_version_url_that_does_not_answer_is_reported_not_fatal(run_module, staged, http_service):
    svc = http_service({})
    st = state(run_module, staged, version_url=svc.url + "/version", timeout=2)
    assert st["running"]["reachable"] is False
    assert st["running"]["error"].startswith("GET %s/version" % svc.url)
    assert st["consistent"] is False


def test_lock_file_is_reported(run_module, staged, tmp_path):
    lock = tmp_path / "release.lock"
    lock.write_text(json.dumps({"run_id": "r1", "version": "2.1.0"}))
    st = state(run_module, staged, lock_path=str(lock))
    assert st["lock"] == {"run_id": "r1", "version": "2.1.0"}
    assert state(run_module, staged, lock_path=str(tmp_path / "none.lock"))["lock"] is None

"""lockstep.release.deploy, run as Ansible runs a module, on a temporary host base directory.

Real artifacts (the order-router tarballs and manifests), real extraction, real symlink switching; the "service"
for state=active is a real process restarted from `current` and a real HTTP endpoint that reports what that
process runs (conftest.FakeService).
"""

import json
import os
import time

import pytest

from ansible_collections.lockstep.release.plugins.module_utils.tree_hash import tree_hash


def snapshot(root):
    """Everything about a directory tree that a test may want unchanged: paths, bytes, modes, link targets."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if os.path.islink(full):
                out[os.path.relpath(full, root)] = ("l", os.readlink(full))
            elif os.path.isfile(full):
                with open(full, "rb") as f:
                    out[os.path.relpath(full, root)] = ("f", st.st_mode, f.read())
            else:
                out[os.path.relpath(full, root)] = ("d", st.st_mode)
    return out


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "srv" / "order-router"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def stage(run_module, artifacts, base):
    """``stage(version, **overrides) -> (rc, result)``: deploy state=staged with the real artifact of a version."""

    def run(version, check_mode=False, **overrides):
        tarball, manifest = artifacts[version]
        args = dict(base=str(base), state="staged", version=version, manifest=manifest, artifact_path=tarball)
        args.update(overrides)
        return run_module("deploy", args, check_mode=check_mode)

    return run


# -- staged ------------------------------------------------------------------------------------------------------

def test_staging_creates_the_release_with_its_manifest(stage, artifacts, base):
    rc, res = stage("2.1.0")
    assert rc == 0, res
    assert res["changed"] is True
    assert res["switched"] is False
    release = base / "releases" / "2.1.0"
    manifest = artifacts["2.1.0"][1]
    assert json.loads((release / "MANIFEST.json").read_text()) == manifest
    assert tree_hash(str(release)) == manifest["content_sha256"]
    assert os.access(release / "bin" / "ctl", os.X_OK)
    # Nothing left behind next to it (the temporary extraction directory is renamed into place).
    assert sorted(os.listdir(base / "releases")) == ["2.1.0"]
    # The state it reports is the state it left: a kept, valid release, nothing active.
    state = res["lockstep_state"]
    assert [(r["version"], r["valid"]) for r in state["releases"]] == [("2.1.0", True)]
    assert state["active_version"] is None


def test_staging_again_changes_nothing(stage, base):
    assert stage("2.1.0")[0] == 0
    before = snapshot(base)
    rc, res = stage("2.1.0")
    assert rc == 0, res
    assert res["changed"] is False
    assert "already holds this release" in res["msg"]
    assert snapshot(base) == before


def test_existing_release_with_other_content_is_refused_and_left_untouched(stage, base):
    assert stage("2.1.0")[0] == 0
    routing = base / "releases" / "2.1.0" / "routing.py"
    routing.write_text(routing.read_text() + "\n# hot fix made by hand on the host\n")
    before = snapshot(base)
    rc, res = stage("2.1.0")
    assert rc != 0
    assert res["failed"] is True
    assert "releases/2.1.0 already exists with the wrong content" in res["msg"]
    assert "refusing to overwrite" in res["msg"]
    assert snapshot(base) == before


def test_a_directory_without_manifest_under_the_name_is_refused_too(stage, base):
    squatter = base / "releases" / "2.1.0"
    squatter.mkdir(parents=True)
    (squatter / "router.py").write_text("print('not the release')\n")
    before = snapshot(base)
    rc, res = stage("2.1.0")
    assert rc != 0
    assert "already exists with the wrong content" in res["msg"]
    assert snapshot(base) == before


def test_corrupted_artifact_is_refused_and_stages_nothing(stage, artifacts, base, tmp_path):
    with open(artifacts["2.1.0"][0], "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    corrupted = tmp_path / "corrupted.tar.gz"
    corrupted.write_bytes(bytes(data))
    rc, res = stage("2.1.0", artifact_path=str(corrupted))
    assert rc != 0
    assert "artifact sha256 on host is" in res["msg"]
    assert "corrupted" in res["msg"]
    assert not (base / "releases" / "2.1.0").exists()
    assert not (base / "releases").exists() or os.listdir(base / "releases") == []


def test_artifact_whose_content_differs_from_the_manifest_is_refused(stage, artifacts, base):
    # The tarball is intact (its sha256 matches) but the manifest claims other content: nothing may appear.
    manifest = dict(artifacts["2.1.0"][1], content_sha256="0" * 64)
    rc, res = stage("2.1.0", manifest=manifest)
    assert rc != 0
    assert "does not match the manifest" in res["msg"]
    assert os.listdir(base / "releases") == []  # neither the release nor its temporary directory


def test_manifest_for_another_version_is_refused(stage, artifacts, base):
    rc, res = stage("2.1.0", manifest=artifacts["2.0.0"][1])
    assert rc != 0
    assert "manifest is for version '2.0.0', not '2.1.0'" in res["msg"]
    assert not (base / "releases").exists()


def test_check_mode_stages_nothing(stage, base):
    rc, res = stage("2.1.0", check_mode=True)
    assert rc == 0, res
    assert res["changed"] is True
    assert "would stage" in res["msg"]
    assert list(base.iterdir()) == []


@pytest.mark.parametrize("version", ["../2.1.0", "2.1.0/../../etc", "a/b", "..", "-rf", " 2.1.0", "2.1.0\n"],
                         ids=repr)
def test_path_like_version_is_refused(run_module, artifacts, base, version):
    tarball, manifest = artifacts["2.1.0"]
    rc, res = run_module("deploy", dict(base=str(base), state="staged", version=version,
                                        manifest=dict(manifest, version=version), artifact_path=tarball))
    assert rc != 0
    assert "is not a plain version string" in res["msg"]
    assert list(base.iterdir()) == []
    assert sorted(os.listdir(base.parent)) == ["order-router"]


# -- active ------------------------------------------------------------------------------------------------------

def test_switch_points_current_at_the_release_with_a_relative_link(run_module, staged_base):
    base = staged_base  # 2.0.0 and 2.1.0 staged
    os.symlink("releases/2.0.0", base / "current")
    rc, res = run_module("deploy", dict(base=str(base), state="active", version="2.1.0"))
    assert rc == 0, res
    assert res["changed"] is True
    assert res["switched"] is True
    assert res["previous_version"] == "2.0.0"
    assert os.readlink(base / "current") == os.path.join("releases", "2.1.0")
    assert os.path.realpath(base / "current") == str(base / "releases" / "2.1.0")
    assert res["lockstep_state"]["active_version"] == "2.1.0"
    assert res["lockstep_state"]["active_valid"] is True
    # The new link was made under a temporary name and renamed over `current`: no temporary name remains.
    assert sorted(os.listdir(base)) == ["current", "releases"]


def test_switch_on_a_bare_host_creates_current(stage, run_module, base):
    assert stage("2.1.0")[0] == 0
    rc, res = run_module("deploy", dict(base=str(base), state="active", version="2.1.0"))
    assert rc == 0, res
    assert res["switched"] is True
    assert res["previous_version"] is None
    assert os.readlink(base / "current") == os.path.join("releases", "2.1.0")


def test_failed_switch_fails_and_leaves_current_alone(run_module, staged_base):
    base = staged_base  # 2.0.0 and 2.1.0 staged
    os.symlink("releases/2.0.0", base / "current")
    obstacle = base / ".current.lockstep-new"
    obstacle.mkdir()
    (obstacle / "keep").write_text("something else's directory\n")
    rc, res = run_module("deploy", dict(base=str(base), state="active", version="2.1.0"))
    assert rc != 0
    assert "switching current to releases/2.1.0 failed" in res["msg"]
    assert res["switched"] is False
    assert os.readlink(base / "current") == "releases/2.0.0"
    assert (obstacle / "keep").read_text() == "something else's directory\n"


def test_activating_a_release_that_is_not_staged_fails_without_switching(stage, run_module, base):
    assert stage("2.0.0")[0] == 0
    os.symlink("releases/2.0.0", base / "current")
    rc, res = run_module("deploy", dict(base=str(base), state="active", version="2.1.0"))
    assert rc != 0
    assert "releases/2.1.0 is not a valid staged release: missing" in res["msg"]
    assert res["switched"] is False
    assert os.readlink(base / "current") == "releases/2.0.0"


def test_activating_a_tampered_release_fails_without_switching(run_module, staged_base):
    base = staged_base  # 2.0.0 and 2.1.0 staged
    os.symlink("releases/2.0.0", base / "current")
    (base / "releases" / "2.1.0" / "flags.json").write_text('{"rlp": true}\n')
    rc, res = run_module("deploy", dict(base=str(base), state="active", version="2.1.0"))
    assert rc != 0
    assert "is not a valid staged release: content sha256" in res["msg"]
    assert os.readlink(base / "current") == "releases/2.0.0"


def test_active_check_mode_switches_nothing(run_module, staged_base):
    base = staged_base  # 2.0.0 and 2.1.0 staged
    os.symlink("releases/2.0.0", base / "current")
    rc, res = run_module("deploy", dict(base=str(base), state="active", version="2.1.0"), check_mode=True)
    assert rc == 0, res
    assert res["changed"] is True
    assert res["switched"] is False
    assert "would switch current from 2.0.0 to 2.1.0" in res["msg"]
    assert os.readlink(base / "current") == "releases/2.0.0"


def _activate(run_module, base, service, version, timeout=10):
    return run_module("deploy", dict(base=str(base), state="active", version=version,
                                     restart_command=service.restart_command, health_url=service.health_url,
                                     version_url=service.version_url, pidfile=service.pidfile, timeout=timeout))


def test_active_restarts_and_proves_the_new_process_runs_the_release(run_module, staged_base, fake_service):
    base = staged_base  # 2.0.0 and 2.1.0 staged
    service = fake_service(base)
    rc, res = _activate(run_module, base, service, "2.0.0")
    assert rc == 0, res
    old_pid = service.pid()

    rc, res = _activate(run_module, base, service, "2.1.0")
    assert rc == 0, res
    assert res["changed"] is True and res["switched"] is True
    assert res["previous_version"] == "2.0.0"
    assert "2.0.0 -> 2.1.0, running and verified" in res["msg"]
    state = res["lockstep_state"]
    assert state["consistent"] is True
    assert state["running"]["version"] == "2.1.0"
    assert state["running"]["pid"] == service.pid() != old_pid
    assert state["running"]["cwd"] == str(base / "releases" / "2.1.0")

    # Already active and running: nothing to do, no restart.
    pid = service.pid()
    rc, res = _activate(run_module, base, service, "2.1.0")
    assert rc == 0, res
    assert res["changed"] is False and res["switched"] is False
    assert "already active and running" in res["msg"]
    assert service.pid() == pid


def test_active_fails_when_the_old_process_keeps_serving(run_module, staged_base, fake_service):
    base = staged_base  # 2.0.0 and 2.1.0 staged
    service = fake_service(base)
    assert _activate(run_module, base, service, "2.0.0")[0] == 0
    service.restart_command = ["true"]  # a supervisor that "succeeds" without restarting anything
    started = time.monotonic()
    rc, res = _activate(run_module, base, service, "2.1.0", timeout=1.0)
    assert rc != 0
    assert "running-version check failed" in res["msg"]
    assert "reports 2.0.0" in res["msg"]
    # current did move, and the result says so: the rollback must know.
    assert res["switched"] is True
    assert os.readlink(base / "current") == "releases/2.1.0"
    assert time.monotonic() - started < 10


# -- pruned ------------------------------------------------------------------------------------------------------

def _fake_release(base, version, mtime):
    path = base / "releases" / version
    path.mkdir(parents=True)
    (path / "MANIFEST.json").write_text(json.dumps({"version": version}))
    os.utime(path, (mtime, mtime))


def test_prune_keeps_the_newest_by_mtime_plus_protected_and_active(run_module, base):
    now = time.time()
    # Modification order deliberately differs from version order: 1.0.0 was (re)staged last.
    ages = {"1.0.0": 10, "1.1.0": 900, "1.2.0": 800, "1.3.0": 700, "2.0.0": 60, "2.1.0": 30}
    for version, age in ages.items():
        _fake_release(base, version, now - age)
    os.symlink("releases/1.2.0", base / "current")
    rc, res = run_module("deploy", dict(base=str(base), state="pruned", keep=2, protect=["1.1.0"]))
    assert rc == 0, res
    assert res["changed"] is True
    # Newest two by mtime: 1.0.0, 2.1.0. Protected: 1.1.0. Active: 1.2.0.
    assert sorted(res["removed"]) == ["1.3.0", "2.0.0"]
    assert sorted(os.listdir(base / "releases")) == ["1.0.0", "1.1.0", "1.2.0", "2.1.0"]
    assert os.readlink(base / "current") == "releases/1.2.0"

    rc, res = run_module("deploy", dict(base=str(base), state="pruned", keep=2, protect=["1.1.0"]))
    assert rc == 0, res
    assert res["changed"] is False
    assert res["removed"] == []


def test_prune_in_check_mode_removes_nothing(run_module, base):
    now = time.time()
    for i, version in enumerate(["1.0.0", "2.0.0", "3.0.0"]):
        _fake_release(base, version, now - 100 + i)
    rc, res = run_module("deploy", dict(base=str(base), state="pruned", keep=1), check_mode=True)
    assert rc == 0, res
    assert res["changed"] is True
    assert sorted(res["removed"]) == ["1.0.0", "2.0.0"]
    assert sorted(os.listdir(base / "releases")) == ["1.0.0", "2.0.0", "3.0.0"]


# -- the service's state (the rollback rehearsal, issue 20) --------------------------------------------------------

def test_state_is_kept_from_before_the_runs_first_switch_and_restored_only_when_asked(run_module, staged_base):
    base = staged_base  # 2.0.0 and 2.1.0 staged
    os.symlink("releases/2.0.0", base / "current")
    data = base / "data"
    data.mkdir()
    (data / "book.json").write_text('{"format": 1}')

    def activate(version, **extra):
        return run_module("deploy", dict(base=str(base), state="active", version=version,
                                         state_paths=[str(data)], **extra))

    rc, res = activate("2.1.0", snapshot="run-1")
    assert rc == 0, res
    assert res["state_snapshot"] == str(base / ".lockstep-state" / "run-1")
    # The new release migrates the state; the rehearsal switches back and forth in the same run: the copy taken
    # before the first switch is the one kept.
    (data / "book.json").write_text('{"format": 2}')
    assert activate("2.0.0", snapshot="run-1")[0] == 0
    rc, res = activate("2.1.0", snapshot="run-1")
    assert rc == 0 and res["state_snapshot"] is None, res
    assert (data / "book.json").read_text() == '{"format": 2}'

    # Back with restore: the state as it was before run-1 switched this host.
    rc, res = activate("2.0.0", restore="run-1")
    assert rc == 0, res
    assert res["state_restored"] == [str(data)]
    assert "state restored from run-1" in res["msg"]
    assert (data / "book.json").read_text() == '{"format": 1}'

    # A later run keeps its own copy only; a snapshot that does not exist is an error, never a silent restart.
    assert activate("2.1.0", snapshot="run-2")[0] == 0
    assert os.listdir(base / ".lockstep-state") == ["run-2"]
    rc, res = activate("2.0.0", restore="run-1")
    assert rc != 0 and "no snapshot 'run-1'" in res["msg"] and res["lockstep_check"] == "state-restore", res

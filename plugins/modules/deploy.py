#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deploy
short_description: Stage, activate (switch, restart, verify) or prune releases on one host
version_added: "0.1.0"
description:
  - C(state=staged) unpacks an artifact into C(releases/VERSION) after checking its sha256 on the host, checks the
    unpacked content against the manifest's C(content_sha256), and renames it into place. An existing
    C(releases/VERSION) with the right content is left alone; one with other content is an error, never overwritten.
  - C(state=active) switches the C(current) symlink atomically (a new symlink renamed over the old one), runs the
    restart command, waits for the health URL, and then checks that the process that answers the version URL reports
    the new version and runs from the new release directory. If it is already active and running, nothing changes.
  - With I(state_paths), C(state=active) keeps the service's state (files or directories outside the releases, the
    service's data) as it was before this run first switched the host, in a copy under C(.lockstep-state/SNAPSHOT),
    taken once per I(snapshot) name (one run), before the switch; the copy of an earlier run is removed. With
    I(restore), the state is put back from that copy (after I(stop_command)) before the restart.
  - C(state=pruned) removes the oldest kept releases beyond I(keep), never the active one or one in I(protect).
  - The companion action plugin sends the artifact from the controller and turns an unreachable host into a failed
    result, so that a release can never silently drop a host.
options:
  base:
    description: Directory that holds C(releases/) and the C(current) symlink.
    type: path
    required: true
  state:
    description: What to do.
    type: str
    choices: [staged, active, pruned]
    required: true
  version:
    description: The release version; it is a directory name, so it may not contain C(/) or C(..).
    type: str
  manifest:
    description: The artifact's manifest (at least C(version), C(sha256) and C(content_sha256)); required for I(state=staged).
    type: dict
  artifact:
    description:
      - Path of the artifact on the controller. Read by the action plugin, which sends it to the host; the module
        itself receives it as I(artifact_b64) or I(artifact_path).
    type: path
  artifact_b64:
    description: The artifact's bytes, base64 encoded (set by the action plugin for small artifacts).
    type: str
  artifact_path:
    description: Path of the artifact on the host (set by the action plugin for large artifacts).
    type: path
  restart_command:
    description: Command (argv list) that restarts the service from C(current).
    type: list
    elements: str
  health_url:
    description: URL, as seen from the host, that answers 200 when the service is healthy.
    type: str
  version_url:
    description:
      - URL, as seen from the host, where the running service reports its version (plain text, or JSON with the
        version in I(version_field)); see M(lockstep.release.state) for what is checked.
    type: str
  version_field:
    description:
      - Field of a JSON answer that holds the version; a dotted path (C(build.version)) for nested objects. A key
        that literally contains the dots is read first, then the path.
    type: str
    default: version
  pidfile:
    description: >-
      The service's pidfile: names the process whose cwd and executable are checked when the service does not report
      its own C(pid).
    type: path
  flags_file:
    description: Path of the flags file relative to a release directory (reported in the state).
    type: str
  timeout:
    description: Seconds to wait for the restart, health and running version.
    type: float
    default: 30
  log_file:
    description:
      - The service's log on the host. When the restart, health or running-version check fails, its last lines are
        part of the message, so a release says why the service did not come up, not only that it did not.
    type: path
  state_paths:
    description:
      - The service's state (files or directories, relative to I(base) or absolute) that a release may migrate,
        for I(snapshot) and I(restore). Paths missing when the snapshot is taken are removed by a restore.
    type: list
    elements: path
    default: []
  snapshot:
    description:
      - With C(state=active) and I(state_paths), the snapshot's name (lockstep passes the run id) - a copy of the
        state is taken before the switch unless this snapshot already exists (a second switch in one run, such as
        the rehearsal's, keeps the first copy).
    type: str
  restore:
    description:
      - With C(state=active), the name of a snapshot to put the state back from before the restart (lockstep's
        rollback, for a host whose rehearsal proved the previous release cannot run on the state the new one left).
        A missing snapshot is an error.
    type: str
  stop_command:
    description: Command (argv list) that stops the service, run before a I(restore) so nothing writes the state meanwhile.
    type: list
    elements: str
    default: []
  keep:
    description: How many releases to keep with I(state=pruned).
    type: int
    default: 3
  protect:
    description: Versions that I(state=pruned) must keep whatever their age (for example the previous release).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - lockstep.release.host
"""

EXAMPLES = r"""
- name: Stage release 2.1.0 (never overwrites an existing releases/2.1.0)
  lockstep.release.deploy:
    base: /srv/order-router
    state: staged
    version: "2.1.0"
    artifact: artifacts/order-router-2.1.0.tar.gz
    manifest: "{{ lookup('ansible.builtin.file', 'artifacts/order-router-2.1.0.manifest.json') | from_json }}"

- name: Switch to 2.1.0, restart and prove it runs
  lockstep.release.deploy:
    base: /srv/order-router
    state: active
    version: "2.1.0"
    restart_command: [/srv/order-router/current/bin/ctl, restart]
    health_url: "{{ lockstep_service_url }}/health"
    version_url: "{{ lockstep_service_url }}/version"

- name: Keep the three newest releases
  lockstep.release.deploy:
    base: /srv/order-router
    state: pruned
    keep: 3
    protect: ["1.0.0"]
"""

RETURN = r"""
switched:
  description: Whether the C(current) symlink was moved by this call (also on failure, so a rescue knows).
  returned: always
  type: bool
  sample: true
lockstep_check:
  description: On failure, the check that failed (stage, release-integrity, artifact-integrity, switch, restart, health, running-version).
  returned: failure
  type: str
  sample: running-version
previous_version:
  description: The version C(current) pointed at before this call.
  returned: always
  type: str
  sample: 1.0.0
removed:
  description: Versions removed by I(state=pruned).
  returned: when state is pruned
  type: list
  elements: str
  sample: ["0.9.0"]
elapsed:
  description: Seconds spent.
  returned: always
  type: float
  sample: 1.2
state_snapshot:
  description: The snapshot of I(state_paths) this call took (its directory), or null.
  returned: when state is active
  type: str
  sample: /srv/order-router/.lockstep-state/20261204T070000-123-2.3.0
state_restored:
  description: The state paths put back from I(restore).
  returned: when state is active
  type: list
  elements: str
  sample: ["/srv/order-router/data"]
lockstep_state:
  description: The host's release state after the call (see M(lockstep.release.state)).
  returned: always
  type: dict
  sample: {"active_version": "2.1.0", "consistent": true}
"""

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lockstep.release.plugins.module_utils.release_state import (
    gather,
    release_info,
    valid_version,
)
from ansible_collections.lockstep.release.plugins.module_utils.tree_hash import MANIFEST_NAME, tree_hash

SWITCH_TMP = ".current.lockstep-new"
STATE_DIR = ".lockstep-state"


# A release has no business carrying setuid/setgid programs: refused whatever the Python, never merely stripped.
_SETID = 0o6000


def check_members(tar):
    """Refuse what no release needs, before anything is written: setuid/setgid files, hard links, devices, FIFOs."""
    for member in tar.getmembers():
        if not (member.isfile() or member.isdir() or member.issym()):
            raise ValueError("archive member %r is not a plain file, directory or symlink" % member.name)
        if member.mode & _SETID and not member.isdir():
            raise ValueError("archive member %r is setuid/setgid (mode %04o)" % (member.name, member.mode))


def safe_extract(tar, dest):
    """Unpack only plain files, directories and relative symlinks that stay inside ``dest``, owned by the user who
    unpacks (never the archive's owners), without setuid/setgid/sticky bits or group/other write.

    Python 3.11.4+ has ``filter="data"`` for this; hosts may run an older 3.11 (Debian 12 ships 3.11.2), which get
    ``extract_checked``.
    """
    check_members(tar)
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:
        extract_checked(tar, dest)
    # Whatever unpacked it (data filters have had bypasses through link chains), every link as it now lies on disk.
    links_inside(dest)


def links_inside(dest):
    """Refuse when any symlink under ``dest`` resolves, through however many links, outside it."""
    root = os.path.realpath(dest)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if target != root and not target.startswith(root + os.sep):
                    raise ValueError("archive symlink %r resolves to %s, outside the release" % (
                        os.path.relpath(path, root), target))


def _member_path(member):
    """The member's path relative to the release, or an error for absolute paths, '..' and the like."""
    name = member.name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise ValueError("unsafe archive member name %r" % name)
    return "/".join(parts)


def extract_checked(tar, dest):
    """What ``filter="data"`` does, by hand, for Pythons without tarfile filters.

    Files and directories are written first and symlinks last, and no member may lie under a member that is a
    symlink, so nothing is ever written through a link. ``safe_extract`` then resolves every link on disk, chains
    included (a link to a link that leaves): a lexical check of each link alone cannot see a chain. Nothing is
    chowned: the unpacking user owns every entry, whatever owners the archive names.
    """
    root = os.path.realpath(dest)
    members = [(m, _member_path(m)) for m in tar.getmembers()]
    links = {rel for m, rel in members if m.issym()}
    seen = set()
    for member, rel in members:
        if not rel:
            if member.isdir():
                continue  # "./": the release directory itself
            raise ValueError("archive member %r has no name" % member.name)
        if rel in seen:
            raise ValueError("archive member %r appears twice" % member.name)
        seen.add(rel)
        parents = rel.split("/")[:-1]
        if any("/".join(parents[:i]) in links for i in range(1, len(parents) + 1)):
            raise ValueError("archive member %r lies under a symlink" % member.name)
        if member.issym() and os.path.isabs(member.linkname):
            raise ValueError("archive symlink %r points to the absolute path %r" % (member.name, member.linkname))
    dir_modes = []
    for member, rel in members:
        if not rel or member.issym():
            continue
        path = os.path.join(root, rel)
        if member.isdir():
            os.makedirs(path, mode=0o700, exist_ok=True)
            dir_modes.append((path, (member.mode & 0o755) | 0o700))
            continue
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(tar.extractfile(member), out)
            os.fchmod(out.fileno(), (member.mode & 0o755) | 0o600)
    for member, rel in members:
        if member.issym():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            os.symlink(member.linkname, path)
    for path, mode in dir_modes:
        os.chmod(path, mode)


class Deployer:
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.base = self.p["base"]
        self.started = time.monotonic()
        self.switched = False
        self.previous = None
        self.snapshot = None
        self.restored = []

    def state(self):
        p = self.p
        return gather(self.base, p["version_url"], p["pidfile"], p["flags_file"], None, min(3.0, p["timeout"]),
                      p["version_field"])

    def result(self, changed, **extra):
        res = dict(changed=changed, switched=self.switched, previous_version=self.previous,
                   elapsed=round(time.monotonic() - self.started, 3), lockstep_state=self.state())
        if self.p["state"] == "active":
            res.update(state_snapshot=self.snapshot, state_restored=self.restored)
        res.update(extra)
        return res

    def fail(self, msg, check, **extra):
        """Fail naming the check that failed (``lockstep_check``), so the halt names it as its gate."""
        if check in ("restart", "health", "running-version"):
            msg += self.log_tail()
        self.module.fail_json(msg=msg, lockstep_check=check, **self.result(self.switched, **extra))

    def log_tail(self, lines=3, limit=400):
        path = self.p["log_file"]
        if not path:
            return ""
        try:
            with open(path, "rb") as f:
                f.seek(max(0, os.path.getsize(path) - 8192))
                tail = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        text = " / ".join(tail[-lines:])
        return " | service log: %s" % text[-limit:] if text else ""

    def release_dir(self):
        return os.path.join(self.base, "releases", self.p["version"])

    # -- staged -------------------------------------------------------------------------------------------------
    def artifact_bytes(self):
        if self.p["artifact_b64"]:
            return base64.b64decode(self.p["artifact_b64"])
        if self.p["artifact_path"]:
            with open(self.p["artifact_path"], "rb") as f:
                return f.read()
        self.fail("state=staged needs the artifact (artifact, artifact_b64 or artifact_path)", "stage")

    def staged(self):
        manifest = self.p["manifest"] or {}
        version = self.p["version"]
        if manifest.get("version") != version:
            self.fail("manifest is for version %r, not %r" % (manifest.get("version"), version), "stage")
        dest = self.release_dir()
        if os.path.lexists(dest):
            info = release_info(dest) if os.path.isdir(dest) and not os.path.islink(dest) else None
            if info and info["valid"] and info["content_sha256"] == manifest.get("content_sha256"):
                return self.result(False, msg="releases/%s already holds this release" % version)
            problem = info["problem"] if info and not info["valid"] else "content %s, artifact has %s" % (
                info["content_sha256"][:12] if info else "not a directory", str(manifest.get("content_sha256"))[:12])
            self.fail("releases/%s already exists with the wrong content (%s); refusing to overwrite it" % (
                version, problem), "release-integrity")
        if self.module.check_mode:
            return self.result(True, msg="would stage releases/%s" % version)
        data = self.artifact_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != manifest.get("sha256"):
            self.fail("artifact sha256 on host is %s, manifest says %s: corrupted in transfer or at rest" % (
                digest, manifest.get("sha256")), "artifact-integrity")
        releases = os.path.dirname(dest)
        os.makedirs(releases, exist_ok=True)
        tmp = os.path.join(releases, ".%s.lockstep-tmp-%d" % (version, os.getpid()))
        shutil.rmtree(tmp, ignore_errors=True)
        os.mkdir(tmp)
        try:
            try:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                    safe_extract(tar, tmp)
            except (ValueError, OSError, tarfile.TarError) as e:
                self.fail("artifact refused: %s" % e, "artifact-integrity")
            content = tree_hash(tmp)
            if content != manifest.get("content_sha256"):
                self.fail("unpacked content sha256 %s does not match the manifest's %s" % (
                    content, manifest.get("content_sha256")), "artifact-integrity")
            with open(os.path.join(tmp, MANIFEST_NAME), "w") as f:
                json.dump(manifest, f, indent=2, sort_keys=True)
            # Staging is all-or-nothing: the release appears under its name only once complete and checked.
            os.rename(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.result(True, msg="staged releases/%s" % version)

    def run_command(self, what, cmd, check):
        """Run the service's ``what`` command; a failure fails the call naming ``check``."""
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.p["timeout"], check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            self.fail("%s command %s failed: %s" % (what, cmd, e), check)
        if proc.returncode != 0:
            self.fail("%s command %s exited %d: %s" % (what, cmd, proc.returncode, proc.stderr.strip()[-400:]), check)

    # -- the service's state --------------------------------------------------------------------------------------
    def state_path(self, path):
        return path if os.path.isabs(path) else os.path.join(self.base, path)

    @staticmethod
    def clone(src, dst):
        """Copy a file or tree with its modes and, as root, its owners: the service user must still own its data."""
        if os.path.isdir(src) and not os.path.islink(src):
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
        if os.geteuid() != 0:
            return
        pairs = [(src, dst)]
        if os.path.isdir(dst) and not os.path.islink(dst):
            for root, dirs, files in os.walk(src):
                for name in dirs + files:
                    s_path = os.path.join(root, name)
                    pairs.append((s_path, os.path.join(dst, os.path.relpath(s_path, src))))
        for s_path, d_path in pairs:
            st = os.lstat(s_path)
            os.lchown(d_path, st.st_uid, st.st_gid)

    @staticmethod
    def remove(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)

    def take_snapshot(self):
        """Copy the state once per run, before its first switch; a switch back and forth keeps the first copy."""
        name, paths = self.p["snapshot"], self.p["state_paths"]
        if not name or not paths or not valid_version(name):
            return
        store = os.path.join(self.base, STATE_DIR)
        dest = os.path.join(store, name)
        if os.path.isdir(dest):
            return
        tmp = os.path.join(store, ".%s.tmp-%d" % (name, os.getpid()))
        try:
            # Readable as the state itself is: the copies keep their own modes and owners.
            os.makedirs(store, mode=0o755, exist_ok=True)
            self.remove(tmp)
            os.mkdir(tmp, 0o755)
            for i, path in enumerate(paths):
                src = self.state_path(path)
                if os.path.lexists(src):
                    self.clone(src, os.path.join(tmp, str(i)))
            os.rename(tmp, dest)
            # One run's copy is kept: the one a rollback of this run may need.
            for old in os.listdir(store):
                if old != name:
                    self.remove(os.path.join(store, old))
        except OSError as e:
            self.remove(tmp)
            self.fail("snapshot of the service's state %s failed: %s" % (paths, e), "state-snapshot")
        self.snapshot = dest

    def restore_state(self):
        name, paths = self.p["restore"], self.p["state_paths"]
        src_dir = os.path.join(self.base, STATE_DIR, name or "")
        if not name or not valid_version(name) or not os.path.isdir(src_dir):
            self.fail("no snapshot %r of the service's state to restore under %s" % (
                name, os.path.join(self.base, STATE_DIR)), "state-restore")
        if self.p["stop_command"]:
            self.run_command("stop", self.p["stop_command"], "state-restore")
        try:
            for i, path in enumerate(paths):
                dst, saved = self.state_path(path), os.path.join(src_dir, str(i))
                self.remove(dst)
                if os.path.lexists(saved):
                    self.clone(saved, dst)
                self.restored.append(dst)
        except OSError as e:
            self.fail("restoring the service's state from %s failed: %s" % (src_dir, e), "state-restore")

    # -- active -------------------------------------------------------------------------------------------------
    def switch(self, target_rel):
        current = os.path.join(self.base, "current")
        tmp = os.path.join(self.base, SWITCH_TMP)
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(target_rel, tmp)
            os.replace(tmp, current)
        except OSError as e:
            self.fail("switching current to %s failed: %s" % (target_rel, e), "switch")
        self.switched = True

    def wait_until(self, check, deadline):
        last = None
        while True:
            ok, last = check()
            if ok or time.monotonic() >= deadline:
                return ok, last
            time.sleep(0.2)

    def health_ok(self):
        try:
            with urllib.request.urlopen(self.p["health_url"], timeout=2) as resp:
                return resp.status == 200, "HTTP %d" % resp.status
        except (urllib.error.URLError, OSError, ValueError) as e:
            return False, str(getattr(e, "reason", e))

    def running_ok(self, version, dest):
        st = self.state()
        run = st["running"]
        ok = st["consistent"] and st["active_version"] == version and run["version"] == version
        if not run["reachable"]:
            why = run["error"]
        elif run.get("directory") is not None:
            why = "process %s reports %s from %s (cwd %s)" % (
                run.get("pid"), run.get("version"), run.get("directory"), run.get("cwd"))
        else:
            why = "process %s (%s) answers %s, cwd %s, exe %s%s" % (
                run.get("pid"), run.get("pid_source") or "no pid", run.get("version"), run.get("cwd"), run.get("exe"),
                "" if run.get("from_active") else ": " + str(run.get("problem")))
        return ok, "%s; expected %s from %s" % (why, version, dest)

    def active(self):
        version = self.p["version"]
        dest = self.release_dir()
        before = self.state()
        self.previous = before["active_version"]
        info = release_info(dest) if os.path.isdir(dest) else None
        if not info or not info["valid"]:
            self.fail("releases/%s is not a valid staged release: %s" % (
                version, info["problem"] if info else "missing"), "release-integrity")
        if before["active_version"] == version and before["consistent"] and not self.p["restore"]:
            return self.result(False, msg="%s is already active and running" % version)
        if self.module.check_mode:
            return self.result(True, msg="would switch current from %s to %s and restart%s" % (
                self.previous, version, " (state restored from snapshot %s)" % self.p["restore"]
                if self.p["restore"] else ""))
        deadline = time.monotonic() + self.p["timeout"]
        if before["active_path"] != os.path.realpath(dest):
            self.take_snapshot()
            self.switch(os.path.join("releases", version))
        if self.p["restore"]:
            self.restore_state()
        if self.p["restart_command"]:
            self.run_command("restart", self.p["restart_command"], "restart")
        if self.p["health_url"]:
            ok, why = self.wait_until(self.health_ok, deadline)
            if not ok:
                self.fail("health check %s failed after restart: %s" % (self.p["health_url"], why), "health")
        if self.p["version_url"]:
            ok, why = self.wait_until(lambda: self.running_ok(version, dest), deadline)
            if not ok:
                self.fail("running-version check failed: %s" % why, "running-version")
        return self.result(True, msg="%s -> %s, running and verified%s" % (
            self.previous, version, "; state restored from %s" % self.p["restore"] if self.restored else ""))

    # -- pruned -------------------------------------------------------------------------------------------------
    def pruned(self):
        st = self.state()
        keep = max(1, self.p["keep"])
        protect = set(self.p["protect"]) | {st["active_version"]}
        kept = sorted(st["releases"], key=lambda r: os.stat(r["path"]).st_mtime, reverse=True)
        removed = [r["version"] for r in kept[keep:] if r["version"] not in protect]
        if removed and not self.module.check_mode:
            for version in removed:
                shutil.rmtree(os.path.join(self.base, "releases", version))
        return self.result(bool(removed), removed=removed)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            base=dict(type="path", required=True),
            state=dict(type="str", required=True, choices=["staged", "active", "pruned"]),
            version=dict(type="str"),
            manifest=dict(type="dict"),
            artifact=dict(type="path"),
            artifact_b64=dict(type="str", no_log=True),
            artifact_path=dict(type="path"),
            restart_command=dict(type="list", elements="str"),
            health_url=dict(type="str"),
            version_url=dict(type="str"),
            version_field=dict(type="str", default="version"),
            pidfile=dict(type="path"),
            flags_file=dict(type="str"),
            timeout=dict(type="float", default=30),
            keep=dict(type="int", default=3),
            protect=dict(type="list", elements="str", default=[]),
            log_file=dict(type="path"),
            state_paths=dict(type="list", elements="path", default=[]),
            snapshot=dict(type="str"),
            restore=dict(type="str"),
            stop_command=dict(type="list", elements="str", default=[]),
        ),
        required_if=[("state", "staged", ("version", "manifest")), ("state", "active", ("version",))],
        supports_check_mode=True,
    )
    d = Deployer(module)
    version = module.params["version"]
    if version is not None and not valid_version(version):
        module.fail_json(msg="version %r is not a plain version string (no '/', '..' or spaces)" % version)
    module.exit_json(**getattr(d, module.params["state"])())


if __name__ == "__main__":
    main()

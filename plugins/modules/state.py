#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: state
short_description: Gather one host's whole release state in one call
version_added: "0.1.0"
description:
  - Reads, in one module call, everything lockstep needs to know about a host before and after a change.
  - The active release (where C(current) points), the checksum of its content, every kept release under
    C(releases/) with its checksum, and whether each directory's content matches its manifest (a directory's
    name proves nothing).
  - The version the running process reports on its version URL (plain text, or a JSON object with the version in
    I(version_field)), and the kernel's view of that process (C(/proc/PID/cwd) and C(/proc/PID/exe)), so a process
    that kept running from an old release is caught. The process is the C(pid) the service reports, if it reports
    one, else the one I(pidfile) names; it was started from the active release when its cwd is the release
    directory or its executable lies inside it, and, when the service also reports its start C(directory), that
    agrees too.
  - The flags in effect (the active release's flags file), free disk and an optional lock file.
  - Never changes anything.
options:
  base:
    description: Directory that holds C(releases/) and the C(current) symlink.
    type: path
    required: true
  version_url:
    description:
      - URL, as seen from the host, where the running service reports its version, as plain text (one line) or as
        JSON (an object with the version in I(version_field), and optionally C(pid), C(directory) and C(sha256)).
    type: str
  version_field:
    description:
      - Field of a JSON answer that holds the version; a dotted path (C(build.version)) for nested objects. A key
        that literally contains the dots is read first, then the path.
    type: str
    default: version
  pidfile:
    description:
      - The service's pidfile. Names the process whose cwd and executable are checked when the service does not
        report its own C(pid); otherwise reported for diagnosis (the PID that answered is the one checked).
    type: path
  flags_file:
    description: Path of the flags file relative to a release directory.
    type: str
  lock_path:
    description: A lock file to report, if it exists on this host.
    type: path
  timeout:
    description: Seconds to wait for the version URL.
    type: float
    default: 3.0
extends_documentation_fragment:
  - lockstep.release.host
"""

EXAMPLES = r"""
- name: Read the release state of every application host
  lockstep.release.state:
    base: /srv/order-router
    version_url: "{{ lockstep_service_url }}/version"
    pidfile: /srv/order-router/run/router.pid
    flags_file: flags.json
  register: release_state

- name: A service whose status page is JSON with the version nested, its process named by a pidfile
  lockstep.release.state:
    base: /srv/my-service
    version_url: "{{ lockstep_service_url }}/status"
    version_field: build.version
    pidfile: /run/my-service.pid

- name: Show what runs where
  ansible.builtin.debug:
    msg: "{{ release_state.lockstep_state.active_version }} on disk, {{ release_state.lockstep_state.running_version }} running"
"""

RETURN = r"""
lockstep_state:
  description: The host's release state.
  returned: always
  type: dict
  contains:
    bare:
      description: True when the host has no release at all (first release ever).
      type: bool
      returned: always
      sample: false
    active_version:
      description: Version of the release C(current) points at, if that is a kept release.
      type: str
      returned: always
      sample: 2.1.0
    active_path:
      description: Real path C(current) resolves to.
      type: str
      returned: always
      sample: /srv/order-router/releases/2.1.0
    active_valid:
      description: Whether the active release's content matches its manifest.
      type: bool
      returned: always
      sample: true
    active_content_sha256:
      description: Tree hash of the active release's content.
      type: str
      returned: always
      sample: 3f1c...
    active_problem:
      description: Why the active release is not trusted, if it is not.
      type: str
      returned: always
      sample: null
    releases:
      description: >-
        Every kept release with C(version), C(path), C(content_sha256), C(sha256), C(valid), C(problem), and the
        C(flags) and C(retired_flags) its manifest declares (null when it declares none), for the flag-reuse gate.
      type: list
      elements: dict
      returned: always
      sample: [{"version": "1.0.0", "valid": true}]
    running:
      description: >-
        What the serving process reports (C(version); C(sha256) and C(directory) when its answer has them), the
        C(pid) checked and C(pid_source) (C(service) or C(pidfile)), C(pidfile_pid), the kernel's C(cwd) and C(exe)
        of that PID, C(reachable), C(error), C(from_active), and C(problem) (why it is not from the active release).
      type: dict
      returned: always
      sample: {"version": "2.1.0", "from_active": true}
    running_version:
      description: The version the running process reports.
      type: str
      returned: always
      sample: 2.1.0
    consistent:
      description: Active release valid, and the running process started from it and reports its version.
      type: bool
      returned: always
      sample: true
    flags:
      description: Content of the active release's flags file.
      type: dict
      returned: always
      sample: {"rli": "retail liquidity"}
    disk_free_bytes:
      description: Free bytes on the filesystem holding I(base).
      type: int
      returned: always
      sample: 1073741824
    lock:
      description: Content of I(lock_path) when it exists.
      type: dict
      returned: always
      sample: null
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lockstep.release.plugins.module_utils.release_state import gather


def main():
    module = AnsibleModule(
        argument_spec=dict(
            base=dict(type="path", required=True),
            version_url=dict(type="str"),
            version_field=dict(type="str", default="version"),
            pidfile=dict(type="path"),
            flags_file=dict(type="str"),
            lock_path=dict(type="path"),
            timeout=dict(type="float", default=3.0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    state = gather(p["base"], p["version_url"], p["pidfile"], p["flags_file"], p["lock_path"], p["timeout"],
                   p["version_field"])
    module.exit_json(changed=False, lockstep_state=state)


if __name__ == "__main__":
    main()

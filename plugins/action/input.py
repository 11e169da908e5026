# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.input: a role's argument spec checked against every host's own values, in one
task on the controller, where Ansible's own check of a role's arguments costs a forked worker per host."""

from __future__ import annotations

import json

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase


def check(spec, base, hosts):
    """Error messages of ``spec`` over each host's values (``hosts``: host -> its own values, over ``base``), each
    message once, naming its hosts unless every host has it."""
    validator = ArgumentSpecValidator(spec)
    found = {}
    checked = {}  # hosts that set the same values (most set none of their own) are checked once
    for host, own in hosts.items():
        key = json.dumps(own, sort_keys=True, default=repr)
        if key not in checked:
            # As plain data: the validation deep-copies what it is given, and a copy of Ansible's tagged values
            # (each string carries its origin) cost ~80 ms a host.
            checked[key] = validator.validate(json.loads(json.dumps(dict(base, **own), default=str))).error_messages
        for message in checked[key]:
            found.setdefault(message, []).append(host)
    return [message if len(names) == len(hosts) else "%s (%s)" % (message, ", ".join(names))
            for message, names in found.items()]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("spec_file", "entry_point", "hosts"))

    ARGS = dict(
        spec_file=dict(type="path", required=True),
        entry_point=dict(type="str", default="main"),
        hosts=dict(type="list", elements="str", required=True),
    )

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        task_vars = task_vars or {}
        dummy, a = self.validate_argument_spec(argument_spec=self.ARGS)
        specs = (self._loader.load_from_file(a["spec_file"]) or {}).get("argument_specs") or {}
        spec = (specs.get(a["entry_point"]) or {}).get("options") or {}
        # What this task sees (the role's defaults among it), then over it what each host sets itself.
        base = self._templar.template({n: task_vars[n] for n in spec if n in task_vars})
        hostvars = task_vars.get("hostvars") or {}
        hosts = {}
        for host in a["hosts"]:
            own = dict(hostvars.raw_get(host))
            # Each host's values templated as Ansible's own check would on that host: with the play's and the
            # roles' variables this task sees, the host's own over them, and its connection's address (which
            # defaults to its name), never the address of the host that runs this task.
            own["ansible_host"] = own.get("ansible_host", host)
            templar = self._templar.copy_with_new_env(available_variables=dict(task_vars, **own))
            hosts[host] = templar.template({n: own[n] for n in spec if n in own})
        errors = check(spec, base, hosts)
        if errors:
            return {"failed": True, "changed": False, "argument_errors": errors,
                    "msg": "Validation of arguments failed:\n%s" % "\n".join(errors)}
        return {"changed": False, "msg": "The arguments of %d host(s) are valid" % len(hosts)}

"""Every condition lockstep ships parses the way each supported ansible-core evaluates it.

ansible-core before 2.19 evaluates a ``when`` (``changed_when``, ``failed_when``, ``until``) inside
``{% if <condition> %}``; 2.19 evaluates it as an expression. A condition that is a bare inline if
(``a if b else c``) is valid on 2.19 and a syntax error on 2.16-2.18, which failed every switch of a release there
(seen once: every host halted at its switch, on the older cores only). The development core cannot show it, and the
supported-range test meets it only on the fleet: this finds it in the source, for every file, in a second.
"""

from __future__ import annotations

import glob
import os

import jinja2
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEYS = ("when", "changed_when", "failed_when", "until")
# What ships and what users copy: the collection's roles and playbooks, the examples and the molecule scenarios.
SOURCES = ("roles/**/*.yml", "playbooks/**/*.yml", "examples/**/*.yml", "molecule/**/*.yml", "extensions/**/*.yml")


def conditions(node, where):
    """Every condition string under ``node`` (tasks, blocks, plays, nested anywhere), with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in KEYS:
                for cond in value if isinstance(value, list) else [value]:
                    if isinstance(cond, str):
                        yield where, key, cond
            else:
                yield from conditions(value, where)
    elif isinstance(node, list):
        for item in node:
            yield from conditions(item, where)


def old_core_problem(condition):
    """The syntax error ansible-core 2.16-2.18 would raise for ``condition``, or None."""
    try:
        jinja2.Environment().parse("{%% if %s %%} True {%% else %%} False {%% endif %%}" % condition)
    except jinja2.TemplateSyntaxError as ex:
        return str(ex)
    return None


def shipped_conditions():
    found = []
    for pattern in SOURCES:
        for path in sorted(glob.glob(os.path.join(REPO, pattern), recursive=True)):
            with open(path) as f:
                try:
                    docs = list(yaml.safe_load_all(f))
                except yaml.YAMLError:
                    continue  # not Ansible YAML (a Jinja template of a file, say): yamllint checks it
            found.extend(conditions(docs, os.path.relpath(path, REPO)))
    return found


def test_the_check_finds_what_it_is_for():
    assert old_core_problem("(a in b) if c else d | length > 0")
    assert old_core_problem("((a in b) if c else (d | length > 0))") is None
    assert old_core_problem("a is defined and b | default(false) | bool") is None


def test_every_shipped_condition_parses_on_the_older_cores():
    found = shipped_conditions()
    assert len(found) > 50, "the scan found too few conditions: %d" % len(found)
    bad = ["%s (%s): %s: %s" % (where, key, cond, problem) for where, key, cond in found
           for problem in [old_core_problem(cond)] if problem]
    assert not bad, "\n".join(bad)


def test_the_switch_condition_is_among_those_checked():
    assert any(where == "roles/rollout/tasks/main.yml" and "__lockstep_switch_back" in cond
               for where, _, cond in shipped_conditions())

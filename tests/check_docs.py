#!/usr/bin/env python3
"""Every plugin and role of the collection is documented for ``ansible-doc`` (part of ``make lint-only``).

One ``ansible-doc --json`` call per plugin type, for all its names at once (a call per name cost ~2 s of Python start
each, minutes of the lint): the call must exit 0 and say nothing on stderr (a name it cannot find is only a warning
there, a documentation it cannot parse an error), and its JSON must hold every name with its documentation (a role:
its entry points). The names: every module, both callbacks, every filter the FilterModule classes return, every role.

Run from the repository root with the virtualenv built: ``.venv/bin/python tests/check_docs.py``.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANSIBLE_DOC = os.path.join(REPO, ".venv", "bin", "ansible-doc")
PREFIX = "lockstep.release."


def names():
    sys.path.insert(0, os.path.join(REPO, "collections"))
    filters = [n for path in sorted(glob.glob(os.path.join(REPO, "plugins", "filter", "*.py")))
               for n in importlib.import_module("ansible_collections.lockstep.release.plugins.filter."
                                                + os.path.basename(path)[:-3]).FilterModule().filters()]
    return {
        "module": [os.path.basename(p)[:-3] for p in sorted(glob.glob(os.path.join(REPO, "plugins", "modules", "*.py")))
                   if not os.path.basename(p).startswith("_")],
        "callback": ["ledger", "progress"],
        "filter": filters,
        "role": sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(REPO, "roles", "*", ""))),
    }


def check(kind, wanted):
    """Problems with ``wanted`` (names of plugin type ``kind``) as ansible-doc documents them."""
    if not wanted:
        return ["no %s found to document" % kind]
    proc = subprocess.run([ANSIBLE_DOC, "-t", kind, "--json", *(PREFIX + n for n in wanted)], cwd=REPO,
                          capture_output=True, text=True)
    problems = []
    if proc.returncode != 0 or proc.stderr.strip():
        problems.append("ansible-doc -t %s exited %d: %s" % (kind, proc.returncode, proc.stderr.strip()))
    try:
        docs = json.loads(proc.stdout or "{}")
    except ValueError:
        return problems + ["ansible-doc -t %s printed no JSON" % kind]
    for n in wanted:
        doc = docs.get(PREFIX + n) or {}
        if not (doc.get("entry_points") if kind == "role" else doc.get("doc")):
            problems.append("%s %s%s has no documentation" % (kind, PREFIX, n))
    return problems


def main():
    problems = [p for kind, wanted in names().items() for p in check(kind, wanted)]
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which phase of a release a task belongs to: the one rule the ledger, the progress output and the report share."""

from __future__ import annotations

import re

COLLECTION_PREFIX = "lockstep.release."
# The shared task files (the load balancer's steps, the judgement): part of the phase around them.
SHARED = "common"
# A play of the rollback ("Lockstep | rollback: canary, then waves, back to the previous release").
ROLLBACK_PLAY = re.compile(r"\brollback\s*:", re.IGNORECASE)


def phase_of(task, play_name):
    """The phase of ``task`` in the play named ``play_name``: its lockstep role's name, or ``rollback`` for the
    rollout's wave task file run backwards by a rollback play; None for a task of no role."""
    role = getattr(task, "_role", None)
    if role is None:
        return None
    name = role.get_name()
    if name.startswith(COLLECTION_PREFIX):
        name = name[len(COLLECTION_PREFIX):]
    if name == "rollout" and ROLLBACK_PLAY.search(str(play_name or "")):
        return "rollback"
    return name

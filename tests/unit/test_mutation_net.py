"""Every safeguard mutation (tests/mutate_safeguards.py) still finds the code it removes.

The mutation step of ``make test`` stops at the first entry whose code moved; this says which ones moved, all of
them, in the tests that need no fleet, before the mutations start."""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tests"))

# After the path above, where the runner lives: it is a script in tests/, not a package (E402 is that order).
import mutate_safeguards  # noqa: E402


def test_every_mutation_finds_the_code_it_removes():
    moved = []
    for name, path, old, *_ in mutate_safeguards.MUTATIONS:
        with open(os.path.join(REPO, path)) as f:
            if old not in f.read():
                moved.append((name, path))
    assert moved == [], "the safeguard's code moved: point these mutations at it again: %s" % moved

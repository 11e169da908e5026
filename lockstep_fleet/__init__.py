"""lockstep's local test fleet: ``Fleet(repo_root)`` is the API, ``bin/fleet`` the command line."""

import contextlib
import fcntl

from .core import Fleet, FleetError

__all__ = ["Fleet", "FleetError", "fleet_lock", "LOCK_PATH"]

# One local fleet per machine (fixed loopback addresses): tests, benchmarks and the demo take this lock first.
LOCK_PATH = "/tmp/lockstep-fleet.lock"


@contextlib.contextmanager
def fleet_lock():
    """Hold the machine's fleet lock for the duration of the block (waits for whoever holds it)."""
    with open(LOCK_PATH, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield

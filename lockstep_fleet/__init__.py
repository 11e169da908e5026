"""lockstep's local test fleet: ``Fleet(repo_root)`` is the API, ``bin/fleet`` the command line."""

from .core import Fleet, FleetError

__all__ = ["Fleet", "FleetError"]

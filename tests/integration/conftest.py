"""The real local fleet as a pytest fixture (no mocks): namespace hosts, real sshd, HAProxy, exchange simulator."""

from pathlib import Path

import pytest
from release_helpers import fleet_lock

from lockstep_fleet import Fleet

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """Every integration test is a ``fleet`` test (tests/run_all.py runs those one at a time, the machine's one local
    fleet being theirs) unless its module says ``pytestmark = pytest.mark.without_fleet``: a test that forgets to
    say so is only slower, never run beside the fleet tests."""
    for item in items:
        if HERE in item.path.parents and item.get_closest_marker("without_fleet") is None:
            item.add_marker(pytest.mark.fleet)


@pytest.fixture
def fleet():
    """A ``lockstep_fleet.Fleet`` for this repository, with nothing up yet: call ``fleet.up(hosts=8, version=None)``.

    Helpers on the object: ``exec(host, *cmd)``, ``ssh(host, cmd, known_hosts=None)``, ``status()``,
    ``sshd(host, "stop"|"start"|"freeze"|"thaw")``, ``haproxy(cmd)``, ``traffic(rate, seconds, flag=None)``,
    ``metrics(host)``, ``exchange(path, data=None)``, ``host_pids(host)``, ``recorded_pids()``. Whatever a test
    leaves up is brought down at teardown, and a fleet left over from an earlier run is brought down first.
    """
    with fleet_lock():
        f = Fleet(REPO)
        f.down()
        try:
            yield f
        finally:
            f.down()

# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wave specs: validation and the exact batches Ansible's ``serial`` will make of them."""

from __future__ import annotations

import re

_PCT = re.compile(r"^([0-9]{1,3})%$")


class WaveSpecError(ValueError):
    pass


def parse_wave(item):
    """Return ``("n", int)`` or ``("pct", int)``; refuse anything else."""
    if isinstance(item, bool):
        raise WaveSpecError("wave %r is not a host count or a percentage" % (item,))
    if isinstance(item, int) or (isinstance(item, str) and item.strip().isdigit()):
        n = int(item)
        if n < 1:
            raise WaveSpecError("wave %r must be at least 1 host" % (item,))
        return ("n", n)
    if isinstance(item, str):
        m = _PCT.match(item.strip())
        if m and 0 < int(m.group(1)) <= 100:
            return ("pct", int(m.group(1)))
    raise WaveSpecError("wave %r is neither a host count (e.g. 2) nor a percentage between 1%% and 100%% "
                        "(e.g. \"25%%\")" % (item,))


def serial_list(canary, waves):
    """The ``serial`` value for the rollout play: the canary, then the waves (all validated)."""
    if not isinstance(waves, list) or not waves:
        raise WaveSpecError("lockstep_waves must be a non-empty list such as [\"25%%\", \"100%%\"], got %r" % (waves,))
    kind, canary_hosts = parse_wave(canary)
    if kind != "n":
        raise WaveSpecError("lockstep_canary %r must be a number of hosts (e.g. 1), not a percentage" % (canary,))
    for w in waves:
        parse_wave(w)
    return [canary_hosts] + [w.strip() if isinstance(w, str) else w for w in waves]


def batches(hosts, serial):
    """Mirror of ansible-core's serialisation: each value is a count or a percentage of ALL the play's hosts,
    at least 1, and the last value repeats until every host is in a batch."""
    hosts = list(hosts)
    total = len(hosts)
    out, i, idx = [], 0, 0
    while i < total:
        kind, n = parse_wave(serial[min(idx, len(serial) - 1)])
        size = n if kind == "n" else int((n / 100.0) * total) or 1
        out.append(hosts[i:i + size])
        i += size
        idx += 1
    return out

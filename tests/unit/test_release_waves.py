"""Wave specs: validation, and batches that are exactly the ones Ansible's ``serial`` makes."""

import pytest
from ansible import context
from ansible.executor.playbook_executor import PlaybookExecutor
from ansible.inventory.manager import InventoryManager
from ansible.module_utils.common.collections import ImmutableDict
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play import Play
from ansible.vars.manager import VariableManager

from ansible_collections.lockstep.release.plugins.plugin_utils.waves import (
    WaveSpecError,
    batches,
    parse_wave,
    serial_list,
)

NONSENSE = ["0", "-1", "0%", "150%", "101%", "abc", "", " ", "25 %", "%", "1.5", "1e3", "0x10",
            True, False, [], {}, None, 0, -1, 2.5]


@pytest.mark.parametrize("item", NONSENSE, ids=repr)
def test_parse_wave_rejects_nonsense(item):
    with pytest.raises(WaveSpecError):
        parse_wave(item)


@pytest.mark.parametrize("item, parsed", [
    (1, ("n", 1)), (8, ("n", 8)), ("3", ("n", 3)), (" 2 ", ("n", 2)),
    ("1%", ("pct", 1)), ("25%", ("pct", 25)), ("100%", ("pct", 100)), (" 50% ", ("pct", 50)),
])
def test_parse_wave_accepts_counts_and_percentages(item, parsed):
    assert parse_wave(item) == parsed


@pytest.mark.parametrize("bad", NONSENSE, ids=repr)
def test_serial_list_rejects_a_nonsense_wave(bad):
    with pytest.raises(WaveSpecError):
        serial_list(1, ["25%", bad, "100%"])


@pytest.mark.parametrize("waves", [[], "25%", None, 3, ("25%", "100%")], ids=repr)
def test_serial_list_rejects_waves_that_are_not_a_non_empty_list(waves):
    with pytest.raises(WaveSpecError):
        serial_list(1, waves)


@pytest.mark.parametrize("canary", ["0", "-1", 0, "abc", True, [], None, "25%", "100%"], ids=repr)
def test_serial_list_rejects_a_canary_that_is_not_a_host_count(canary):
    # The canary is a number of hosts; a percentage canary used to escape as a bare ValueError from int().
    with pytest.raises(WaveSpecError):
        serial_list(canary, ["100%"])


def test_serial_list_is_the_canary_then_the_waves():
    assert serial_list(1, ["25%", "100%"]) == [1, "25%", "100%"]
    assert serial_list("2", [" 25% ", 3]) == [2, "25%", 3]


def ansible_batches(monkeypatch, n_hosts, serial):
    """The batches ansible-core itself makes of ``n_hosts`` hosts for a play with this ``serial``."""
    monkeypatch.setattr(context, "CLIARGS", ImmutableDict(listhosts=True))  # no task queue: only batching
    loader = DataLoader()
    names = ["h%d" % i for i in range(1, n_hosts + 1)]
    inventory = InventoryManager(loader=loader, sources=",".join(names) + ",")
    variables = VariableManager(loader=loader, inventory=inventory)
    play = Play.load(dict(hosts="all", gather_facts=False, serial=serial, tasks=[]), variable_manager=variables,
                     loader=loader)
    executor = PlaybookExecutor(playbooks=[], inventory=inventory, variable_manager=variables, loader=loader,
                                passwords={})
    return names, [[h.name for h in batch] for batch in executor._get_serialized_batches(play)]


@pytest.mark.parametrize("n_hosts, sizes", [(8, [1, 2, 5]), (32, [1, 8, 23]), (3, [1, 1, 1]), (1, [1]),
                                            (2, [1, 1])])
def test_batches_mirror_ansible_serial(monkeypatch, n_hosts, sizes):
    serial = serial_list(1, ["25%", "100%"])
    names, expected = ansible_batches(monkeypatch, n_hosts, serial)
    ours = batches(names, serial)
    assert ours == expected
    assert [len(b) for b in ours] == sizes
    assert [h for b in ours for h in b] == names  # every host exactly once, inventory order


@pytest.mark.parametrize("serial", [[2, "10%"], ["50%"], [1, 2, 3], ["30%", "30%", "100%"], [5], [1, "1%"]])
@pytest.mark.parametrize("n_hosts", [3, 7, 10, 32])
def test_batches_mirror_ansible_serial_for_other_specs(monkeypatch, n_hosts, serial):
    names, expected = ansible_batches(monkeypatch, n_hosts, serial)
    assert batches(names, serial) == expected


def test_batches_of_no_hosts():
    assert batches([], [1, "100%"]) == []

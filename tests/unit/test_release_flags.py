"""The flag-reuse rule (plugins/plugin_utils/flags.py) on the sample's real declarations, and the preflight gate
that applies it, run by a real ansible-playbook on localhost."""

import json
from pathlib import Path

from test_release_preflight import MANIFEST, host_state, preflight

from ansible_collections.lockstep.release.plugins.plugin_utils.flags import conflicts, declared, disagreement

SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "versions"


def flags_file(version):
    return json.loads((SAMPLE / version / "flags.json").read_text())


def decl(version):
    return declared(flags_file(version))


def test_2_0_0_over_1_0_0_reuses_rlp_and_names_both_meanings():
    found = conflicts("2.0.0", decl("2.0.0"), {"1.0.0": (decl("1.0.0"), {"h1", "h2"})})
    assert len(found) == 1
    assert found[0].startswith("flag rlp means 'retail liquidity")
    assert "power peg" in found[0] and "1.0.0 on h1, h2" in found[0] and "in 2.0.0" in found[0]


def test_rollback_2_0_0_to_1_0_0_is_the_same_conflict_seen_from_the_other_side():
    found = conflicts("1.0.0", decl("1.0.0"), {"2.0.0": (decl("2.0.0"), {"h1"})})
    assert len(found) == 1 and "flag rlp" in found[0] and "power peg" in found[0]


def test_new_name_with_the_old_one_retired_passes_both_ways():
    assert conflicts("2.1.0", decl("2.1.0"), {"1.0.0": (decl("1.0.0"), {"h1"})}) == []
    assert conflicts("2.2.0", decl("2.2.0"), {"2.1.0": (decl("2.1.0"), {"h1"})}) == []
    assert conflicts("1.0.0", decl("1.0.0"), {"2.1.0": (decl("2.1.0"), {"h1"})}) == []


def test_a_retired_name_never_comes_back_even_with_the_old_meaning():
    back = {"flags": {"rlp": flags_file("1.0.0")["flags"]["rlp"]}, "retired_flags": []}
    found = conflicts("3.0.0", declared(back), {"2.1.0": (decl("2.1.0"), {"h1"})})
    assert len(found) == 1 and "retired by 2.1.0 on h1" in found[0] and "comes back in 3.0.0" in found[0]


def test_a_version_without_declarations_cannot_be_proven_safe():
    found = conflicts("2.1.0", decl("2.1.0"), {"0.9.0": (None, {"h3"})})
    assert len(found) == 1 and "0.9.0 on h3 declares no flags" in found[0]
    # Nobody declares flags at all: the gate has nothing to compare and stays out of the way.
    assert conflicts("2.1.0", None, {"0.9.0": (None, {"h3"})}) == []


def test_manifest_and_flags_file_must_agree():
    manifest = json.loads(json.dumps({"flags": [{"name": "rli", "meaning": "retail liquidity: route the parent "
                                                 "order as one retail liquidity child order", "since": "2.1.0"}],
                                      "retired_flags": ["rlp"]}))
    assert disagreement(manifest, flags_file("2.1.0"), "flags.json") == []
    lying = dict(manifest, flags=[dict(manifest["flags"][0], meaning="something harmless")])
    assert disagreement(lying, flags_file("2.1.0"), "flags.json")[0].startswith("flag rli: manifest says")
    assert "retired flags" in disagreement(dict(manifest, retired_flags=[]), flags_file("2.1.0"), "flags.json")[0]
    assert "declares no flags" in disagreement({}, flags_file("2.1.0"), "flags.json")[0]
    assert "no readable flags file" in disagreement(manifest, None, "flags.json")[0]


def _release(version):
    """A kept release as the state module reports it, with its manifest's flag declarations."""
    f = flags_file(version)
    return {"version": version, "valid": True, "content_sha256": "b" * 64, "problem": None,
            "flags": [dict(v, name=k) for k, v in f["flags"].items()], "retired_flags": f["retired_flags"]}


def _manifest(version):
    f = flags_file(version)
    return dict(MANIFEST, version=version, flags=[dict(v, name=k) for k, v in f["flags"].items()],
                retired_flags=f["retired_flags"])


def _states(version):
    return {h: host_state(version, releases=[_release(version)]) for h in ("h1", "h2", "h3")}


def test_preflight_refuses_2_0_0_on_a_healthy_1_0_0_fleet(run_play):
    run_play((preflight(states=_states("1.0.0"), manifest=_manifest("2.0.0")), [
        "out is failed",
        "out.lockstep_gate.halted[0].message is search('flag rlp means .retail liquidity')",
        "out.lockstep_gate.halted[0].message is search('power peg')",
        "out.lockstep_gate.halted[0].message is search('flag-reuse')",
        "out.flag_verdict is search('^flag-reuse refused')",
    ]))


def test_preflight_lets_2_1_0_through_and_says_why(run_play):
    run_play((preflight(states=_states("1.0.0"), manifest=_manifest("2.1.0")), [
        "out is not failed",
        "out.flag_verdict == 'flags consistent: rli across 1.0.0, 2.1.0'",
    ]))


def test_override_needs_a_reason_and_is_said(run_play):
    run_play((preflight(states=_states("1.0.0"), manifest=_manifest("2.0.0"), allow_flag_reuse=True), [
        "out is failed",
        # Refused by the gate for want of a reason, not by a crash.
        "out.lockstep_gate.halted[0].message is search('flag-reuse; lockstep_allow_flag_reuse with "
        "lockstep_flag_reuse_reason')",
    ]), (preflight(states=_states("1.0.0"), manifest=_manifest("2.0.0"), allow_flag_reuse=True,
                   flag_reuse_reason="clients stopped sending rlp on 2026-11-01"), [
        "out is not failed",
        "out.lockstep_gate.message is search('flag reuse ALLOWED by the operator .clients stopped sending rlp')",
    ]))

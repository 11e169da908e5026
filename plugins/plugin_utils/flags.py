# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flag-reuse rule: a flag name keeps one meaning across every version that can run together.

Knight Capital's 2012 release gave an order flag a new meaning while a server still ran code that read the old
one. A manifest declares every flag its code reads (``flags: [{name, meaning, since}]``) and the names it retired
(``retired_flags``); these functions compare such declarations. Pure functions: no I/O, easy to test.
"""

from __future__ import annotations

from ansible_collections.lockstep.release.plugins.module_utils.release_state import version_key


def declared(doc):
    """``({name: {"meaning", "since"}}, retired names)`` from a manifest (``flags`` is a list) or a flags file
    (``flags`` is a mapping); None when the document declares no flags at all (not even an empty list)."""
    if not isinstance(doc, dict) or "flags" not in doc:
        return None
    raw = doc.get("flags") or {}
    items = raw.items() if isinstance(raw, dict) else ((f.get("name"), f) for f in raw if isinstance(f, dict))
    flags = {str(name): {"meaning": (f or {}).get("meaning"), "since": (f or {}).get("since")} for name, f in items}
    return flags, set(doc.get("retired_flags") or [])


def disagreement(manifest, flags_doc, flags_file):
    """Why a manifest and the flags file inside its own artifact disagree (empty when they agree). A manifest that
    lies about its flags is as dangerous as a missing one: the flag gate would trust it."""
    m, f = declared(manifest), declared(flags_doc)
    if f is None:
        return ["the artifact has no readable flags file %s" % flags_file]
    if m is None:
        return ["the manifest declares no flags, the flags file %s declares %s" % (
            flags_file, ", ".join(sorted(f[0])) or "none")]
    out = []
    for name in sorted(set(m[0]) | set(f[0])):
        a, b = m[0].get(name), f[0].get(name)
        if a != b:
            out.append("flag %s: manifest says %s, %s says %s" % (name, _say(a), flags_file, _say(b)))
    if m[1] != f[1]:
        out.append("retired flags: manifest says %s, %s says %s" % (
            sorted(m[1]), flags_file, sorted(f[1])))
    return out


def _say(flag):
    return "not declared" if flag is None else "%r since %s" % (flag.get("meaning"), flag.get("since"))


def conflicts(target, target_decl, others):
    """One line per way ``target`` would read a flag differently from a version that can run beside it.

    ``others`` maps each version that runs, is active, or is a rollback target now to ``(declaration or None,
    hosts)``. A flag shared by two versions must have the same meaning and ``since``; a name that a version
    retired can never come back with a meaning in a later version.
    """
    out = []
    if target_decl is None:
        return out if all(d is None for d, dummy in others.values()) else [
            "%s declares no flags, so lockstep cannot prove it reads none the fleet's versions read" % target]
    t_flags, t_retired = target_decl
    for version in sorted(others, key=version_key):
        if version == target:
            continue
        decl, hosts = others[version]
        where = "%s on %s" % (version, ", ".join(sorted(hosts))) if hosts else version
        if decl is None:
            if t_flags:
                out.append("%s declares no flags, so lockstep cannot prove it does not read %s differently from %s"
                           % (where, ", ".join(sorted(t_flags)), target))
            continue
        o_flags, o_retired = decl
        for name in sorted(set(t_flags) & set(o_flags)):
            a, b = t_flags[name], o_flags[name]
            if (a["meaning"], a["since"]) != (b["meaning"], b["since"]):
                out.append("flag %s means %r (since %s) in %s but %r (since %s) in %s" % (
                    name, a["meaning"], a["since"], target, b["meaning"], b["since"], where))
        newer, older = (target, version) if version_key(target) > version_key(version) else (version, target)
        newer_flags = t_flags if newer == target else o_flags
        older_retired = o_retired if older == version else t_retired
        for name in sorted(set(newer_flags) & older_retired):
            out.append("flag %s was retired by %s and comes back in %s as %r: a retired name never returns" % (
                name, older if older == target else where, newer if newer == target else where,
                newer_flags[name]["meaning"]))
    return out

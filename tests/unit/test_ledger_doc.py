"""`ansible-doc -t callback lockstep.release.ledger` shows the plugin's documentation with every option."""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPTIONS = {"directory", "anchor_dir", "key", "key_file", "secret_patterns", "junit_file", "summary", "progress",
           "version_var", "rollback_phase"}


def ansible_doc(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(REPO, "collections")
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "-t", "callback", *args,
                           "lockstep.release.ledger"], capture_output=True, text=True, env=env, timeout=120)


def test_ansible_doc_lists_every_option():
    out = ansible_doc()
    assert out.returncode == 0, out.stderr
    assert "lockstep.release.ledger" in out.stdout
    for option in OPTIONS:
        assert option in out.stdout
    doc = json.loads(ansible_doc("--json").stdout)["lockstep.release.ledger"]["doc"]
    assert set(doc["options"]) == OPTIONS
    assert doc["options"]["directory"]["default"] == ".lockstep/ledger"
    for name, spec in doc["options"].items():
        assert spec.get("env") and spec.get("ini"), name
    assert doc["options"]["key"]["env"] == [{"name": "LOCKSTEP_LEDGER_KEY"}]
    assert doc["options"]["key_file"]["env"] == [{"name": "LOCKSTEP_LEDGER_KEY_FILE"}]
    assert "default" not in doc["options"]["key"] or doc["options"]["key"]["default"] is None

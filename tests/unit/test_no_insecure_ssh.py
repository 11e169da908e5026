"""No test, stub or configuration turns SSH host-key checking off: strict checking is part of the safety net."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".venv", ".venvs", ".git", ".fleet", "artifacts", ".lockstep", ".ansible", "__pycache__", ".cache"}
OFF = re.compile(r"StrictHostKeyChecking\s*=?\s*no\b|host_key_checking\s*=\s*(false|no)\b", re.I)


def test_no_strict_host_key_checking_off_anywhere():
    offenders = []
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP and not os.path.islink(os.path.join(top, d))]
        for name in files:
            path = os.path.join(top, name)
            if path == __file__:
                continue
            try:
                text = Path(path).read_text(errors="ignore")
            except OSError:
                continue
            if OFF.search(text):
                offenders.append(os.path.relpath(path, ROOT))
    assert offenders == []

"""The "about-site" variant of the second service (issue 18, item 4): a real application's traits, nothing else.

The static-site supervisor (``any_service/ctl``: ``python3 -m http.server`` started from the release directory,
a pidfile its only record) serving a release whose content gives it the traits of a web application installed
from a package index: its version only in a JSON document, nested (``GET /about`` -> ``{"app": {"name":
"about-site", "version": V}, "status": "ok"}``), no ``/health`` and no Prometheus ``/metrics`` (both 404). The
release directory also holds what a build machine leaves behind (a cache, a build script), left out by ``bin/lockstep
package --exclude``. ``reports`` makes the document report another version than the release's label (the same
application version with new data or configuration).

Use on the fleet: ``fleet.up(hosts=N, health_path="/about")`` (or ``health_path=""``: HAProxy checks a TCP
connect), ``build(tmp_path, "1.0.0")``, then ``release(tmp_path, "1.0.0", extra=dict(VARS,
lockstep_artifact_dir=...))`` from release_helpers. ``tests/unit/test_about_site.py`` proves it without the fleet.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import yaml

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "any_service")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAME = "about-site"
BASE = "/srv/static-site"  # the supervisor's default base (STATIC_SITE_BASE overrides it)
with open(os.path.join(HERE, "about_site.yml")) as _f:
    VARS = yaml.safe_load(_f)
# What the build machine leaves in the release directory and the package leaves out.
EXCLUDES = (".cache/", "scripts/build-*", "__pycache__", "*.pyc")


def about(version):
    """The JSON document ``GET /about`` answers."""
    return {"app": {"name": NAME, "version": version}, "status": "ok"}


def release_dir(root, version, reports=None):
    """The release directory of ``version`` as a build machine leaves it; ``/about`` reports ``reports`` (default:
    the version itself)."""
    src = os.path.join(str(root), version)
    os.makedirs(os.path.join(src, "bin"))
    shutil.copy(os.path.join(HERE, "ctl"), os.path.join(src, "bin", "ctl"))
    os.chmod(os.path.join(src, "bin", "ctl"), 0o755)
    with open(os.path.join(src, "about"), "w") as f:
        json.dump(about(reports or version), f, sort_keys=True)
    with open(os.path.join(src, "index.html"), "w") as f:
        f.write("<h1>%s</h1>\n" % NAME)
    os.makedirs(os.path.join(src, ".cache", "pip"))
    with open(os.path.join(src, ".cache", "pip", "selfcheck.json"), "w") as f:
        f.write("{}\n")
    os.makedirs(os.path.join(src, "scripts"))
    with open(os.path.join(src, "scripts", "build-about.sh"), "w") as f:
        f.write("#!/bin/sh\n# writes ./about on the build machine\n")
    return src


def build(tmp_path, version, reports=None, out=None, declare=True):
    """``<out>/about-site-<version>.{tar.gz,manifest.json}`` (default out: ``<tmp_path>/artifacts``), packaged by
    ``bin/lockstep package`` with ``EXCLUDES``; returns the artifact directory."""
    out = str(out or os.path.join(str(tmp_path), "artifacts"))
    src = release_dir(os.path.join(str(tmp_path), "src"), version, reports)
    excludes = [arg for pattern in EXCLUDES for arg in ("--exclude", pattern)]
    if reports and declare:  # the manifest says which version the service reports when it runs this release
        excludes += ["--service-version", reports]
    proc = subprocess.run([sys.executable, os.path.join(REPO, "bin", "lockstep"), "package", src, "--version",
                           version, "--name", NAME, "--out", out, *excludes], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return out

"""A stand-in for pip's get-pip.py, for ansible-test's per-test virtual environments.

ansible-test bootstraps pip in each virtual environment it creates with get-pip.py downloaded from a CI file server
that is not reachable here (only the Python package index is). It runs the script found at
``~/.ansible/test/cache/get_pip_<version>.py`` instead of downloading one, with pip-install arguments (the pip
version it wants and options). This script does what get-pip.py does with them, from what is at hand: the pip that
ships with Python (``ensurepip``), which then installs the requested pip from the package index.
"""

import ensurepip
import os
import runpy
import sys

# get-pip.py's own options (install no setuptools, no wheel besides pip) are not pip's: leave them to ensurepip.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
environ = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null for its own run; the install below uses the machine's pip settings.
os.environ.clear()
os.environ.update(environ)
sys.argv = ["pip", "install", "--upgrade", "--force-reinstall"] + args
runpy.run_module("pip", run_name="__main__", alter_sys=True)

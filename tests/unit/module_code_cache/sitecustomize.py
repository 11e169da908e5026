"""For the unit tests' local Ansible runs only (``ansible_env`` in test_progress_callback.py puts this directory on
the PYTHONPATH of the ansible-playbook they start, which its local connection passes on to every module process).

An Ansible module runs from its AnsiballZ zip, and Python compiles every source it imports from a zip afresh
(zipimport keeps no bytecode): ``ansible.module_utils.basic`` alone is about 130 ms of CPU of a module's 200, in each
of the hundreds of module runs of the miniature releases and the safeguard mutations. This keeps each compiled
module in ``$LOCKSTEP_MODULE_CODE_CACHE``, keyed by the interpreter's version, its path inside the zip and the SHA-1
of its source: the code that runs is the compilation of exactly the source the zip holds (a mutated module_utils has
another key), only not compiled again. Nothing changes where the variable is not set; the fleet's hosts never see
this file.
"""

import hashlib
import marshal
import os
import sys
import zipimport

_CACHE = os.environ.get("LOCKSTEP_MODULE_CODE_CACHE")
_compile = getattr(zipimport, "_compile_source", None)


def _cached(pathname, source):
    inner = pathname.split(".zip" + os.sep, 1)[-1]
    # The interpreter's own tag too: marshalled code is only read back by the Python version that wrote it.
    key = "\0".join((sys.implementation.cache_tag or "", inner)).encode() + b"\0" + source
    path = os.path.join(_CACHE, hashlib.sha1(key).hexdigest())
    try:
        with open(path, "rb") as f:
            return marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile(pathname, source)
    try:
        tmp = "%s.%d.tmp" % (path, os.getpid())
        with open(tmp, "wb") as f:
            f.write(marshal.dumps(code))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache that cannot be written only means the next run compiles again
    return code


if _CACHE and _compile is not None and os.path.isdir(_CACHE):
    zipimport._compile_source = _cached

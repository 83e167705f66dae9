"""A fresh interpreter in which some modules cannot be imported, as if they were not installed:
how the tests see the runtime without its extras (torch, onnx, matplotlib) on a machine that has
them all.

    from blocked import run_without
    done = run_without(["torch"], ["-m", "vqzip", "train", "vqvae", "--data", "d", "--out", "r"])
    done.returncode, done.stdout, done.stderr          # text

`modules` are top-level names: importing one of them, or any submodule, raises
ModuleNotFoundError (its `name` set) from a finder first on `sys.meta_path`. Unlike a module that
is truly absent, `importlib.util.find_spec` raises too rather than returning None, and
`importlib.metadata` still lists the installed distribution.
"""
from __future__ import annotations

import json
import subprocess
import sys

# Runs before the argv given: installs the finder, then runs `-m module ...` or `-c code ...`
# as the interpreter itself would (sys.argv as there, __main__ as the module's name).
_PRELUDE = """
import importlib.abc, json, runpy, sys
blocked, argv = json.loads(sys.argv[1]), sys.argv[2:]

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocked())
if argv[0] == "-m":
    sys.argv = [argv[1], *argv[2:]]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
elif argv[0] == "-c":
    sys.argv = ["-c", *argv[2:]]
    exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
else:
    raise SystemExit(f"run_without takes -m MODULE or -c CODE, not {argv[0]!r}")
"""


def run_without(modules: list[str], argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run `python *argv` (["-m", module, args...] or ["-c", code, args...]) in a fresh
    interpreter where `modules` cannot be imported; the finished process, its output as text.
    kwargs go to subprocess.run (cwd, env, timeout, input)."""
    return subprocess.run([sys.executable, "-c", _PRELUDE, json.dumps(list(modules)), *argv],
                          capture_output=True, text=True, **kwargs)

"""Command line: argument parsing, paths, messages and exit codes; each command a module of its
own, a few lines of parsing over the library (`vqzip.api`, `vqzip.training`, `vqzip.eval`),
the same functions a script calls.

    app.py          the typer apps, help formatting, errors as one line and an exit code
    batch.py        the many-files runner of compress and decompress
    compress.py, decompress.py, info.py, integrity.py (test), levels.py, models.py, rdcurve.py, train.py: the commands

Exit codes (also in `vqzip --help`): 0 success; 1 an error (damaged or foreign file, missing
model, unreadable or unsupported image, existing output), reported in one line on stderr, the
other files of a batch still done; 2 bad usage, or a command that needs an extra not installed
(`vqzip.extras`: one line naming it); 130 interrupted; 143 terminated (SIGTERM).
"""
from __future__ import annotations

import importlib
import signal
import sys

from vqzip import runtime
from vqzip.cli.app import USAGE, app, say
from vqzip.extras import MissingExtra

__all__ = ["app", "main", "run"]

# command -> the module that registers it on `app`, in the order `vqzip --help` lists them
COMMANDS = {"compress": "compress", "decompress": "decompress", "levels": "levels", "info": "info", "test": "integrity",
            "models": "models", "rd-curve": "rdcurve", "train": "train"}


def register(argv: list[str]) -> None:
    """Import the module of the command argv names, or of every command where it names none, or
    -h/--help comes before it (the help lists them all), or it is unknown (typer's message names
    the known ones); none for --version. The others' imports (rich's tables, the eval and
    training front ends) stay out of a command's start."""
    first = next((k for k, a in enumerate(argv) if not a.startswith("-")), len(argv))
    named = argv[first] if first < len(argv) else None
    if named is None and any(a in ("--version", "-V") for a in argv):
        return
    if any(a in ("-h", "--help") for a in argv[:first]):
        named = None
    for module in [COMMANDS[named]] if named in COMMANDS else COMMANDS.values():
        importlib.import_module(f"vqzip.cli.{module}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line on argv (default sys.argv[1:]); returns the exit code (tests call this directly)."""
    register(sys.argv[1:] if argv is None else argv)
    try:
        app(args=argv, prog_name="vqzip")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    except MissingExtra as e:  # what to install, wherever the command found it missing
        say(f"vqzip: error: {e}")
        return USAGE
    return 0


def _terminated(signum, frame):
    """SIGTERM unwinds as Ctrl-C does, so a file being written is removed (exit code 143)."""
    raise SystemExit(128 + signum)


def run() -> None:
    """The `vqzip` command: SIGTERM handled, the allocator's rule for the command, then main()."""
    signal.signal(signal.SIGTERM, _terminated)
    # each measured (`vqzip.runtime`): the training steps' rule for the two phases that run them,
    # one arena for coding; other `train` commands (rdo-codes codes images in workers) keep glibc's defaults
    if sys.argv[1:3] in (["train", "vqvae"], ["train", "prior"]):
        runtime.for_training()
    elif sys.argv[1:2] != ["train"]:
        runtime.one_arena()
    sys.exit(main())

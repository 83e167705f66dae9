"""What an optional part of vqzip needs beyond the runtime, and the one-line message when it is
not installed: `pip install vqzip` codes images; `vqzip[train]` adds torch and onnx (training,
export, the torch backend), `vqzip[eval]` matplotlib and ssimulacra2 (rd-curve's plots, SSIMULACRA 2).

    torch = require("torch", "train", "training")
    # not installed: MissingExtra("training needs torch, from vqzip's train extra: pip install 'vqzip[train]'")

The command line prints the message as one line and exits 2 (`vqzip.cli.main`); a library caller
gets it as the ModuleNotFoundError it is.
"""
from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ModuleNotFoundError):
    """A module from one of vqzip's extras is not installed; the message names the extra and the
    pip command that installs it."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """`module`, imported; MissingExtra, saying that `what` needs it from vqzip's `extra`, where
    it (or a module it imports) is not installed. Other import errors go up as they are."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise MissingExtra(f"{what} needs {e.name or module}, from vqzip's {extra} extra: "
                           f"pip install 'vqzip[{extra}]'", name=e.name) from None

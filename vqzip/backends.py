"""Which engine runs the VQ-VAE's networks, "onnx" (the default) or "torch" (the reference,
from the train extra): the name checked without numpy, so the command line refuses a bad
VQZIP_BACKEND before any heavy import (`vqzip.inference` runs the networks)."""
from __future__ import annotations

import os

from vqzip.errors import VqzError
from vqzip.extras import require

BACKENDS = ("onnx", "torch")


def backend(name: str | None = None) -> str:
    """The backend that runs the networks: `name`, else the VQZIP_BACKEND environment variable,
    else "onnx". A one-line VqzError for another name; MissingExtra (the train extra) for
    "torch" where torch is not installed, which it then imports."""
    chosen = name or os.environ.get("VQZIP_BACKEND") or "onnx"
    if chosen not in BACKENDS:
        source = "backend" if name else "VQZIP_BACKEND"
        raise VqzError(f"{source}={chosen!r} is not a backend: {' or '.join(BACKENDS)}")
    if chosen == "torch":
        require("torch", "train", "the torch backend (VQZIP_BACKEND=torch)")
    return chosen

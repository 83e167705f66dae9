"""`vqzip test`: .vqz files decoded fully, nothing written (as `gzip -t`)."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from vqzip.cli import batch
from vqzip.cli.app import MODELS, Command, app, err, reported
from vqzip.errors import VqzError


@app.command(cls=Command, name="test")
def test(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help=".vqz files, or - for stdin."),
    quiet: bool = batch.QUIET,
    max_pixels: int = batch.MAX_PIXELS,
    model_dirs: list[str] = MODELS,
):
    """Check .vqz files: each decoded fully (every code map against its checksum, the alpha plane,
    the corrections) and nothing written. Stops at the first damaged file, named, with exit code 1."""
    from vqzip import api, jobs

    if jobs.STDIO in inputs and batch.terminal(sys.stdin):
        with reported():
            raise VqzError("<stdin>: is a terminal; not reading .vqz data from it (redirect it)")
    for job in [jobs.Job(None if name == jobs.STDIO else Path(name), None) for name in inputs]:
        with reported(job):
            api.decompress(batch.read(job), max_pixels=max_pixels or None)
        if not quiet:
            err().print(f"{job.name}: OK", markup=False)

"""`vqzip info`: each .vqz file's header as a table."""
from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from vqzip.cli import batch
from vqzip.cli.app import Command, app, each_reported, reported
from vqzip.errors import VqzError


@app.command(cls=Command)
def info(inputs: list[str] = typer.Argument(..., metavar="INPUT", help=".vqz files, or - for stdin.")):
    """Print each .vqz file's header (sizes as width x height)."""
    from vqzip import jobs

    if jobs.STDIO in inputs and batch.terminal(sys.stdin):
        with reported():
            raise VqzError("<stdin>: is a terminal; not reading .vqz data from it (redirect it)")
    console = Console(highlight=False, soft_wrap=True)

    def show(job):
        table = header_table(batch.read(job))  # a damaged file prints nothing but its error
        console.print(f"{job.name}:", markup=False)  # a line of its own, unwrapped
        console.print(table)

    todo = [jobs.Job(None if name == jobs.STDIO else Path(name), None) for name in inputs]
    if each_reported(todo, lambda job: job, show):
        raise typer.Exit(1)


def header_table(data: bytes) -> Table:
    """A .vqz file's header, a row per field and per code map (named if its model is installed)."""
    from vqzip import container, fine_skip, zoo

    header, payloads, _ = container.unpack(data)
    installed = zoo.name_for_hash(header.model_hash)
    names = [m.name for m in zoo.load(installed).maps] if installed else []
    skip = dict(header.extensions).get(container.TAG_FINE_SKIP)
    rows = [
        ("format version", str(data[len(container.MAGIC)])),
        ("size", f"{header.width} x {header.height}"),
        ("coded at", f"scale {header.scale}: {header.coded_size[0]} x {header.coded_size[1]}"),
        ("operating point", (f"quality {header.quality}, " if header.quality else "")
         + (f"RDO lambda {header.lam:.4g}" if header.lam else "nearest codes")
         + (f", fine level skipped where it saves under {fine_skip.unpack(skip)[1]:.4g} per bit" if skip else "")),
        ("mode", header.mode),
        ("model", f"{header.model_name} ({header.model_hash.hex()})" + ("" if installed else " — not installed")),
        *((f"map {k}" + (f" ({names[k]})" if k < len(names) else ""), f"{c} x {r} codes, {len(p):,} bytes")
          for k, ((r, c), p) in enumerate(zip(header.maps, payloads))),
        ("file size", f"{len(data):,} bytes"),
        ("bits per pixel", f"{8 * len(data) / (header.width * header.height):.4f}"),
    ]
    table = Table(show_header=False)
    for k, v in rows:
        table.add_row(k, v)
    return table

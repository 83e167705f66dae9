"""`vqzip info`: each .vqz file's header, as a table at a terminal, plain text into a pipe, or JSON."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from vqzip.cli import batch
from vqzip.cli.app import MODELS, Command, app, each_reported, reported
from vqzip.cli.levels import JSON
from vqzip.errors import VqzError


@app.command(cls=Command)
def info(inputs: list[str] = typer.Argument(..., metavar="INPUT", help=".vqz files, or - for stdin."),
         as_json: bool = JSON, model_dirs: list[str] = MODELS):
    """Print each .vqz file's header (sizes as width x height); with --json, one JSON list of them."""
    from vqzip import jobs

    if jobs.STDIO in inputs and batch.terminal(sys.stdin):
        with reported():
            raise VqzError("<stdin>: is a terminal; not reading .vqz data from it (redirect it)")
    console = Console(highlight=False, soft_wrap=True)
    found = []

    def show(job):
        fields = header_fields(batch.read(job))  # a damaged file prints nothing but its error
        if as_json:
            found.append({"file": job.name, **fields})
            return
        console.print(f"{job.name}:", markup=False)  # a line of its own, unwrapped
        rows = _rows(fields)
        if console.is_terminal:
            table = Table(show_header=False)
            for k, v in rows:
                table.add_row(k, v)
            console.print(table)
        else:  # plain "field: value" lines for a pipe
            for k, v in rows:
                print(f"  {k}: {v}")

    todo = [jobs.Job(None if name == jobs.STDIO else Path(name), None) for name in inputs]
    failed = each_reported(todo, lambda job: job, show)
    if as_json:
        print(json.dumps(found, indent=1))
    if failed:
        raise typer.Exit(1)


def header_fields(data: bytes) -> dict:
    """A .vqz file's header as JSON-ready fields (maps named where the model is installed)."""
    from vqzip import container, fine_skip, zoo

    header, payloads, _ = container.unpack(data)
    installed = zoo.name_for_hash(header.model_hash)
    names = [m.name for m in zoo.load(installed).maps] if installed else []
    skip = dict(header.extensions).get(container.TAG_FINE_SKIP)
    return {
        "format_version": data[len(container.MAGIC)], "width": header.width, "height": header.height,
        "scale": str(header.scale), "coded_size": list(header.coded_size), "quality": header.quality or None,
        "lam": header.lam, "skip": fine_skip.unpack(skip)[1] if skip else None,
        "anchor": None if (anchor := container.anchor_of(header)) is None else str(anchor), "mode": header.mode,
        "model": header.model_name, "model_hash": header.model_hash.hex(), "model_installed": installed is not None,
        "maps": [{"name": names[k] if k < len(names) else None, "cols": c, "rows": r, "bytes": len(p)}
                 for k, ((r, c), p) in enumerate(zip(header.maps, payloads))],
        "file_bytes": len(data), "bpp": 8 * len(data) / (header.width * header.height),
    }


def _rows(f: dict) -> list[tuple[str, str]]:
    """`header_fields` as (field, value) lines for people."""
    return [
        ("format version", str(f["format_version"])),
        ("size", f"{f['width']} x {f['height']}"),
        ("coded at", f"scale {f['scale']}: {f['coded_size'][0]} x {f['coded_size'][1]}"),
        ("operating point", (f"quality {f['quality']}, " if f["quality"] else "")
         + (f"RDO lambda {f['lam']:.4g}" if f["lam"] else "nearest codes")
         + (f", fine level skipped where it saves under {f['skip']:.4g} per bit" if f["skip"] is not None else "")
         + (f", lattice at rate anchor {f['anchor']}" if f["anchor"] is not None else "")),
        ("mode", f["mode"]),
        ("model", f"{f['model']} ({f['model_hash']})" + ("" if f["model_installed"] else " — not installed")),
        *((f"map {k}" + (f" ({m['name']})" if m["name"] else ""), f"{m['cols']} x {m['rows']} codes, {m['bytes']:,} bytes")
          for k, m in enumerate(f["maps"])),
        ("file size", f"{f['file_bytes']:,} bytes"),
        ("bits per pixel", f"{f['bpp']:.4f}"),
    ]

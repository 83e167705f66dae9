"""`vqzip levels`: the quality levels, as a table at a terminal, plain text into a pipe, or JSON."""
from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from vqzip.cli.app import MODELS, Command, app, reported

JSON = typer.Option(False, "--json", help="Print JSON instead (to stdout).")


@app.command(cls=Command)
def levels(as_json: bool = JSON, model_dirs: list[str] = MODELS):
    """List the quality levels: each a shipped model's operating point, the scale images are coded
    at, the code maps coded (all, or the first few), the RDO multiplier, the fine-skip
    threshold, a lattice model's rate anchor, and the bpp and PSNR it gave on Kodak (its model
    card's figures)."""
    from vqzip import manifest

    with reported():
        default = manifest.level(None).quality
        rows = []
        for lv in manifest.levels():
            p, seen = lv.point, manifest.expected(lv)
            rows.append({"quality": lv.quality, "model": p.model, "scale": str(p.scale), "maps": p.maps, "lam": p.lam,
                         "skip": p.skip, "anchor": None if p.anchor is None else str(p.anchor),
                         "kodak_bpp": seen and seen.bpp, "kodak_psnr": seen and seen.psnr, "default": lv.quality == default})
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    console = Console(highlight=False)
    columns = ("quality", "model", "scale", "maps", "RDO lambda", "skip", "anchor", "Kodak bpp", "Kodak PSNR", "default")
    cells = [(str(r["quality"]), r["model"], r["scale"], "all" if r["maps"] is None else str(r["maps"]), f"{r['lam']:g}",
              f"{r['skip']:g}" if r["skip"] else "none", r["anchor"] or "-", "-" if r["kodak_bpp"] is None else f"{r['kodak_bpp']:.4f}",
              "-" if r["kodak_psnr"] is None else f"{r['kodak_psnr']:.2f} dB", "yes" if r["default"] else "")
             for r in rows]
    caption = ("lambda 0: nearest codes; skip: the fine map is coded only in the blocks where it saves more squared "
               "error per bit than this (none: everywhere); anchor: a lattice model's rate anchor (higher: finer; -: a VQ "
               "model's level); Kodak: what the level gave on the 24 Kodak images")
    if console.is_terminal:
        table = Table(*columns, title="vqzip quality levels", caption=caption)
        for c in cells:
            table.add_row(*c)
        console.print(table)
    else:  # plain columns, one line each, for a pipe
        widths = [max(len(x) for x in col) for col in zip(columns, *cells)]
        for line in [columns, *cells]:
            print("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip())
        print(caption)

"""A training run's validation curve (`vqzip.eval.run_curve`): PSNR and a rate bound against
steps, from the network alone (no priors needed), for snapshots of a run under way (`vqzip train
snapshot`).

    python bench/run_curve.py ../shared/data/train ~/vqzip-runs/long/L3-at-*  --json curve.json

The rate column is the maps' zeroth-order entropy: a bound the priors code below, not a file size.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vqzip import data, runtime
from vqzip.eval.run_curve import curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="the training folder (its validation split is used)")
    ap.add_argument("runs", type=Path, nargs="+", help="run or snapshot folders with vqvae.safetensors and vqvae.json")
    ap.add_argument("--images", type=int, help="the first N validation images only")
    ap.add_argument("--json", type=Path, help="write the curve here")
    args = ap.parse_args()
    runtime.set_threads(1)  # beside the run it measures
    files = data.split(data.list_images(args.data), "val")[: args.images]
    points = curve(args.runs, [data.load_rgb(f) for f in files])
    table = Table(title=f"validation curve ({len(files)} held-out images; rate: zeroth-order entropy bound)")
    for col in ("run", "steps", "maps", "PSNR dB", "entropy bpp"):
        table.add_column(col, justify="right")
    for c in points:
        for p in c["points"]:
            table.add_row(Path(c["run"]).name, str(c["steps"]), str(p["maps"]), f"{p['psnr']:.2f}", f"{p['entropy_bpp']:.4f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"images": [f.name for f in files], "curve": points}, indent=2))


if __name__ == "__main__":
    main()

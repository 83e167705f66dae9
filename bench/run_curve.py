"""A training run's validation curve: PSNR and a rate bound against steps, from the network
alone (no priors needed), for snapshots of a run under way (`vqzip train snapshot`).

    python bench/run_curve.py ../shared/data/train ~/vqzip-runs/long/L3-at-*  --json curve.json

Per snapshot and per prefix of its code maps past the first level (2 maps: top and bottom;
3: and a fine level; ...), over the validation split: the mean PSNR of the decoded pixels
(nearest codes, the codec's own encoder and decoder) and the maps' zeroth-order entropy in
bits per pixel: the rate of an ideal code for the maps' code frequencies on these images.
The priors, which see context, code below that bound (vqz-rvq2-short's at 0.72, 0.74 and 0.85 of
it for its three maps on the validation images): read the rate column as a bound, not as a file
size.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from vqzip import codec, data, metrics
from vqzip.training import load_net


def entropy_bits(codes: list[np.ndarray], num_codes: int) -> float:
    """Total bits of an ideal code for these maps' joint code frequencies."""
    counts = np.bincount(np.concatenate([c.ravel() for c in codes]), minlength=num_codes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(counts[counts > 0] * np.log2(p)).sum())


def measure(run: Path, images: list[np.ndarray]) -> dict:
    meta = json.loads((run / "vqvae.json").read_text())
    net = load_net(run)
    first = sum(m.latent == 0 for m in net.maps)  # a file codes at least one map past the first latent's
    per_image = [codec.encode_codes(net, px) for px in images]
    pixels = sum(px.shape[0] * px.shape[1] for px in images)
    bits = [entropy_bits([c[k].numpy() for c in per_image], m.num_codes) for k, m in enumerate(net.maps)]
    rows = []
    for n in range(first + 1, len(net.maps) + 1):
        psnr = np.mean([metrics.psnr(px, codec.decode_pixels(net, codes[:n], px.shape[1], px.shape[0]))
                        for px, codes in zip(images, per_image)])
        rows.append({"maps": n, "psnr": float(psnr), "entropy_bpp": sum(bits[:n]) / pixels})
    return {"run": str(run), "steps": meta["steps_done"], "snapshot": meta.get("snapshot"), "points": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="the training folder (its validation split is used)")
    ap.add_argument("runs", type=Path, nargs="+", help="run or snapshot folders with vqvae.safetensors and vqvae.json")
    ap.add_argument("--images", type=int, help="the first N validation images only")
    ap.add_argument("--json", type=Path, help="write the curve here")
    args = ap.parse_args()
    torch.set_num_threads(1)  # beside the run it measures
    files = data.split(data.list_images(args.data), "val")[: args.images]
    images = [data.load_rgb(f) for f in files]
    curve = sorted((measure(r, images) for r in args.runs), key=lambda c: c["steps"])
    table = Table(title=f"validation curve ({len(images)} held-out images; rate: zeroth-order entropy bound)")
    for col in ("run", "steps", "maps", "PSNR dB", "entropy bpp"):
        table.add_column(col, justify="right")
    for c in curve:
        for p in c["points"]:
            table.add_row(Path(c["run"]).name, str(c["steps"]), str(p["maps"]), f"{p['psnr']:.2f}", f"{p['entropy_bpp']:.4f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"images": [f.name for f in files], "curve": curve}, indent=2))


if __name__ == "__main__":
    main()

"""A training run's validation curve: PSNR and a rate bound against steps, from the network
alone (no priors needed), for snapshots of a run under way (`vqzip train snapshot`);
`bench/run_curve.py` is its command line.

Per snapshot and per prefix of its code maps past the first level (2 maps: top and bottom;
3: and a fine level; ...), over the images: the mean PSNR of the decoded pixels (nearest codes,
the codec's own encoder and decoder) and the maps' zeroth-order entropy in bits per pixel: the
rate of an ideal code for the maps' code frequencies on these images. The priors, which see
context, code below that bound (vqz-rvq2-short's at 0.72, 0.74 and 0.85 of it for its three maps
on the validation images): read the rate column as a bound, not as a file size.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vqzip import codec, metrics


def entropy_bits(codes: list[np.ndarray], num_codes: int) -> float:
    """Total bits of an ideal code for these maps' joint code frequencies."""
    counts = np.bincount(np.concatenate([c.ravel() for c in codes]), minlength=num_codes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(counts[counts > 0] * np.log2(p)).sum())


def measure(run: Path, images: list[np.ndarray]) -> dict:
    """One run or snapshot folder: {run, steps, snapshot, points: [{maps, psnr, entropy_bpp}]}."""
    from vqzip.training import load_net

    meta = json.loads((run / "vqvae.json").read_text())
    from vqzip.inference.torch_graphs import torch_network

    net = torch_network(load_net(run))
    first = sum(m.latent == 0 for m in net.maps)  # a file codes at least one map past the first latent's
    per_image = [codec.encode_codes(net, px) for px in images]
    pixels = sum(px.shape[0] * px.shape[1] for px in images)
    bits = [entropy_bits([c[k] for c in per_image], m.num_codes) for k, m in enumerate(net.maps)]
    rows = []
    for n in range(first + 1, len(net.maps) + 1):
        psnr = np.mean([metrics.psnr(px, codec.decode_pixels(net, codes[:n], px.shape[1], px.shape[0]))
                        for px, codes in zip(images, per_image)])
        rows.append({"maps": n, "psnr": float(psnr), "entropy_bpp": sum(bits[:n]) / pixels})
    return {"run": str(run), "steps": meta["steps_done"], "snapshot": meta.get("snapshot"), "points": rows}


def curve(runs: list[Path], images: list[np.ndarray]) -> list[dict]:
    """`measure` of every run, in order of their steps."""
    return sorted((measure(r, images) for r in runs), key=lambda c: c["steps"])

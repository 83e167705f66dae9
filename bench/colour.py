"""Colour fidelity of a model at a quality level: flat colours and tiny images, and the
saturation of photos.

    python bench/colour.py ../shared/data/train                  # the default level
    python bench/colour.py ../shared/data/train --model runs/x/model --images 31

Flat colours: the 27 with channels in {0, 128, 255}, at 1x1, 8x8 and 64x64, coded and decoded;
the table gives each size's worst and mean absolute error per channel (levels 0..255), and
the worst colour. Photos: the validation split's images (never Kodak), the decoded image's
mean chroma (`metrics.chroma`) over the original's. Issue 11's bar: every flat colour within 3
levels, chroma within 2%.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vqzip import codec, data, metrics, zoo
from vqzip.operating_point import OperatingPoint

COLOURS = list(itertools.product((0, 128, 255), repeat=3))
SIZES = (1, 8, 64)


def flat_errors(model, point: OperatingPoint) -> dict[int, list[tuple[float, tuple]]]:
    out = {}
    for size in SIZES:
        rows = []
        for c in COLOURS:
            im = Image.new("RGB", (size, size), c)
            dec = np.asarray(codec.decompress(codec.compress(im, model, point), model).image, dtype=np.float64)
            rows.append((float(np.abs(dec - np.array(c)).mean()), c))
        out[size] = rows
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="training folder; its validation split is used")
    ap.add_argument("--model", help="a model folder (default: the default level's shipped model)")
    ap.add_argument("--quality", type=int, help="a shipped quality level (default: the default)")
    ap.add_argument("--images", type=int, default=10, help="validation images for the chroma check (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.model:
        model = zoo.load_folder(args.model)
        point = OperatingPoint(model.name)
    else:
        point = zoo.level(args.quality).point
        model = zoo.load(point.model)
    for size, rows in flat_errors(model, point).items():
        worst = max(rows)
        print(f"flat {size}x{size}: mean abs error {np.mean([e for e, _ in rows]):.2f}, worst {worst[0]:.2f} at {worst[1]}; "
              f"{sum(e <= 3 for e, _ in rows)}/27 within 3")
    files = data.split(data.list_images(args.data), "val")
    ratios = []
    for f in files[: args.images] if args.images else files:
        px = data.load_rgb(f)
        dec = np.asarray(codec.decompress(codec.compress(Image.fromarray(px), model, point), model).image)
        ratios.append(metrics.chroma(dec) / metrics.chroma(px))
    print(f"photos: decoded chroma / original, mean {np.mean(ratios):.4f}, range {min(ratios):.4f} to {max(ratios):.4f} "
          f"({len(ratios)} validation images); {sum(abs(r - 1) <= 0.02 for r in ratios)} within 2%")


if __name__ == "__main__":
    main()

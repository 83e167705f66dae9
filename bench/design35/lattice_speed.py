"""A lattice model folder's compress and decompress seconds at some anchors, in one process beside a
shipped level's (a check of a run's speed before it has levels; `bench/speed.py` times levels).

    python bench/design35/lattice_speed.py /tmp/dry/ckpt/vqz-latdry --anchors 0,3,6 --level 9

Each point: the best of --runs of compress then decompress of IMAGE (default kodim01), after one
warm-up on a 128x128 crop; the file's bpp and the decoded PSNR.
"""
from __future__ import annotations

import argparse
import time
from fractions import Fraction

import numpy as np
from PIL import Image

from vqzip import codec, metrics, zoo
from vqzip.operating_point import OperatingPoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="an exported lattice model's folder")
    ap.add_argument("--anchors", default="0,3,6")
    ap.add_argument("--level", type=int, default=9, help="a shipped level timed beside it")
    ap.add_argument("--image", default="../shared/data/kodak/kodim01.png")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    image = Image.open(args.image).convert("RGB")
    lattice, shipped = zoo.load_folder(args.model), zoo.load(zoo.level(args.level).point.model)
    points = [(f"level {args.level}", shipped, zoo.level(args.level).point)]
    points += [(f"anchor {a}", lattice, OperatingPoint(lattice.name, anchor=Fraction(a))) for a in args.anchors.split(",")]
    for _, model, point in points:
        codec.decompress(codec.compress(image.crop((0, 0, 128, 128)), model, point), model)
    original = np.asarray(image)
    for name, model, point in points:
        seconds = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            data = codec.compress(image, model, point)
            t1 = time.perf_counter()
            decoded = codec.decompress(data, model)
            seconds.append((t1 - t0, time.perf_counter() - t1))
        c, d = np.min(seconds, axis=0)
        psnr = metrics.psnr(np.asarray(decoded.image.convert("RGB")), original)
        print(f"{name:10s} compress {c:.2f} s  decompress {d:.2f} s  {len(data) * 8 / original.shape[0] / original.shape[1]:.3f} bpp  {psnr:.2f} dB")


if __name__ == "__main__":
    main()

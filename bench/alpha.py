"""Sizes of an alpha plane in each coding vqzip has for it, beside the plane as a PNG file
(Pillow, optimize), and the time to code it (all codings, as `vqzip compress` does) and to
decode the one chosen.

    python bench/alpha.py                    # the planes tests/test_alpha.py checks, at 768x512 and 3840x2160
    python bench/alpha.py cutout.png ...     # the alpha channel of images of your own
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_alpha import REALISTIC, png_size  # noqa: E402  (the planes the tests use)

from vqzip import container, intake  # noqa: E402


def planes(paths: list[str]):
    if paths:
        for p in paths:
            with Image.open(p) as im:
                if "A" not in im.getbands():
                    raise SystemExit(f"{p} has no alpha channel")
                yield Path(p).name, np.asarray(im.getchannel("A"))
        return
    for size in ((768, 512), (3840, 2160)):
        for name, make in REALISTIC.items():
            yield f"{name} {size[0]}x{size[1]}", make(*size)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", help="images with an alpha channel [default: generated planes]")
    args = ap.parse_args(argv)
    table = Table("plane", *container.ALPHA_CODINGS, "PNG file", "chosen (+4 B tag)", "vs PNG", "code s", "decode s",
                  title="alpha plane bytes by coding")
    for name, plane in planes(args.images):
        t = time.perf_counter()
        coding, data = intake.code_alpha(plane)
        coded = time.perf_counter() - t
        found = intake.alpha_codings(plane)
        t = time.perf_counter()
        assert np.array_equal(intake.decode_alpha(coding, data, plane.shape[1], plane.shape[0]), plane)
        decoded = time.perf_counter() - t
        total, png = len(data) + (coding != intake.ZLIB) * intake.TAG_BYTES, png_size(plane)
        table.add_row(name, *(f"{len(found[k]):,}" if k in found else "-" for k in range(len(container.ALPHA_CODINGS))),
                      f"{png:,}", f"{container.ALPHA_CODINGS[coding]} {total:,}", f"{total / png:.2f}",
                      f"{coded:.2f}", f"{decoded:.3f}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()

"""The .vqz fuzzer at length, with the shipped default model (tests/test_fuzz.py runs a few
seconds of it with a tiny model). Prints, per mutation kind, how many tries ended in a clean
error, an exact decode, a decode consistent with a forged header, a wrong image, a crash or a
hang (the last three must be 0), then the commonest error messages.

    python bench/fuzz.py                  # 20000 mutated files, about a minute
    python bench/fuzz.py --tries 20000 --seed 1
    python bench/fuzz.py --preview        # the same, decoding previews (the top level alone)
"""
from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table

from vqzip import api, codec, fuzz, zoo

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "tiger.png"
VERDICTS = ("error", "exact", "consistent", "wrong", "crash", "hang")


def sample_files(model: zoo.CodecModel) -> list[bytes]:
    """Three small files: RGB; RGBA with real transparency; grayscale coded at scale 1/2."""
    with Image.open(SAMPLE) as im:
        rgb = im.convert("RGB")
    rgba = rgb.crop((40, 40, 60, 60)).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    point = api.model_point(model)  # every map at scale 1 (a lattice model's at its middle anchor)
    return [codec.compress(rgb.crop((0, 0, 48, 32)), model, point), codec.compress(rgba, model, point),
            codec.compress(rgb.crop((100, 50, 133, 67)).convert("L"), model, replace(point, scale=Fraction(1, 2)))]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tries", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=10, help="a decode taking longer is a hang")
    ap.add_argument("--preview", action="store_true", help="decode previews instead of whole images")
    args = ap.parse_args(argv)
    model = zoo.load(zoo.level(None).point.model)
    t = time.perf_counter()
    outcomes = fuzz.run(sample_files(model), args.tries, args.seed, args.seconds, args.preview)
    seconds = time.perf_counter() - t

    counts = Counter((o.kind, o.verdict) for o in outcomes)
    table = Table("mutation", *VERDICTS, "tries",
                  title=f"vqzip fuzz{' (previews)' if args.preview else ''}: {args.tries} mutated files, model {model.name}, "
                        f"seed {args.seed}, {seconds:.0f} s")
    for kind in (*fuzz.KINDS, None):
        row = [sum(n for (k, v), n in counts.items() if v == verdict and kind in (k, None)) for verdict in VERDICTS]
        table.add_row(kind or "all", *map(str, row), str(sum(row)))
    console = Console()
    console.print(table)
    messages = Counter(o.detail for o in outcomes if o.verdict == "error")
    errors = Table("error message (to its first colon; numbers as N)", "count", title="clean errors")
    for message, n in messages.most_common(12):
        errors.add_row(message, str(n))
    console.print(errors)
    for o in outcomes:
        if o.verdict in ("wrong", "crash", "hang"):
            console.print(f"{o.verdict} after {o.kind}: {o.detail}", markup=False)


if __name__ == "__main__":
    main()

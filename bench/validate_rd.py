"""Rate–distortion of models on the validation split (never Kodak), through the real codec: the
tool for choosing designs (`vqzip.eval.validation`). Each model is coded at a list of operating
points; the first model's curve is the anchor of the BD-rates.

    python bench/validate_rd.py ../shared/data/train vqz-base runs/x/model --points 1/2,3/4,1,5/4
    python bench/validate_rd.py ../shared/data/train vqz-base vqz-base=1:0.01,1:0.03,3/4:0.01,3/4:0.03

Each curve is MODEL[=POINTS]: a shipped name or a model folder (as `vqzip train export` writes),
and its operating points (default: --points). A point is SCALE[:LAMBDA[:STAGES[:SKIP[:ANCHOR]]]]:
the resampling scale, the RDO multiplier (0: nearest code), the number of maps coded after the
first level's (residual stages, then a fine level; default: all), the fine-skip threshold
(`vqzip.fine_skip`; default 0: the fine level whole) and a lattice model's rate anchor (a
fraction in 1/256 steps; a lattice model folder needs one: runs/lat=1:0:None:0:1,1:0:None:0:3,1:0:None:0:5). BD-rates are between the curves' Pareto fronts. Prints, per model and point, the mean bpp (file sizes), PSNR, MS-SSIM (dB)
and encode/decode seconds over the images, then BD-rates against the anchor (PSNR and MS-SSIM).
`--earlier JSON` adds the curves of an earlier run (same images) without measuring them again;
`--baselines webp,avif` adds classical codecs' sweeps, so a design is also read against the codecs it must beat;
`--per-image` adds each model's curve with every image coded at its own point, chosen at a common
rate-distortion slope (what an encoder that tries several points per image would give).
"""
from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vqzip import runtime
from vqzip.eval import validation as v
from vqzip.eval.baselines import CODECS


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="training folder; its validation split is used")
    ap.add_argument("curves", nargs="*", help="MODEL[=POINTS]")
    ap.add_argument("--points", default="1/2,3/4,1,5/4", help="operating points of a curve that names none")
    ap.add_argument("--images", type=int, default=0, help="use only the first N validation images (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--resize", type=Fraction, default=Fraction(1),
                    help="resize the images by this factor first (Lanczos): 2 makes them smoother per pixel, as Kodak is")
    ap.add_argument("--per-image", action="store_true",
                    help="add each model's curve with every image at its own point, chosen at a common slope")
    ap.add_argument("--baselines", default="", help="classical codecs to measure too, e.g. webp,avif (vqzip.eval.baselines)")
    ap.add_argument("--earlier", type=Path, action="append", default=[],
                    help="a --json of an earlier run on the same images: its curves come first (the first is the anchor)")
    args = ap.parse_args(argv)
    runtime.set_threads(args.threads)
    images = v.validation_images(args.data, args.images, args.resize)
    results = {}
    for path in args.earlier:
        try:
            results.update(v.earlier_results(path, len(images), args.resize))
        except ValueError as e:
            raise SystemExit(str(e)) from None
    for curve in args.curves:
        name, _, points = curve.partition("=")
        model = v.load_model(name)
        results[curve] = v.measure_model(model, images, v.parse_points(points or args.points, model.name))
        if args.per_image:
            results[f"{curve} (per image)"] = v.per_image(results[curve])
    for name in args.baselines.split(",") if args.baselines else []:
        if name not in CODECS or not CODECS[name].available():
            raise SystemExit(f"--baselines: no codec {name!r} here (known: {', '.join(CODECS)})")
        results[name] = v.measure_baseline(CODECS[name], images)
    if not results:
        raise SystemExit("nothing to measure: give curves, or --earlier JSON")
    table = Table("model", "point", "bpp", "PSNR", "MS-SSIM dB", "enc s", "dec s",
                  title=f"validation RD, {len(images)} images of {args.data}" + (f", resized x{args.resize}" if args.resize != 1 else ""))
    for name, rows in results.items():
        for r in rows:
            table.add_row(name, r["point"], f"{r['bpp']:.4f}", f"{r['psnr']:.3f}", f"{r['ms_ssim_db']:.3f}",
                          f"{r['encode_s']:.2f}", f"{r['decode_s']:.2f}")
    bd = v.bd_rates(results)
    Console().print(table)
    for name, rates in bd.items():
        print(f"BD-rate of {name} against {next(iter(results))}: " + ", ".join(
            f"{k} {x:+.2f}%" if isinstance(x, float) else f"{k} n/a ({x})" for k, x in rates.items()))
    if args.json:
        args.json.write_text(json.dumps({"images": len(images), "resize": str(args.resize), "results": results, "bd_rate": bd},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()

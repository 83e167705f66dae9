"""Rate–distortion of models on the validation split (never Kodak), through the real codec: the
tool for choosing designs. Each model is coded at a list of operating points; the first model's
curve is the anchor of the BD-rates.

    python bench/validate_rd.py ../shared/data/train vqz-base runs/x/model --points 1/2,3/4,1,5/4
    python bench/validate_rd.py ../shared/data/train vqz-base vqz-base=1:0.01,1:0.03,3/4:0.01,3/4:0.03

Each curve is MODEL[=POINTS]: a shipped name or a model folder (as `vqzip train export` writes),
and its operating points (default: --points). A point is SCALE[:LAMBDA[:STAGES]]: the
resampling scale, the RDO multiplier (0: nearest code), the number of maps coded after the
first level's (residual stages, then a fine level; default: all) and the fine-skip threshold
(`vqzip.fine_skip`; default 0: the fine level whole). BD-rates are between the curves' Pareto fronts. Prints, per model and point, the mean bpp (file sizes), PSNR, MS-SSIM (dB)
and encode/decode seconds over the images, then BD-rates against the anchor (PSNR and MS-SSIM).
`--earlier JSON` adds the curves of an earlier run (same images) without measuring them again;
`--baselines webp,avif` adds classical codecs' sweeps, so a design is also read against the codecs it must beat;
`--per-image` adds each model's curve with every image coded at its own point, chosen at a common
rate-distortion slope (what an encoder that tries several points per image would give).
"""
from __future__ import annotations

import argparse
import json
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from vqzip import codec, data, ladder, metrics, zoo
from vqzip.baselines import CODECS, Baseline
from vqzip.bdrate import bd_rate
from vqzip.operating_point import OperatingPoint


def parse_points(text: str, model: str) -> list[OperatingPoint]:
    """A curve's comma-separated point labels (`vqzip.ladder.parse_point`) as operating points of model."""
    return [ladder.parse_point(model, p) for p in text.split(",")]


def load(name: str) -> zoo.CodecModel:
    return zoo.load_folder(name) if Path(name).is_dir() else zoo.load(name)


def measure(encode, decode, images: list[np.ndarray], point: str) -> dict:
    """One operating point over the images: `encode(image) -> bytes`, `decode(bytes) -> image`."""
    rows = []
    for px in images:
        im = Image.fromarray(px)
        t = time.perf_counter()
        coded = encode(im)
        enc = time.perf_counter() - t
        t = time.perf_counter()
        out = np.asarray(decode(coded).convert("RGB"))
        dec = time.perf_counter() - t
        rows.append((8 * len(coded) / (im.width * im.height), metrics.psnr(px, out), metrics.db(metrics.ms_ssim(px, out)),
                     enc, dec))
    return {"point": point, **mean_of(rows), "images": [dict(zip(KEYS, map(float, r))) for r in rows]}


KEYS = ("bpp", "psnr", "ms_ssim_db", "encode_s", "decode_s")


def mean_of(rows) -> dict:
    return dict(zip(KEYS, (float(v) for v in np.mean(rows, 0))))


def per_image(rows: list[dict], slopes=np.geomspace(0.5, 500, 24)) -> list[dict]:
    """A curve's points if each image took its own: at each slope mu, the point that maximizes
    its PSNR - mu * bpp (the same mu for all images maximizes mean PSNR for the mean rate). The
    encoder would code every point to choose, so encode_s is their sum."""
    per = [[r["images"][i] for r in rows] for i in range(len(rows[0]["images"]))]
    curve = []
    for mu in slopes:
        picked = [max(points, key=lambda p: p["psnr"] - mu * p["bpp"]) for points in per]
        m = mean_of([[p[k] for k in KEYS] for p in picked])
        m["encode_s"] = sum(r["encode_s"] for r in rows)
        curve.append({"point": f"mu {mu:.3g}", **m})
    return front(curve, "psnr")


def measure_model(model: zoo.CodecModel, images: list[np.ndarray], point: OperatingPoint) -> dict:
    return measure(lambda im: codec.compress(im, model, point), lambda data: codec.decompress(data, model).image, images,
                   ladder.label(point))


def measure_baseline(baseline: Baseline, images: list[np.ndarray]) -> list[dict]:
    """A classical codec's sweep (`vqzip.baselines`), each setting's mean over the images."""
    return [measure(lambda im: baseline.encode(im, s), baseline.decode, images, f"{baseline.setting_name} {s}")
            for s in baseline.settings]


def front(rows: list[dict], key: str) -> list[dict]:
    """A curve's Pareto front in bpp and `key` (`vqzip.ladder.front`)."""
    return ladder.front(rows, lambda r: r["bpp"], lambda r: r[key])


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
    ap.add_argument("--baselines", default="", help="classical codecs to measure too, e.g. webp,avif (vqzip.baselines)")
    ap.add_argument("--earlier", type=Path, action="append", default=[],
                    help="a --json of an earlier run on the same images: its curves come first (the first is the anchor)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = data.split(data.list_images(args.data), "val")
    images = [data.load_rgb(f) for f in (files[: args.images] if args.images else files)]
    if args.resize != 1:
        images = [codec.resample(px, (round(px.shape[1] * args.resize), round(px.shape[0] * args.resize))) for px in images]
    results = {}
    for path in args.earlier:
        earlier = json.loads(path.read_text())
        if earlier["images"] != len(images):
            raise SystemExit(f"{path}: measured on {earlier['images']} images, not {len(images)}")
        if Fraction(earlier.get("resize", "1")) != args.resize:
            raise SystemExit(f"{path}: measured on images resized by {earlier.get('resize', '1')}, not {args.resize}")
        results.update(earlier["results"])
    for curve in args.curves:
        name, _, points = curve.partition("=")
        model = load(name)
        codec.compress(Image.new("RGB", (64, 64)), model)  # first calls at new shapes are slow
        results[curve] = [measure_model(model, images, p) for p in parse_points(points or args.points, model.name)]
        if args.per_image:
            results[f"{curve} (per image)"] = per_image(results[curve])
    for name in args.baselines.split(",") if args.baselines else []:
        if name not in CODECS or not CODECS[name].available():
            raise SystemExit(f"--baselines: no codec {name!r} here (known: {', '.join(CODECS)})")
        results[name] = measure_baseline(CODECS[name], images)
    table = Table("model", "point", "bpp", "PSNR", "MS-SSIM dB", "enc s", "dec s",
                  title=f"validation RD, {len(images)} images of {args.data}" + (f", resized x{args.resize}" if args.resize != 1 else ""))
    for name, rows in results.items():
        for r in rows:
            table.add_row(name, r["point"], f"{r['bpp']:.4f}", f"{r['psnr']:.3f}", f"{r['ms_ssim_db']:.3f}",
                          f"{r['encode_s']:.2f}", f"{r['decode_s']:.2f}")
    names = list(results)
    if not names:
        raise SystemExit("nothing to measure: give curves, or --earlier JSON")
    anchor = names[0]
    bd = {}
    for name in names[1:]:
        bd[name] = {}
        for key in ("psnr", "ms_ssim_db"):
            a, b = front(results[anchor], key), front(results[name], key)
            try:
                bd[name][key] = bd_rate([r["bpp"] for r in a], [r[key] for r in a], [r["bpp"] for r in b], [r[key] for r in b])
            except ValueError as e:
                bd[name][key] = str(e)
    Console().print(table)
    for name, v in bd.items():
        print(f"BD-rate of {name} against {anchor}: " + ", ".join(
            f"{k} {x:+.2f}%" if isinstance(x, float) else f"{k} n/a ({x})" for k, x in v.items()))
    if args.json:
        args.json.write_text(json.dumps({"images": len(images), "resize": str(args.resize), "results": results, "bd_rate": bd},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()

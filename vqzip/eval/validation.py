"""Rate–distortion of models on the validation split (never Kodak), through the real codec: the
tool for choosing designs (`bench/validate_rd.py` is its command line). Each model is coded at
a list of operating points; the first curve is the anchor of the BD-rates.

    images = validation_images(data_dir, limit, resize)
    results = {"vqz-base": measure_model(load_model("vqz-base"), images, parse_points("1/2,1"))}
    bd = bd_rates(results)                 # each curve against the first, on their Pareto fronts

A point is SCALE[:LAMBDA[:STAGES[:SKIP[:ANCHOR]]]]: the resampling scale, the RDO multiplier (0:
nearest code), the number of maps coded after the first level's (default: all), the fine-skip
threshold (`vqzip.fine_skip`; default 0: the fine level whole) and a lattice model's rate anchor
(a fraction in 1/256 steps, "5/2"; a lattice model needs one: "1:0:None:0:3"). A curve is a list of rows
{point, bpp, psnr, ms_ssim, ms_ssim_db, encode_s, decode_s, images: per image, the same less
ms_ssim_db}, means over the images (bpp from the file sizes), MS-SSIM in dB the dB of the mean
index (`metrics.mean_db`), as rd-curve reports Kodak's: a ladder chosen here is judged in the
unit Kodak is reported in.
"""
from __future__ import annotations

import json
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from vqzip import codec, data, ladder, metrics, zoo
from vqzip.eval.baselines import Baseline
from vqzip.eval.bdrate import bd_rate
from vqzip.operating_point import OperatingPoint

KEYS = ("bpp", "psnr", "ms_ssim", "encode_s", "decode_s")  # measured per image; ms_ssim_db only of a mean


def parse_points(text: str, model: str) -> list[OperatingPoint]:
    """A curve's comma-separated point labels, "1/2,3/4:0.01,1:0.02:2:300,1:0:None:0:5/2"
    (`vqzip.ladder.parse_point`), as operating points of model."""
    return [ladder.parse_point(model, p) for p in text.split(",")]


def load_model(name: str) -> zoo.CodecModel:
    """A shipped model by name, or a model folder (as `vqzip train export` writes) by path."""
    return zoo.load_folder(name) if Path(name).is_dir() else zoo.load(name)


def validation_images(data_dir: Path, limit: int = 0, resize: Fraction = Fraction(1)) -> list[np.ndarray]:
    """The validation split of a training folder (its first `limit` images; 0: all) as RGB pixels,
    resized by `resize` (Lanczos) where it is not 1."""
    files = data.split(data.list_images(data_dir), "val")
    images = [data.load_rgb(f) for f in (files[:limit] if limit else files)]
    if resize != 1:
        images = [codec.resample(px, (round(px.shape[1] * resize), round(px.shape[0] * resize))) for px in images]
    return images


def earlier_results(path: Path, images: int, resize: Fraction) -> dict[str, list[dict]]:
    """The curves of an earlier run's JSON, which must have measured as many images, resized alike
    (ValueError otherwise)."""
    earlier = json.loads(path.read_text())
    if any("ms_ssim" not in r for rows in earlier["results"].values() for r in rows):
        raise ValueError(f"{path}: measured before validation took MS-SSIM in dB of the mean index (as rd-curve does): "
                         "measure its curves again")
    if earlier["images"] != images:
        raise ValueError(f"{path}: measured on {earlier['images']} images, not {images}")
    if Fraction(earlier.get("resize", "1")) != resize:
        raise ValueError(f"{path}: measured on images resized by {earlier.get('resize', '1')}, not {resize}")
    return earlier["results"]


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
        rows.append((8 * len(coded) / (im.width * im.height), metrics.psnr(px, out), metrics.ms_ssim(px, out), enc, dec))
    return {"point": point, **_mean_of(rows), "images": [dict(zip(KEYS, map(float, r))) for r in rows]}


def _mean_of(rows) -> dict:
    """Per-image rows (KEYS' values) -> their means, and the MS-SSIM of them in dB (`metrics.mean_db`)."""
    means = dict(zip(KEYS, (float(v) for v in np.mean(rows, 0))))
    return {**means, "ms_ssim_db": metrics.mean_db([r[KEYS.index("ms_ssim")] for r in rows])}


def measure_model(model: zoo.CodecModel, images: list[np.ndarray], points: list[OperatingPoint]) -> list[dict]:
    """A model's curve: each point over the images, labelled as `vqzip.ladder.label` writes it,
    after a warm-up coding at the first point (the first calls at new shapes are slow)."""
    codec.compress(Image.new("RGB", (64, 64)), model, points[0])
    return [measure(lambda im: codec.compress(im, model, point), lambda data: codec.decompress(data, model).image,
                    images, ladder.label(point))
            for point in points]


def measure_baseline(baseline: Baseline, images: list[np.ndarray]) -> list[dict]:
    """A classical codec's sweep (`vqzip.eval.baselines`), each setting's mean over the images."""
    return [measure(lambda im: baseline.encode(im, s), baseline.decode, images, f"{baseline.setting_name} {s}")
            for s in baseline.settings]


def per_image(rows: list[dict], slopes=np.geomspace(0.5, 500, 24)) -> list[dict]:
    """A curve's points if each image took its own: at each slope mu, the point that maximizes
    its PSNR - mu * bpp (the same mu for all images maximizes mean PSNR for the mean rate). The
    encoder would code every point to choose, so encode_s is their sum."""
    per = [[r["images"][i] for r in rows] for i in range(len(rows[0]["images"]))]
    curve = []
    for mu in slopes:
        picked = [max(points, key=lambda p: p["psnr"] - mu * p["bpp"]) for points in per]
        m = _mean_of([[p[k] for k in KEYS] for p in picked])
        m["encode_s"] = sum(r["encode_s"] for r in rows)
        curve.append({"point": f"mu {mu:.3g}", **m})
    return front(curve, "psnr")


def front(rows: list[dict], key: str) -> list[dict]:
    """A curve's Pareto front in bpp and `key` (`vqzip.ladder.front`)."""
    return ladder.front(rows, lambda r: r["bpp"], lambda r: r[key])


def bd_rates(results: dict[str, list[dict]]) -> dict[str, dict[str, float | str]]:
    """BD-rate (%) of every curve after the first against the first (the anchor), on PSNR and on
    MS-SSIM (dB), between the curves' Pareto fronts; where undefined, the reason instead."""
    names = list(results)
    anchor, bd = names[0], {}
    for name in names[1:]:
        bd[name] = {}
        for key in ("psnr", "ms_ssim_db"):
            a, b = front(results[anchor], key), front(results[name], key)
            try:
                bd[name][key] = bd_rate([r["bpp"] for r in a], [r[key] for r in a], [r["bpp"] for r in b], [r[key] for r in b])
            except ValueError as e:
                bd[name][key] = str(e)
    return bd

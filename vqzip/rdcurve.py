"""Rate-distortion measurement: vqzip's quality levels and the classical baselines, on the same
images, through each codec's real bytes.

    measure(images, levels, baselines, progress) -> list of Point (one per image and setting)
    summarize(points) -> {codec: CompressAI-layout results, one entry per setting}
    bd_rates(summary) -> {baseline: {"psnr": %, "ms-ssim": %}} for vqzip against each baseline
    write(out, points, summary, bds) -> rd.csv, <codec>.json, bd-rate.json, rd.png

Rate is the coded file's size in bits over the image's pixels (vqzip's header included);
distortion is measured on the decoded 8-bit RGB pixels.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from vqzip import codec, metrics, zoo
from vqzip.baselines import Baseline
from vqzip.bdrate import bd_rate

VQZIP = "vqzip"


@dataclass
class Point:
    codec: str
    setting: str  # quality level, or the baseline's knob
    image: str
    pixels: int
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    ms_ssim_db: float
    encode_s: float
    decode_s: float
    estimated_bpp: float | None = None  # vqzip only: the priors' ideal rate, to show the overhead


def _point(name, setting, path, pixels, data: bytes, decoded: np.ndarray, enc: float, dec: float, est=None) -> Point:
    s = metrics.ms_ssim(pixels, decoded)
    n = pixels.shape[0] * pixels.shape[1]
    return Point(name, str(setting), path.name, n, len(data), 8 * len(data) / n, metrics.psnr(pixels, decoded), s,
                 metrics.db(s), enc, dec, None if est is None else est / n)


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def measure(images: list[Path], levels: list[zoo.Level], baselines: list[Baseline],
            progress: Callable[[], None] = lambda: None) -> list[Point]:
    """Every image through every vqzip level and every baseline setting; progress() after each."""
    points = []
    for path in images:
        with Image.open(path) as im:
            image = im.convert("RGB")
        pixels = np.asarray(image)
        for lv in levels:
            model = zoo.load(lv.model)
            data, enc = _timed(codec.compress, image, model, lv.scale, lv.lam, lv.stages, lv.quality)
            decoded, dec = _timed(codec.decompress, data, model)
            est = sum(codec.estimated_bits(model, decoded.codes).values())
            points.append(_point(VQZIP, lv.quality, path, pixels, data, np.asarray(decoded.image.convert("RGB")), enc, dec, est))
            progress()
        for b in baselines:
            for setting in b.settings:
                data, enc = _timed(b.encode, image, setting)
                decoded, dec = _timed(b.decode, data)
                points.append(_point(b.name, setting, path, pixels, data, np.asarray(decoded), enc, dec))
                progress()
    return points


def summarize(points: list[Point], descriptions: dict[str, str]) -> dict[str, dict]:
    """Per codec, CompressAI's results layout: one entry per setting, means over the images,
    settings in increasing rate."""
    out = {}
    for name in dict.fromkeys(p.codec for p in points):
        rows = {}
        for p in points:
            if p.codec == name:
                rows.setdefault(p.setting, []).append(p)
        means = sorted(({k: float(np.mean([getattr(p, k) for p in ps])) for k in
                         ("bpp", "psnr", "ms_ssim", "ms_ssim_db", "encode_s", "decode_s")} | {"setting": s}
                        for s, ps in rows.items()), key=lambda m: m["bpp"])
        out[name] = {"name": name, "description": descriptions.get(name, name), "results": {
            "setting": [m["setting"] for m in means], "bpp": [m["bpp"] for m in means],
            "psnr-rgb": [m["psnr"] for m in means], "ms-ssim-rgb": [m["ms_ssim"] for m in means],
            "ms-ssim-rgb-db": [m["ms_ssim_db"] for m in means],
            "encoding_time": [m["encode_s"] for m in means], "decoding_time": [m["decode_s"] for m in means]}}
        if name == VQZIP:
            est = [np.mean([p.estimated_bpp for p in rows[m["setting"]]]) for m in means]
            out[name]["results"]["estimated_bpp"] = [float(e) for e in est]
    return out


def bd_rates(summary: dict[str, dict]) -> dict[str, dict[str, float | None]]:
    """BD-rate (%) of vqzip against each baseline, on PSNR and on MS-SSIM (dB); None where it is
    undefined (fewer than two vqzip levels, or no common quality range)."""
    ours = summary[VQZIP]["results"]
    out = {}
    for name, s in summary.items():
        if name == VQZIP:
            continue
        out[name] = {}
        for metric in ("psnr-rgb", "ms-ssim-rgb-db"):
            try:
                out[name][metric] = bd_rate(s["results"]["bpp"], s["results"][metric], ours["bpp"], ours[metric])
            except ValueError:
                out[name][metric] = None
    return out


def write(out: Path, points: list[Point], summary: dict, bds: dict) -> list[Path]:
    """rd.csv (every image and setting), <codec>.json, bd-rate.json and rd.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "rd.csv"]
    with open(files[0], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(points[0])))
        w.writeheader()
        w.writerows(asdict(p) for p in points)
    for name, s in summary.items():
        files.append(out / f"{name}.json")
        files[-1].write_text(json.dumps(s, indent=2) + "\n")
    files.append(out / "bd-rate.json")
    files[-1].write_text(json.dumps({"anchor_is_baseline": True, "test": VQZIP, "bd_rate_percent": bds}, indent=2) + "\n")
    files.append(plot(summary, out / "rd.png"))
    return files


def plot(summary: dict, path: Path) -> Path:
    """PSNR and MS-SSIM (dB) against bpp for every codec, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (metric, label) in zip(axes, (("psnr-rgb", "PSNR-RGB (dB)"), ("ms-ssim-rgb-db", "MS-SSIM (dB)"))):
        for name, s in summary.items():
            r = s["results"]
            ax.plot(r["bpp"], r[metric], "o-" if name == VQZIP else ".--", label=name, lw=2 if name == VQZIP else 1)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.set_xlim(0, 1.6)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

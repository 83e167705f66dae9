"""The codings a rate-distortion sweep runs, and what each measures.

    plan(images, levels, baselines, metrics) -> list of Unit (one per image and setting, image by image)
    code(unit) -> Point: the image coded to real bytes, decoded, and measured

Rate is the coded file's size in bits over the image's pixels (vqzip's header included);
quality is measured on the decoded 8-bit RGB pixels, of the original's size, by the unit's
metrics (`vqzip.eval.measures`), in the process that coded it. Every unit codes its image from
the file, so a unit's bytes do not depend on which units ran before it, or where.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vqzip import zoo
from vqzip.errors import VqzError
from vqzip.eval.baselines import CODECS, Baseline

VQZIP = "vqzip"


@dataclass
class Point:
    codec: str
    setting: str  # quality level, or the baseline's knob
    image: str
    pixels: int
    bytes: int
    bpp: float
    psnr: float | None  # each quality None where the sweep does not measure it
    ms_ssim: float | None
    ms_ssim_db: float | None
    ssimulacra2: float | None
    encode_s: float
    decode_s: float
    estimated_bpp: float | None = None  # vqzip only: the priors' ideal rate, to show the overhead


@dataclass(frozen=True)
class Unit:
    """One coding to measure: an image through one vqzip level or one baseline setting."""

    index: int  # position in the sweep: points come back in this order
    image: Path
    pixels: int
    codec: str  # VQZIP or a baseline's name (a key of CODECS)
    setting: object  # a zoo.Level (a number and an operating point) for vqzip, else the baseline's setting
    metrics: tuple[str, ...] = ("psnr", "ms-ssim")  # names of what to measure (`vqzip.eval.measures`)

    @property
    def key(self) -> str:
        """The setting as rd.csv writes it: the quality level, or the baseline's knob."""
        return str(self.setting.quality if self.codec == VQZIP else self.setting)


def plan(images: list[Path], levels: list[zoo.Level], baselines: list[Baseline],
         metrics: tuple[str, ...] = ("psnr", "ms-ssim")) -> list[Unit]:
    """Every image through every level and every baseline setting, image by image, each to be
    measured by `metrics` (names). Each image's header is read here (its size, for the time
    estimate), so an unreadable one, or one too small for MS-SSIM where it is measured, fails
    before any coding."""
    from vqzip.metrics import MS_SSIM_MIN_SIDE

    units = []
    for path in images:
        with Image.open(path) as im:
            pixels = im.width * im.height
            if "ms-ssim" in metrics and min(im.size) < MS_SSIM_MIN_SIDE:
                raise VqzError(f"{path}: {im.width}x{im.height} is too small for MS-SSIM, which needs at least "
                               f"{MS_SSIM_MIN_SIDE} pixels a side")
        for setting in [(VQZIP, lv) for lv in levels] + [(b.name, s) for b in baselines for s in b.settings]:
            units.append(Unit(len(units), Path(path), pixels, *setting, tuple(metrics)))
    return units


_last_image: list = [None, None]  # (path, RGB image): a unit's image is usually the last one's


def _rgb(path: Path) -> Image.Image:
    if _last_image[0] != path:
        with Image.open(path) as im:
            _last_image[:] = [path, im.convert("RGB")]
    return _last_image[1]


def code(unit: Unit) -> Point:
    """One unit: the image coded to real bytes, decoded, and measured."""
    from vqzip import codec, container

    image = _rgb(unit.image)
    pixels = np.asarray(image)
    if unit.codec == VQZIP:
        lv = unit.setting
        model = zoo.load(lv.point.model)
        data, enc = _timed(lambda: codec.compress(image, model, lv.point, quality=lv.quality))
        decoded, dec = _timed(codec.decompress, data, model)
        est = sum(codec.estimated_bits(model, decoded.codes, container.anchor_of(decoded.header)).values())
        return _point(unit, pixels, data, np.asarray(decoded.image.convert("RGB")), enc, dec, est)
    baseline = CODECS[unit.codec]
    baseline.available()  # registers a plugin codec (JPEG XL) in a fresh worker
    data, enc = _timed(baseline.encode, image, unit.setting)
    decoded, dec = _timed(baseline.decode, data)
    return _point(unit, pixels, data, np.asarray(decoded), enc, dec)


def _point(unit: Unit, pixels: np.ndarray, data: bytes, decoded: np.ndarray, enc: float, dec: float, est=None) -> Point:
    from vqzip import metrics

    if decoded.shape != pixels.shape or decoded.dtype != np.uint8:  # what every metric assumes
        raise VqzError(f"{unit.image}: {unit.codec} {unit.key} decoded to {decoded.dtype} of shape {decoded.shape}, "
                       f"not the original's uint8 {pixels.shape}")
    ms = metrics.ms_ssim(pixels, decoded) if "ms-ssim" in unit.metrics else None
    n = pixels.shape[0] * pixels.shape[1]
    return Point(unit.codec, unit.key, unit.image.name, n, len(data), 8 * len(data) / n,
                 metrics.psnr(pixels, decoded) if "psnr" in unit.metrics else None, ms, None if ms is None else metrics.db(ms),
                 metrics.ssimulacra2(pixels, decoded) if "ssimulacra2" in unit.metrics else None,
                 enc, dec, None if est is None else est / n)


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t

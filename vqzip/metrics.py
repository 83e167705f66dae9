"""Distortion of decoded pixels against the original, both (H, W, 3) uint8 RGB.

PSNR is over all three channels at peak 255; `preview_psnr` scores a quarter-size preview
against the image reduced 4x with a box filter, over whole 4x4 blocks. MS-SSIM is pytorch-msssim's (the implementation
CompressAI reports with), on 0..255 data; `db` turns a similarity into -10 log10(1 - s), the
scale MS-SSIM curves are usually plotted on. `chroma` is the mean distance of the pixels from
gray in the Cb/Cr plane (BT.601), for checking that colours keep their saturation.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

MS_SSIM_MIN_SIDE = 161  # five scales of an 11-tap window need (11 - 1) * 2**4 + 1 pixels


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB; inf for identical images."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def preview_psnr(preview: np.ndarray, pixels: np.ndarray) -> float:
    """PSNR of a preview (a quarter of the size each way, rounded up) against `pixels` reduced 4x
    by averaging, over the whole 4x4 blocks (a partial last row or column is left out)."""
    h, w = pixels.shape[0] // 4, pixels.shape[1] // 4
    small = np.asarray(Image.fromarray(pixels[: 4 * h, : 4 * w]).reduce(4))
    return psnr(preview[:h, :w], small)


def sse(a: np.ndarray, b: np.ndarray) -> int:
    """Sum of squared differences, a band of rows at a time (bounded memory for large images)."""
    return sum(int(((a[k : k + 256].astype(np.int32) - b[k : k + 256]) ** 2).sum()) for k in range(0, len(a), 256))


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM in [0, 1]; needs both sides of at least MS_SSIM_MIN_SIDE pixels."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} pixels a side, not {a.shape[1]}x{a.shape[0]}")
    x, y = (torch.from_numpy(np.array(v, dtype=np.float64)).permute(2, 0, 1)[None] for v in (a, b))
    return float(_ms_ssim(x, y, data_range=255.0))


def db(similarity: float) -> float:
    """-10 log10(1 - similarity): a similarity on a dB scale (inf when it is 1)."""
    return math.inf if similarity >= 1 else -10 * math.log10(1 - similarity)


def chroma(pixels: np.ndarray) -> float:
    """Mean sqrt(Cb² + Cr²) over the pixels, Cb and Cr centred on 0 (BT.601, 0..255 scale)."""
    total = 0.0
    for k in range(0, len(pixels), 256):  # a band of rows at a time: bounded memory
        p = pixels[k : k + 256].astype(np.float64)
        cb = -0.168736 * p[..., 0] - 0.331264 * p[..., 1] + 0.5 * p[..., 2]
        cr = 0.5 * p[..., 0] - 0.418688 * p[..., 1] - 0.081312 * p[..., 2]
        total += float(np.hypot(cb, cr).sum())
    return total / (pixels.shape[0] * pixels.shape[1])

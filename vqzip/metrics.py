"""Distortion of decoded pixels against the original, both (H, W, 3) uint8 RGB.

PSNR is over all three channels at peak 255; `preview_psnr` scores a quarter-size preview
against the image reduced 4x with a box filter, over whole 4x4 blocks. MS-SSIM is computed as
pytorch-msssim computes it (the implementation CompressAI reports with; tests compare the two),
in numpy, on 0..255 data; `db` turns a similarity into -10 log10(1 - s), the scale MS-SSIM
curves are usually plotted on, and `mean_db` a set of images' similarities into the dB of their
mean. `ssimulacra2` is the `ssimulacra2` package's score (the perceptual metric of the JPEG XL
project). `chroma` is the mean distance of the pixels from gray in the Cb/Cr plane (BT.601), for
checking that colours keep their saturation.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

MS_SSIM_MIN_SIDE = 161  # five scales of an 11-tap window need (11 - 1) * 2**4 + 1 pixels
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli and Bovik 2003, finest scale first
SSIM_K1, SSIM_K2 = 0.01, 0.03


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
    """Multi-scale SSIM in [0, 1] of two (H, W, C) images on a 0..255 scale (Wang et al. 2003, as
    pytorch-msssim's `ms_ssim(data_range=255)`): per channel, the contrast-structure terms of the
    four finer scales and the SSIM of the coarsest (each a mean over its map, negatives made 0)
    raised to MS_SSIM_WEIGHTS and multiplied, then the mean over the channels. Between scales,
    2x2 averages, an odd side padded with zeros in front (which count in the average). Needs both
    sides of at least MS_SSIM_MIN_SIDE pixels (ValueError)."""
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} pixels a side, not {a.shape[1]}x{a.shape[0]}")
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    terms = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        ssim, cs = _ssim_and_cs(x, y)
        terms.append(cs if scale < len(MS_SSIM_WEIGHTS) - 1 else ssim)
        x, y = _halve(x), _halve(y)
    per_channel = np.prod([np.maximum(t, 0) ** w for t, w in zip(terms, MS_SSIM_WEIGHTS)], axis=0)
    return float(per_channel.mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The normalized 1-D Gaussian taps of pytorch-msssim's window, bit for bit: float32 values,
    exp and the sum rounded once from float64 (as torch's are here; numpy's float32 exp and sum
    differ in the last bit, which moved MS-SSIM by 2e-7), then widened to float64."""
    coords = np.arange(size, dtype=np.float32) - size // 2
    g = np.exp((-(coords**2) / np.float32(2 * sigma**2)).astype(np.float64)).astype(np.float32)
    return (g / np.float32(g.astype(np.float64).sum())).astype(np.float64)


def _blur(x: np.ndarray) -> np.ndarray:
    """x (..., H, W, C) filtered by the window down the columns, then along the rows; valid (no padding)."""
    w = _gaussian_window()
    n = len(w)
    h = x.shape[-3] - n + 1
    x = sum(w[k] * x[..., k : k + h, :, :] for k in range(n))
    v = x.shape[-2] - n + 1
    return sum(w[k] * x[..., k : k + v, :] for k in range(n))


def _ssim_and_cs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per channel (C,): the mean SSIM and the mean contrast-structure term of (H, W, C) images."""
    c1, c2 = (SSIM_K1 * 255) ** 2, (SSIM_K2 * 255) ** 2
    mu1, mu2, xx, yy, xy = _blur(np.stack([x, y, x * x, y * y, x * y]))
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    cs = (2 * (xy - mu1_mu2) + c2) / ((xx - mu1_sq) + (yy - mu2_sq) + c2)
    ssim = (2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1) * cs
    return ssim.mean((0, 1)), cs.mean((0, 1))


def _halve(x: np.ndarray) -> np.ndarray:
    """(H, W, C) -> 2x2 means ((H + 1) // 2, (W + 1) // 2, C); an odd side gets a zero row or
    column in front, counted in its means (torch's avg_pool2d with padding 1)."""
    h, w = x.shape[:2]
    x = np.pad(x, ((h % 2, 0), (w % 2, 0), (0, 0)))
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4


def db(similarity: float) -> float:
    """-10 log10(1 - similarity): a similarity on a dB scale (inf when it is 1)."""
    return math.inf if similarity >= 1 else -10 * math.log10(1 - similarity)


def mean_db(similarities) -> float:
    """A set of images' MS-SSIM in dB as vqzip reports it everywhere (rd-curve's results, the
    validation sweep, CompressAI's plots and published curves): `db` of the mean index, not the
    mean of each image's dB (which weighs the best images far more)."""
    return db(float(np.mean(similarities)))


def ssimulacra2(a: np.ndarray, b: np.ndarray) -> float:
    """SSIMULACRA 2 of `b` against the original `a`, both (H, W, 3) uint8 RGB of one size: 100
    for identical images, 90 visually lossless, 70 high, 50 medium, 30 low quality, negative
    below. The `ssimulacra2` package's own `compute_ssimulacra2` (vqzip's eval extra; a
    ModuleNotFoundError without it), which reads files only: it is given the pixels as in-memory
    PPM files, raw 8-bit RGB that decode to these very pixels, so the score is the one it gives
    on PNG files of them, without writing those (PNG files of a Kodak image and its decoding:
    about 0.8 s, beside about 1.1 s for the score). ValueError for other shapes or types."""
    from ssimulacra2 import compute_ssimulacra2

    for x in (a, b):
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"SSIMULACRA 2 scores (H, W, 3) uint8 RGB, not {x.dtype} of shape {x.shape}")
    if a.shape != b.shape:
        raise ValueError(f"SSIMULACRA 2 compares images of one size, not {a.shape[1]}x{a.shape[0]} "
                         f"and {b.shape[1]}x{b.shape[0]}")
    return float(compute_ssimulacra2(_ppm(a), _ppm(b)))


def _ppm(pixels: np.ndarray) -> io.BytesIO:
    f = io.BytesIO()
    Image.fromarray(pixels).save(f, "PPM")
    f.seek(0)
    return f


def chroma(pixels: np.ndarray) -> float:
    """Mean sqrt(Cb² + Cr²) over the pixels, Cb and Cr centred on 0 (BT.601, 0..255 scale)."""
    total = 0.0
    for k in range(0, len(pixels), 256):  # a band of rows at a time: bounded memory
        p = pixels[k : k + 256].astype(np.float64)
        cb = -0.168736 * p[..., 0] - 0.331264 * p[..., 1] + 0.5 * p[..., 2]
        cr = 0.5 * p[..., 0] - 0.418688 * p[..., 1] - 0.081312 * p[..., 2]
        total += float(np.hypot(cb, cr).sum())
    return total / (pixels.shape[0] * pixels.shape[1])

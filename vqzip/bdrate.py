"""Bjøntegaard delta rate (VCEG-M33): the average rate difference between two rate-distortion
curves at equal quality.

Each curve's log-rate is fitted as a cubic polynomial of its distortion (PSNR, or MS-SSIM in
dB); the fits are integrated over the distortion interval both curves cover, and the mean
difference of log-rates is turned back into a ratio. Negative: the test curve needs less rate.
"""
from __future__ import annotations

import numpy as np


def bd_rate(anchor_rate, anchor_dist, test_rate, test_dist) -> float:
    """Percent rate change of `test` against `anchor` at equal distortion.

    Each curve needs at least two points; a cubic is fitted from four (lower degree below
    that). Raises ValueError if the distortion ranges do not overlap."""
    fits, ranges = [], []
    for rate, dist in ((anchor_rate, anchor_dist), (test_rate, test_dist)):
        rate, dist = np.asarray(rate, dtype=np.float64), np.asarray(dist, dtype=np.float64)
        if len(rate) != len(dist) or len(rate) < 2:
            raise ValueError("each curve needs at least two (rate, distortion) points")
        if np.any(rate <= 0) or not np.all(np.isfinite(dist)):
            raise ValueError("rates must be positive and distortions finite")
        fits.append(np.polyint(np.polyfit(dist, np.log(rate), min(3, len(rate) - 1))))
        ranges.append((dist.min(), dist.max()))
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if lo >= hi:
        raise ValueError("the two curves cover no common distortion range")
    area = [np.polyval(f, hi) - np.polyval(f, lo) for f in fits]
    return float((np.exp((area[1] - area[0]) / (hi - lo)) - 1) * 100)

"""Bjøntegaard delta rate (VCEG-M33): the average rate difference between two rate-distortion
curves at equal quality.

Each curve's log-rate is fitted as a cubic polynomial of its distortion (PSNR, or MS-SSIM in
dB); the fits are integrated over the distortion interval both curves cover, and the mean
difference of log-rates is turned back into a ratio. Negative: the test curve needs less rate.

    bd_rate(anchor_rate, anchor_dist, test_rate, test_dist) -> % for two curves
    bd_rates(summary) -> {baseline: {metric: %}} for vqzip against each baseline of a sweep
    bd_table(bds, run) -> those as a Markdown table
"""
from __future__ import annotations

import numpy as np

from vqzip.eval.points import METRICS, VQZIP
from vqzip.eval.record import Run, title


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


def bd_rates(summary: dict[str, dict]) -> dict[str, dict[str, float | None]]:
    """BD-rate (%) of vqzip against each baseline, on PSNR and on MS-SSIM (dB); None where it is
    undefined (fewer than two vqzip levels, or no common quality range)."""
    ours = summary[VQZIP]["results"]
    out = {}
    for name, s in summary.items():
        if name == VQZIP:
            continue
        out[name] = {}
        for metric, _, _ in METRICS:
            try:
                out[name][metric] = bd_rate(s["results"]["bpp"], s["results"][metric], ours["bpp"], ours[metric])
            except ValueError:
                out[name][metric] = None
    return out


def bd_table(bds: dict, run: Run) -> str:
    """BD-rate of vqzip against each baseline as a Markdown table (n/a where undefined)."""
    names = list(bds)
    lines = [f"BD-rate of vqzip {run.vqzip} against each baseline on {title(run)} (negative: vqzip needs fewer bits "
             "for the same quality; Bjøntegaard's cubic fit of log-rate over the quality range both curves cover).", "",
             "| | " + " | ".join(run.codecs[n]["label"] if n in run.codecs else n for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for metric, _, short in METRICS:
        cells = ["n/a" if bds[n][metric] is None else f"{bds[n][metric]:+.1f}%".replace("-", "−") for n in names]
        lines.append(f"| {short} | " + " | ".join(cells) + " |")
    if any(v is None for b in bds.values() for v in b.values()):
        lines += ["", "n/a: fewer than two vqzip levels, or no common quality range."]
    return "\n".join(lines) + "\n"

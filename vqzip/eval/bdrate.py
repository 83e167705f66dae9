"""Bjøntegaard delta rate (VCEG-M33): the average rate difference between two rate-distortion
curves at equal quality.

Each curve's log-rate is fitted as a cubic polynomial of its quality (PSNR, MS-SSIM in dB, or
the SSIMULACRA 2 score); the fits are integrated over the quality interval both curves cover,
and the mean difference of log-rates is turned back into a ratio. Negative: the test curve
needs less rate.

    bd_rate(anchor_rate, anchor_dist, test_rate, test_dist) -> % for two curves
    bd_rates(curves, metrics) -> {test: {anchor: {metric key: %}}}, every curve against every other
    bd_table(bds, run) -> those as Markdown: vqzip against each anchor, then every pair per metric
"""
from __future__ import annotations

import numpy as np

from vqzip.eval.measures import METRICS
from vqzip.eval.points import VQZIP
from vqzip.eval.record import Run, label, title


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


def bd_rates(curves: dict[str, dict[str, list[float]]], metrics: list[str]) -> dict[str, dict[str, dict[str, float | None]]]:
    """BD-rate (%) of every curve (its results: "bpp" and its qualities' summary keys) against
    every other, for each of `metrics` (names): {test: {anchor: {metric key: %}}}, in the curves'
    order; None where it is undefined: a curve lacks that quality, has fewer than two points, or
    the two cover no common range of it."""
    out = {}
    for test, t in curves.items():
        out[test] = {}
        for anchor, a in curves.items():
            if anchor == test:
                continue
            out[test][anchor] = {}
            for m in (METRICS[n] for n in metrics):
                try:
                    out[test][anchor][m.key] = bd_rate(a["bpp"], a[m.key], t["bpp"], t[m.key])
                except (KeyError, ValueError):
                    out[test][anchor][m.key] = None
    return out


def bd_table(bds: dict, run: Run) -> str:
    """`bd_rates` as Markdown: vqzip against each anchor (the baselines, then the published
    curves), then for each metric every curve (rows) against every other (columns); n/a where
    undefined, with a note of the qualities a published curve does not give."""
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:+.1f}%".replace("-", "−")

    metrics = [METRICS[n] for n in run.metrics]
    anchors = list(bds[VQZIP])
    lines = [f"BD-rate of vqzip {run.vqzip} against each curve on {title(run)} (negative: vqzip needs fewer bits "
             "for the same quality; Bjøntegaard's cubic fit of log-rate over the quality range both curves cover).", "",
             "| | " + " | ".join(label(run, n) for n in anchors) + " |", "|---|" + "---|" * len(anchors)]
    lines += [f"| {m.short} | " + " | ".join(pct(bds[VQZIP][n][m.key]) for n in anchors) + " |" for m in metrics]
    if len(bds) > 2:  # more than vqzip and one anchor: every pair
        names = list(bds)
        for m in metrics:
            lines += ["", f"{m.short}: BD-rate of each curve (row) against each other (column).", "",
                      "| | " + " | ".join(label(run, n) for n in names) + " |", "|---|" + "---|" * len(names)]
            lines += [f"| {label(run, t)} | " + " | ".join("" if a == t else pct(bds[t][a][m.key]) for a in names) + " |"
                      for t in names]
    lacking = [(r["label"], [m.short for m in metrics if m.key not in r["qualities"]]) for r in run.references]
    notes = ["Published curves are means over the images their authors coded: they compare with this run's only on those "
             "same images (CompressAI's Kodak files: all 24)."] if run.references else []
    notes += [f"{name} gives no {' or '.join(short)}: left out of those comparisons." for name, short in lacking if short]
    if any(v is None for row in bds.values() for b in row.values() for v in b.values()):
        notes.append("n/a: a curve without that quality, fewer than two points, or no common quality range.")
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"

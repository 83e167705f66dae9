"""The quality ladder: a family's levels chosen from operating points measured on the
validation split (`bench/validate_rd.py --json`, then `bench/choose_levels.py`).

A level is an operating point of a model (`vqzip.operating_point`: scale, maps coded, RDO
multiplier, skip threshold, a lattice model's rate anchor). A family's
levels should span its range of rates evenly in log rate (each step the same factor of file
size), never upsample the image (a larger image is a slower and worse way to spend bits than
more maps), and each decode within a time bound. `choose` keeps the points no other beats
(less or equal rate, more PSNR) among those allowed, and picks `count` of them whose rates
are as close as it can get, in log rate, to `count` targets evenly spaced from `lo` to `hi`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from vqzip.operating_point import OperatingPoint


@dataclass(frozen=True)
class Measured:
    """An operating point and what it measured (means over the validation images)."""

    point: OperatingPoint
    bpp: float
    psnr: float
    decode_s: float = 0.0


# A point's label counts the maps coded after the first latent's (STAGES); the first latent of
# every model measured with labels (vqvae2's top) is one map.
FIRST_LATENT_MAPS = 1


def parse_point(model: str, label: str) -> OperatingPoint:
    """A point as `bench/validate_rd.py` labels it, SCALE[:LAMBDA[:STAGES[:SKIP[:ANCHOR]]]]
    (STAGES: the maps coded after the first latent's, "None" or absent: all; ANCHOR: a lattice
    model's rate anchor, a fraction such as "5/2", absent: none) -> that operating point of
    `model`; ValueError for a label that is not one."""
    f = label.split(":")
    if not 1 <= len(f) <= 5:
        raise ValueError(f"{label!r} is not SCALE[:LAMBDA[:STAGES[:SKIP[:ANCHOR]]]]")
    stages = None if len(f) < 3 or f[2] == "None" else int(f[2])
    return OperatingPoint(model, None if stages is None else FIRST_LATENT_MAPS + stages, Fraction(f[0]),
                          float(f[1]) if len(f) > 1 else 0.0, float(f[3]) if len(f) > 3 else 0.0,
                          Fraction(f[4]) if len(f) > 4 else None)


def label(point: OperatingPoint) -> str:
    """The label `parse_point` reads, as the measurements have always written it (a point with
    an anchor: all five fields)."""
    stages = None if point.maps is None else point.maps - FIRST_LATENT_MAPS
    if point.anchor is not None:
        return f"{point.scale}:{point.lam}:{stages}:{point.skip:g}:{point.anchor}"
    return f"{point.scale}:{point.lam}:{stages}" + (f":{point.skip:g}" if point.skip else "")


def front(items: list, rate=lambda p: p.bpp, quality=lambda p: p.psnr) -> list:
    """The items no other beats (less or equal rate, more quality), by rate: a curve's points
    may mix knobs (scale, maps, lambda), and BD-rate and the ladder need a monotone one."""
    out: list = []
    for p in sorted(items, key=lambda p: (rate(p), -quality(p))):
        if not out or quality(p) > quality(out[-1]):
            out.append(p)
    return out


def targets(count: int, lo: float, hi: float) -> list[float]:
    """`count` rates from lo to hi, evenly spaced in log rate."""
    if count < 2 or not 0 < lo < hi:
        raise ValueError(f"{count} levels from {lo} to {hi} bpp: need 2 or more, and 0 < lo < hi")
    return [lo * (hi / lo) ** (i / (count - 1)) for i in range(count)]


def choose(points: list[Measured], count: int, lo: float, hi: float, max_decode_s: float = math.inf) -> list[Measured]:
    """`count` points of the front of those that do not upsample and decode within
    max_decode_s, in increasing rate, minimizing the sum of squared log-rate distances to
    `targets(count, lo, hi)`, the i-th point to the i-th target. ValueError if fewer than
    `count` points are allowed."""
    allowed = front([p for p in points if p.point.scale <= 1 and p.decode_s <= max_decode_s])
    if len(allowed) < count:
        raise ValueError(f"{count} levels asked for, but only {len(allowed)} operating points are on the front "
                         f"(scale at most 1, decode within {max_decode_s} s)")
    goal = [math.log(t) for t in targets(count, lo, hi)]
    cost = [[(math.log(p.bpp) - g) ** 2 for p in allowed] for g in goal]
    # best[i][j]: least cost of targets 0..i with target i on point j (points in rate order)
    best = [cost[0][:]]
    back = [[-1] * len(allowed)]
    for i in range(1, count):
        row, arg, run, at = [], [], math.inf, -1
        for j in range(len(allowed)):
            if j > 0 and best[i - 1][j - 1] < run:
                run, at = best[i - 1][j - 1], j - 1
            row.append(run + cost[i][j])
            arg.append(at)
        best.append(row)
        back.append(arg)
    j = min(range(len(allowed)), key=lambda j: best[-1][j])
    chosen = []
    for i in range(count - 1, -1, -1):
        chosen.append(allowed[j])
        j = back[i][j]
    return chosen[::-1]


def manifest_levels(chosen: list[Measured], names: dict[str, str] | None = None) -> dict[str, dict]:
    """Chosen points as the manifest's "levels" entries, numbered from 1; `names` maps a
    measured model (a folder) to the name it ships under."""
    names = names or {}
    out = {}
    for q, p in enumerate((m.point for m in chosen), 1):
        entry = {"model": names.get(p.model, p.model), "scale": str(p.scale)}
        if p.maps is not None:
            entry["maps"] = p.maps
        if p.lam:
            entry["lam"] = p.lam
        if p.skip:
            entry["skip"] = p.skip
        if p.anchor is not None:
            entry["anchor"] = str(p.anchor)
        out[str(q)] = entry
    return out

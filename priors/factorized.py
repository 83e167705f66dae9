"""A factorized prior: one distribution over a map's codes, the same at every position.

    p(code at y, x) = counts[code] / sum(counts)          no spatial context, no conditioning

The simplest prior kind, and the example of one (`vqzip.priors.registry`): training fits its
logits (K,) to the codes of the training maps; calibration turns their softmax into fixed-point
counts, every code at least 1 so that any code can be coded; the walk is raster order, in bands
of rows that share one probability row (an export's `walk.tile` does not apply to it, as to a
context-free PixelCNN). Its rate is the codes' entropy, far above a PixelCNN's:
it is a baseline and a template, not a shipped model's prior.

This module holds what the codec reads (the config, the exact form) and imports no torch; the
float module and its calibration are `vqzip.priors.factorized_float`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np

COUNT_BITS = 16  # counts in units of 2**-16: they sum to about 2**16 + K, exact in float32 (below 2**24)
BAND = 4096  # positions per step of the walk


@dataclass(frozen=True)
class FactorizedConfig:
    num_codes: int = 512
    # the maps this map's prior may be conditioned on, as every kind's config takes them (so that
    # it fits the map's MapSpec); a factorized prior reads none of them
    conds: tuple[tuple[int, int], ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "conds", tuple((int(k), int(f)) for k, f in self.conds))  # JSON gives lists

    def to_dict(self) -> dict:
        return asdict(self)


def describe(cfg: FactorizedConfig) -> str:
    return f"a factorized prior (one distribution over its {cfg.num_codes} codes, no spatial context)"


class FixedFactorized:
    """The integer form: counts (K,) >= 1, the probability row of every position."""

    def __init__(self, cfg: FactorizedConfig, t: dict):
        self.cfg = cfg
        counts = np.asarray(t["counts"]).astype(np.int64)  # a numpy array or a CPU torch tensor
        if counts.shape != (cfg.num_codes,) or bool((counts < 1).any()) or int(counts.sum()) >= 1 << 24:
            raise ValueError(f"counts must be {cfg.num_codes} integers >= 1 summing below 2**24")
        self.row = counts.astype(np.float32)  # exact integers: the coder normalizes them

    def _raster(self, height: int, width: int, conds: list, skip: np.ndarray | None
                ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(probability rows, map rows, map columns) of every coded position, raster order, BAND at a time."""
        if len(conds) != len(self.cfg.conds):
            raise ValueError(f"this prior takes {len(self.cfg.conds)} conditioning maps, not {len(conds)}")
        rows, cols = (a.ravel() for a in np.meshgrid(np.arange(height), np.arange(width), indexing="ij"))
        if skip is not None:
            on = ~skip.ravel()
            rows, cols = rows[on], cols[on]
        for n in range(0, len(rows), BAND):
            r, c = rows[n : n + BAND], cols[n : n + BAND]
            yield np.tile(self.row, (len(r), 1)), r, c

    def walk(self, height: int, width: int, step: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
             conds=(), skip=None) -> np.ndarray:
        """Decode a (height, width) map in raster order (`vqzip.priors.registry.ExactPrior`)."""
        out = np.full((height, width), self.cfg.num_codes, dtype=np.int64)
        for probs, rows, cols in self._raster(height, width, list(conds), None if skip is None else np.asarray(skip, dtype=bool)):
            out[rows, cols] = np.asarray(step(probs, rows, cols), dtype=np.int64)
        return out

    def teacher_forced(self, codes, conds=(), batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(probability rows, symbols) of the known codes (OUT: not coded), in `walk`'s order."""
        known = np.asarray(codes)
        skip = known >= self.cfg.num_codes
        for probs, rows, cols in self._raster(*known.shape, list(conds), skip if skip.any() else None):
            for n in range(0, len(rows), batch):
                yield probs[n : n + batch], known[rows[n : n + batch], cols[n : n + batch]]

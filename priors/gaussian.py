"""A discretized-Gaussian prior over a map with a channel axis: the lattice quantizer's fine latent
(issue 35), C scalar symbols per position, each coded under a zero-mean Gaussian whose scale
comes from the conditioning maps alone.

    conds ──CondNet per group──► repeat up by the group's factor, sum ──► ReLU, 1x1, ReLU, 1x1
                                                                          └► log2 sigma (C, H, W)
    q = symbol - L,  s = sigma * g  (g: the channel's gain, 2 ** (log2_gain / 2**GAIN_BITS))
    p(q) = Phi((q + 1/2) / s) - Phi((q - 1/2) / s), the tails beyond +-L folded into the end symbols

No code reaches another code's distribution (the conditioning maps act as the hyperprior), so a
whole map is computed at once, channel after channel, with no wavefront.

The exact form (`ExactGaussian`) computes the same net in the priors' integer arithmetic
(`vqzip.priors.fixedpoint`: the conditioning nets as a PixelCNN's, the head as Affine layers) to
log2 sigma in units of 2**-GAIN_BITS; adding the channel's integer log2 gain gives log2 s, and an
integer multiply-and-shift of it picks one of `scales` rows of a float32 probability table stored
with the weights (made once at calibration, in float64). So the coder sees the same rows on every
machine, and the only approximation is the scale's rounding to the table's grid.

This module holds what the codec reads and imports no torch: the config and the exact form.
The float module training fits, and its calibration to the exact tensors, are
`vqzip.priors.gaussian_float`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np

from vqzip.priors.fixedpoint import Affine, Conditioning, clamp
from vqzip.priors.pixelcnn_config import PixelCNNConfig

GAIN_BITS = 12  # log2 gains and log2 sigma in units of 2**-GAIN_BITS
GAIN_LIMIT = 1 << 20  # |log2 gain| the exact form takes (256 octaves): keeps the scale index's products in int64
PROB_FLOOR = 2.0**-20  # the least probability-table entry: every symbol stays codable under any scale
BAND = 16384  # positions whose scales are computed at once (at least BAND_ROWS rows), and rows a step codes
BAND_ROWS = 16  # each band recomputes the conditioning rows its 3x3 convolutions reach: keep that a small share


@dataclass(frozen=True)
class GaussianConfig:
    channels: int = 8  # C, symbols per position
    max_symbol: int = 31  # L: q in -L..L, symbol q + L
    # per conditioning map, in the order the caller passes them: (its alphabet, this map's rows per
    # row of it), as PixelCNNConfig's
    conds: tuple[tuple[int, int], ...] = ()
    cond_channels: int = 64
    hidden: int = 64
    # the exact form's table: `scales` values of s = sigma * g, geometric from scale_min to scale_max
    scales: int = 64
    scale_min: float = 0.11  # below it the zero symbol's probability is 1 - 1e-5 already
    scale_max: float = 64.0  # about 2L: a wider Gaussian is nearly flat over -L..L

    def __post_init__(self):
        object.__setattr__(self, "conds", tuple((int(k), int(f)) for k, f in self.conds))  # JSON gives lists

    @property
    def num_codes(self) -> int:
        """The alphabet of each symbol (OUT = num_codes marks a position not coded)."""
        return 2 * self.max_symbol + 1

    groups = PixelCNNConfig.groups  # (factor, indices into conds) per group of maps at one resolution

    def to_dict(self) -> dict:
        return asdict(self)


def describe(cfg: GaussianConfig) -> str:
    return (f"a discretized Gaussian over {cfg.channels} channels of {cfg.num_codes} symbols, its scale "
            f"predicted from the maps before it")


class ExactGaussian:
    """The integer form (the registry's Exact), built from its tensors in a model file (numpy arrays
    or CPU torch tensors): the conditioning nets (cond.*, as a PixelCNN's), the head (head.0: ReLU'd
    sum of the groups' features -> hidden, clamped at 0 as the ReLU; head.1: -> log2 sigma in units
    of 2**-GAIN_BITS), the scale index (scale.m, scale.b, scale.shift: index = clamp((t * m + b) >>
    shift, 0, scales - 1) for t = log2 sigma + log2 gain) and the probability rows (table, float32
    (scales, num_codes)). ValueError where a tensor is missing or does not fit cfg.

    Its maps have a channel axis: (C, H, W) symbols, coded channel after channel, each channel in
    raster order. A step's positions are rows and columns of the channels stacked as a (C * H, W)
    map (row c * H + y), so `walk`'s step is the registry's `Step`. Every call takes the channels'
    log2 gains (integers, units of 2**-GAIN_BITS, (C,)) as the keyword `log2_gain`."""

    def __init__(self, cfg: GaussianConfig, t: dict):
        if not cfg.conds:
            raise ValueError("a Gaussian prior takes its scale from conditioning maps; its config names none")
        if not 0 < cfg.scales <= 256:
            raise ValueError(f"{cfg.scales} scales do not fit the uint8 scale index")
        _check_shapes(cfg, t)
        self.cfg = cfg
        self.conditioning = Conditioning(cfg, t)
        head0 = Affine(t, "head.0", sum(c2.out_bound for _, _, c2 in self.conditioning.nets))
        self.head = (head0, Affine(t, "head.1", head0.out_bound))
        self.scale_m, self.scale_b, self.scale_shift = (int(np.asarray(t[f"scale.{k}"])) for k in ("m", "b", "shift"))
        if not 0 < self.scale_shift < 63 or (self.head[1].out_bound + GAIN_LIMIT) * abs(self.scale_m) + abs(self.scale_b) >= 1 << 62:
            raise ValueError("scale index: fixed-point products overflow int64")
        self.table = np.asarray(t["table"])
        if self.table.dtype != np.float32 or not bool((self.table >= PROB_FLOOR).all()) or not np.isfinite(self.table).all():
            raise ValueError(f"table must be float32 probabilities, each at least {PROB_FLOOR}")

    def scale_index(self, conds, log2_gain) -> np.ndarray:
        """Conditioning maps (h_i, w_i) (integer arrays, or CPU torch tensors), as in cfg.conds, and
        the channels' log2 gains (C,) integers in units of 2**-GAIN_BITS -> the (C, H, W) uint8 row of
        `table` of every symbol. Computed in bands of rows, so memory grows with the map's width."""
        conds = [np.asarray(c) for c in conds]
        height, width = self._shape(conds)
        gain = self._gain(log2_gain)
        out = np.empty((self.cfg.channels, height, width), dtype=np.uint8)
        rows_per = max(BAND_ROWS, BAND // max(width, 1))
        for y0 in range(0, height, rows_per):
            y1 = min(y0 + rows_per, height)
            boxes = [(y0 // f, -(-y1 // f), 0, width // f) for f, _ in self.cfg.groups]
            x = 0
            for (f, _), (r0, _, _, _), feats in zip(self.cfg.groups, boxes, self.conditioning(conds, boxes=boxes)):
                # repeated up by the factor (exact: integers in float32), then this band's rows of it
                x = x + feats.repeat(f, 0).repeat(f, 1)[y0 - f * r0 : y1 - f * r0]
            z = self.head[0](np.maximum(x, 0).reshape(-1, x.shape[-1]))
            t = self.head[1](z.astype(np.float32))  # log2 sigma, (n, C) int64
            t += gain
            t *= self.scale_m
            t += self.scale_b
            t >>= self.scale_shift
            out[:, y0:y1] = clamp(t, 0, self.cfg.scales - 1).reshape(y1 - y0, width, -1).transpose(2, 0, 1)
        return out

    def probabilities(self, conds, log2_gain, block: int = BAND) -> Iterator[np.ndarray]:
        """The probability rows (n, num_codes) float32 of every symbol of the map, channel after
        channel, each in raster order (C-major: C * H * W rows in all), `block` rows at a time:
        the rows the coder normalizes (constriction does so deterministically)."""
        index = self.scale_index(conds, log2_gain).reshape(-1)
        for n in range(0, len(index), block):
            yield self.table[index[n : n + block]]

    def walk(self, height: int, width: int, step: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
             conds=(), skip=None, *, log2_gain) -> np.ndarray:
        """Decode a (C, height, width) map (`vqzip.priors.registry.ExactPrior`, with a channel
        axis): step(probs (n, num_codes), rows (n,), cols (n,)) -> the n symbols there, rows
        indexing the channels stacked as (C * height, width); channel after channel, raster order
        within each. skip: bool, (height, width) (the same positions of every channel) or (C,
        height, width): never coded, OUT in the result. Returns the int64 map of step's symbols."""
        c = self.cfg.channels
        out = np.full((c, height, width), self.cfg.num_codes, dtype=np.int64)
        skip = None if skip is None else np.broadcast_to(np.asarray(skip, dtype=bool), out.shape)
        for probs, at in self._steps((c, height, width), conds, skip, log2_gain, BAND):
            rows, cols = np.divmod(at, width)
            out.reshape(-1)[at] = np.asarray(step(probs, rows, cols), dtype=np.int64)
        return out

    def teacher_forced(self, codes, conds=(), batch: int = 4096, *, log2_gain) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(probability rows, symbols) of every symbol of the (C, H, W) map `codes` (OUT: not coded),
        in `walk`'s order, at most `batch` at a time."""
        known = np.asarray(codes)
        if known.ndim != 3 or known.shape[0] != self.cfg.channels:
            raise ValueError(f"a map of shape {known.shape} is not ({self.cfg.channels}, H, W)")
        skip = known >= self.cfg.num_codes
        for probs, at in self._steps(known.shape, conds, skip if skip.any() else None, log2_gain, batch):
            yield probs, known.reshape(-1)[at]

    def _steps(self, shape: tuple[int, int, int], conds, skip: np.ndarray | None, log2_gain, batch: int
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(probability rows, flat indices into the (C, H, W) map) of its coded symbols in order, at
        most `batch` at a time (a window of `batch` symbols of the map each: no index array of the
        whole map's size)."""
        conds = [np.asarray(c) for c in conds]
        fits = self._shape(conds)
        if fits != shape[1:]:
            raise ValueError(f"conditioning maps for a {fits[0]}x{fits[1]} map do not fit a {shape[1]}x{shape[2]} one")
        index = self.scale_index(conds, log2_gain).reshape(-1)
        coded = None if skip is None else ~skip.reshape(-1)
        for n in range(0, len(index), batch):
            at = np.arange(n, min(n + batch, len(index))) if coded is None else np.flatnonzero(coded[n : n + batch]) + n
            if len(at):
                yield self.table[index[at]], at

    def _shape(self, conds: list[np.ndarray]) -> tuple[int, int]:
        """(H, W) of the map that conditioning maps fit; ValueError where they are not one map's."""
        if len(conds) != len(self.cfg.conds):
            raise ValueError(f"this prior takes {len(self.cfg.conds)} conditioning maps, not {len(conds)}")
        shapes = {(f * c.shape[0], f * c.shape[1]) for c, (_, f) in zip(conds, self.cfg.conds)}
        if len(shapes) != 1 or any(c.ndim != 2 for c in conds):
            raise ValueError(f"conditioning maps of {[tuple(c.shape) for c in conds]} at x{[f for _, f in self.cfg.conds]} "
                             f"are not one map's")
        return shapes.pop()

    def _gain(self, log2_gain) -> np.ndarray:
        """The channels' log2 gains as int64 (C,); ValueError for another shape, a float or a value
        beyond GAIN_LIMIT."""
        gain = np.asarray(log2_gain)
        if gain.shape != (self.cfg.channels,) or gain.dtype.kind not in "iu" or bool((np.abs(gain) > GAIN_LIMIT).any()):
            raise ValueError(f"log2_gain must be {self.cfg.channels} integers within +-{GAIN_LIMIT}, "
                             f"not {gain.dtype} {tuple(gain.shape)}")
        return gain.astype(np.int64)


def _check_shapes(cfg: GaussianConfig, t: dict) -> None:
    """ValueError naming the first tensor of an ExactGaussian's that is missing or not of cfg's shape."""
    cc, hidden, c = cfg.cond_channels, cfg.hidden, cfg.channels
    shapes = {"head.0.w": (hidden, cc), "head.0.m": (hidden,), "head.0.b": (hidden,), "head.0.q": (3,),
              "head.1.w": (c, hidden), "head.1.m": (c,), "head.1.b": (c,), "head.1.q": (3,),
              "scale.m": (), "scale.b": (), "scale.shift": (), "table": (cfg.scales, cfg.num_codes)}
    for g, (_, idx) in enumerate(cfg.groups):
        shapes.update({f"cond.{g}.embed.{i}": (cfg.conds[j][0], cc) for i, j in enumerate(idx)})
        for layer in ("c1", "c2"):
            shapes.update({f"cond.{g}.{layer}.w": (cc, 9 * cc), f"cond.{g}.{layer}.m": (cc,), f"cond.{g}.{layer}.b": (cc,),
                           f"cond.{g}.{layer}.q": (3,)})
    for name, shape in shapes.items():
        if name not in t:
            raise ValueError(f"the Gaussian prior's tensor {name} is missing")
        if tuple(np.shape(t[name])) != shape:
            raise ValueError(f"the Gaussian prior's tensor {name} is {tuple(np.shape(t[name]))}, not {shape}")

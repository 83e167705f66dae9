"""The priors in integer arithmetic, so that every machine computes the same probabilities.

A float network's outputs depend on the order its sums are taken in (thread count, SIMD
width, BLAS build, CPU or GPU), and one probability that differs between encoder and
decoder derails the rest of a range-coded stream. Here every weight and every activation is
an integer and every sum is exact:

- matrix products take integer-valued float32 operands whose worst-case partial sums stay
  below 2**24 (checked when a model is loaded), so float32 adds them without rounding, in
  any order, on any BLAS, on any number of threads;
- rescaling is fixed point in int64, per output channel: y = clamp((acc * m + b) >> shift);
- tanh, sigmoid and exp are lookup tables shipped with the weights.

`FixedPointPrior` holds the tensors `vqzip.priors.calibration` makes from a trained float `PixelCNN`
(stored in the model file, under the sha256) and evaluates the same layers on any set of
positions: one wavefront at a time (`vqzip.priors.decode`), batched by whatever schedule the
caller likes. Since the arithmetic is exact, any grouping gives the same integers (tested).

The arithmetic is numpy's alone, the one implementation export's validation, the encoder (its
pass over known codes and RDO's walk) and the decoder all run; only calibration, which makes
the tensors from a float network, needs torch. On a 768x512 image's three vqz-l3 maps it walks
faster than the torch version it replaced, whose per-call cost dominated the thousands of small
operations (`bench/walk_speed.py`).

Layout, as in `PixelCNN` (h: the residual stream, in units of its scale):
    h0  = first-layer lookup tables, one row per unmasked tap, summed
    u   = conv(patches of h) + sum over groups of cond_g(features_g)   (gate pre-activations, 2C)
    g   = tanh_lut[u[:C]] * sigmoid_lut[u[C:]]
    h  += out(g)                                           (per gated block)
    z   = relu(head0(relu(h)));  logits = head1(z)
    p   = exp_lut[max(logits) - logits]                    (unnormalized; the coder normalizes)
"""
from __future__ import annotations

import numpy as np

from vqzip.priors import decode
from vqzip.priors.pixelcnn_config import PixelCNNConfig

EXACT = 1 << 24  # float32 holds every integer of smaller magnitude, so such sums are exact
GATE_SHIFT = 15  # sigmoid table entries are in units of 2**-GATE_SHIFT


def matmul(x: np.ndarray, wt: np.ndarray) -> np.ndarray:
    """x (n, in) @ wt (in, out) on integer-valued float32: exact whatever the summation order
    (tests swap in other orders to show it)."""
    return x @ wt


def clamp(y: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """y clamped to [lo, hi] in place (np.clip's checks of its bounds cost more than the clamp
    on the walk's small arrays)."""
    np.maximum(y, lo, out=y)
    return np.minimum(y, hi, out=y)


def _int64(a) -> np.ndarray:
    """A model file's tensor (a numpy array, or a CPU torch tensor: both expose the array
    interface) as int64."""
    return np.asarray(a).astype(np.int64)


class Product:
    """(x @ w.T) * m for integer x within +-x_bound, w int8 and m int64 per output channel:
    the unshifted fixed-point value of a linear map, exact in int64."""

    def __init__(self, t: dict, name: str, x_bound: int):
        self.name = name
        w = _int64(t[f"{name}.w"])
        self.wt = np.ascontiguousarray(w.T, dtype=np.float32)
        self.m = _int64(t[f"{name}.m"])
        self.acc_bound = int(np.abs(w).sum(1).max()) * x_bound
        if self.acc_bound >= EXACT:
            raise ValueError(f"{name}: sums reach {self.acc_bound}, beyond float32's exact integers")
        self.bound = self.acc_bound * int(np.abs(self.m).max())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # the float32 sums are integers: the unsafe cast to int64 is exact
        return np.multiply(matmul(x, self.wt), self.m, dtype=np.int64, casting="unsafe")


class Affine(Product):
    """y = clamp(((x @ w.T) * m + sum of extras + b) >> shift, lo, hi): a linear layer on integers,
    `extras` being other inputs' `Product`s on the same fixed-point scale."""

    def __init__(self, t: dict, name: str, x_bound: int, extras: list[Product] = ()):
        super().__init__(t, name, x_bound)
        self.b = _int64(t[f"{name}.b"])
        self.shift, self.lo, self.hi = (int(v) for v in np.asarray(t[f"{name}.q"]))
        self.extras = list(extras)
        if self.bound + sum(e.bound for e in self.extras) + int(np.abs(self.b).max()) >= 1 << 62:
            raise ValueError(f"{name}: fixed-point products overflow int64")
        self.out_bound = max(abs(self.lo), abs(self.hi))

    def __call__(self, x: np.ndarray, extra_xs: list[np.ndarray] = ()) -> np.ndarray:
        y = super().__call__(x)
        y += self.b
        for extra, ex in zip(self.extras, extra_xs):
            y += extra(ex)
        y >>= self.shift  # arithmetic: floors, as the calibration's rounding assumes
        return clamp(y, self.lo, self.hi)


class Conditioning:
    """The integer form of a prior's conditioning nets (`vqzip.priors.pixelcnn.CondNet`, one per
    group of maps at one resolution: summed embeddings, 3x3 conv, ReLU, 3x3 conv) from its tensors
    cond.{g}.embed.{i}, cond.{g}.c1 and cond.{g}.c2; cfg: a prior config with `conds` and `groups`.
    Every prior kind that conditions through CondNets evaluates them here."""

    def __init__(self, cfg, t: dict):
        self.cfg = cfg
        self.nets = []  # per group: (embedding tables, c1, c2)
        for g, (_, idx) in enumerate(cfg.groups):
            embeds = [_int64(t[f"cond.{g}.embed.{i}"]) for i in range(len(idx))]
            c1 = Affine(t, f"cond.{g}.c1", sum(int(np.abs(e).max()) for e in embeds))
            self.nets.append(([e.astype(np.float32) for e in embeds], c1, Affine(t, f"cond.{g}.c2", c1.out_bound)))

    def __call__(self, conds: list, band: int = 32, dtype=np.float32,
                 boxes: list[tuple[int, int, int, int]] | None = None) -> list[np.ndarray]:
        """Conditioning maps (h_g, w_g) (arrays, or CPU torch tensors), as in cfg.conds -> per
        group, its features (h_g, w_g, cc) as `dtype` holding integers: the float net's summed
        embeddings, 3x3 conv, ReLU, 3x3 conv (the repetition up to this map's resolution is the
        caller's). Computed `band` rows at a time from the rows around them that the two
        convolutions reach, so a large map never has more than a band of floats in memory. int16
        holds the features whenever `bound` < 2**15. boxes: per group, only its rows
        [y0, y1) and columns [x0, x1) -> (y1 - y0, x1 - x0, cc): the same integers as there in
        the whole, computed from the rows and columns around them."""
        if len(conds) != len(self.cfg.conds):
            raise ValueError(f"this prior takes {len(self.cfg.conds)} conditioning maps, not {len(conds)}")
        out = []
        for g, ((embeds, c1, c2), (_, idx)) in enumerate(zip(self.nets, self.cfg.groups)):
            maps = [np.asarray(conds[i]) for i in idx]
            h, w = maps[0].shape
            top, bottom, x0, x1 = (0, h, 0, w) if boxes is None else boxes[g]
            l0, l1 = max(x0 - 2, 0), min(x1 + 2, w)  # the embeddings' columns that c2's need, through c1
            k0 = max(x0 - 1, 0)  # c1's first column that c2 needs
            feats = np.empty((bottom - top, x1 - x0, c2.wt.shape[1]), dtype=dtype)
            for y0 in range(top, bottom, band):
                y1 = min(y0 + band, bottom)
                a, b = max(y0 - 2, 0), min(y1 + 2, h)  # likewise the embeddings' rows
                c0 = max(y0 - 1, 0)
                x = sum(e[m[a:b, l0:l1]] for e, m in zip(embeds, maps))
                x = conv3x3(c1, x, (c0 - a, min(y1 + 1, h) - a), (k0 - l0, min(x1 + 1, w) - l0))
                feats[y0 - top : y1 - top] = conv3x3(c2, x, (y0 - c0, y1 - c0), (x0 - k0, x1 - k0))
            out.append(feats)
        return out

    @property
    def bound(self) -> int:
        """The largest magnitude of a conditioning feature (0 without conditioning)."""
        return max((c2.out_bound for _, _, c2 in self.nets), default=0)


def conv3x3(layer: Affine, x: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """Rows and columns [y0, y1) x [x0, x1) of a zero-padded 3x3 conv of x (h, w, c) ->
    (y1 - y0, x1 - x0, out) float32: exact where the rows and columns around them are in x or
    beyond the map's edge (x's first and last rows and columns are the map's own wherever
    a range starts or ends there)."""
    (y0, y1), (x0, x1) = rows, cols
    a, b = max(y0 - 1, 0), min(y1 + 1, x.shape[0])
    l, r = max(x0 - 1, 0), min(x1 + 1, x.shape[1])
    # exactly one row and column of context: zeros where the map ends, as the float net's padding
    part = np.pad(x[a:b, l:r], ((1 - (y0 - a), 1 - (b - y1)), (1 - (x0 - l), 1 - (r - x1)), (0, 0)))
    # (rows, cols, c, 3, 3) -> (rows*cols, c*9): channel-major, then the kernel's rows and columns,
    # the order of a conv weight's flatten(1) that calibration quantized
    patches = np.lib.stride_tricks.sliding_window_view(part, (3, 3), axis=(0, 1))
    n = (y1 - y0) * (x1 - x0)
    return layer(patches.reshape(n, -1).astype(np.float32, copy=False)).astype(np.float32).reshape(y1 - y0, x1 - x0, -1)


class FixedPointPrior:
    """The integer form of one `PixelCNN`, built from its tensors in a model file (numpy arrays
    or CPU torch tensors); its arithmetic is numpy's alone."""

    def __init__(self, cfg: PixelCNNConfig, t: dict):
        self.cfg = cfg
        self.h_max, self.u_max, self.g_max = (int(t[f"limit.{k}"]) for k in ("h", "u", "g"))
        if not 0 < self.h_max < 1 << 15:
            raise ValueError(f"h_max {self.h_max} does not fit the int16 caches")
        tables = _int64(t["first.tables"])  # (taps, num_codes + 1, C), h units << first.shift
        self.tables = tables.reshape(-1, tables.shape[-1])  # row tap * (num_codes + 1) + code
        self.tap_rows = np.arange(len(tables)) * tables.shape[1]
        self.first_bias = _int64(t["first.b"])
        self.first_shift = int(t["first.shift"])
        self.taps = _int64(t["first.taps"])  # (taps, 2): row and column offsets, rows <= 0
        self.block_taps = _int64(t["blocks.taps"])  # the same for every gated block
        self.tanh, self.sigmoid = (_int64(t[k]) for k in ("lut.tanh", "lut.sigmoid"))
        self.exp = np.asarray(t["lut.exp"]).astype(np.float32)  # entries < 2**24: exact
        self.conditioning = Conditioning(cfg, t)
        self.blocks = []
        for i in range(cfg.blocks):
            conds = [Product(t, f"blocks.{i}.cond.{g}", c2.out_bound) for g, (_, _, c2) in enumerate(self.conditioning.nets)]
            self.blocks.append((Affine(t, f"blocks.{i}.conv", self.h_max, conds), Affine(t, f"blocks.{i}.out", self.g_max)))
        head0 = Affine(t, "head.0", self.h_max)
        self.head = (head0, Affine(t, "head.1", head0.out_bound))
        if int(np.abs(tables).max(1, initial=0).sum(0).max(initial=0)) + int(np.abs(self.first_bias).max()) >= 1 << 62:
            raise ValueError("first layer overflows int64")
        # (rows, columns) of the independent tiles the walk cuts the map into (`vqzip.priors.decode`),
        # 0 for the whole height or width; absent (every model before it), the map is one tile.
        # A tensor of the model file, so the model's hash covers the decode order it implies.
        tile = _int64(t.get("walk.tile", np.zeros(2, dtype=np.int32)))
        if tile.shape != (2,) or bool((tile < 0).any()):
            raise ValueError(f"walk.tile must be two sizes >= 0, not {tile.tolist()}")
        self.tile = tuple(int(v) for v in tile)

    @property
    def context_free(self) -> bool:
        """No code reaches the first layer (a 1x1 first kernel): every position's probabilities
        depend on the conditioning maps alone, so a whole map can be computed at once."""
        return len(self.taps) == 0

    def walk(self, height: int, width: int, step: decode.Step, conds=(), skip=None) -> np.ndarray:
        """The decoder's walk over a map (`vqzip.priors.registry.ExactPrior`): `decode.walk`."""
        return decode.walk(self, height, width, step, conds, skip)

    def teacher_forced(self, codes, conds=(), batch: int = 4096):
        """The walk over known codes (`vqzip.priors.registry.ExactPrior`): `decode.teacher_forced`."""
        return decode.teacher_forced(self, codes, conds, batch)

    # Each method below takes the inputs of a set of positions, gathered by the caller, and
    # returns their outputs. h comes out as int64 and is cached as int16 (|h| <= h_max < 2**15);
    # a matrix product takes it as float32 holding integers.

    def first(self, codes: np.ndarray) -> np.ndarray:
        """Codes (n, taps) under the first layer's unmasked taps -> h0 (n, C) int64."""
        s = self.tables[codes + self.tap_rows].sum(1)
        s += self.first_bias
        s >>= self.first_shift
        return clamp(s, -self.h_max, self.h_max)

    def block(self, i: int, patches: np.ndarray, centre: np.ndarray, conds: list[np.ndarray]) -> np.ndarray:
        """Gated block i: patches (n, block taps * C) float32 of h, centre (n, C) integers (the
        position's own h), conds: per group, its features (n, cc) float32 from `condition` ->
        next h (n, C) int64."""
        conv, out = self.blocks[i]
        u = conv(patches, conds)  # table indices: u_max stands for a pre-activation of 0
        c = u.shape[1] // 2
        g = self.tanh.take(u[:, :c])
        g *= self.sigmoid.take(u[:, c:])
        g += 1 << (GATE_SHIFT - 1)
        g >>= GATE_SHIFT
        h = out(g.astype(np.float32))
        h += centre
        return clamp(h, -self.h_max, self.h_max)

    def probabilities(self, h: np.ndarray) -> np.ndarray:
        """Top-layer h (n, C) integers -> unnormalized probability rows (n, K) float32, exact
        integers: the coder normalizes them (constriction does so deterministically)."""
        z = self.head[0](np.maximum(h, 0, dtype=np.float32))
        logits = self.head[1](z.astype(np.float32))
        d = np.subtract(logits.max(1, keepdims=True), logits, out=logits)
        return self.exp.take(np.minimum(d, len(self.exp) - 1, out=d))

    def condition(self, conds: list, band: int = 32, dtype=np.float32,
                  boxes: list[tuple[int, int, int, int]] | None = None) -> list[np.ndarray]:
        """Per group, the features of its conditioning maps: `Conditioning.__call__`."""
        return self.conditioning(conds, band, dtype, boxes)

    @property
    def cond_bound(self) -> int:
        """The largest magnitude of a conditioning feature (0 without conditioning)."""
        return self.conditioning.bound


def from_v02(t: dict) -> dict:
    """A vqzip 0.2 prior's tensors (at most one conditioning map) under this module's names."""
    renames = (("cond.embed", "cond.0.embed.0"), ("cond.c1.", "cond.0.c1."), ("cond.c2.", "cond.0.c2."))
    out = {}
    for k, v in t.items():
        for old, new in renames:
            if k.startswith(old):
                k = new + k[len(old):]
        if k.startswith("blocks.") and ".cond." in k:
            k = k.replace(".cond.", ".cond.0.")
        out[k] = v
    return out

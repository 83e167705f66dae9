"""Probability rows for coding a map: one wavefront at a time (decoder), or all at once (encoder).

Every layer of the prior is computed once per canvas position and cached (in the manner of
Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models"): a
layer's activation at (y, x) needs the layer below at (y-1, x-1..x+1), (y, x-1) and (y, x),
and the first layer needs codes within first_kernel // 2 rows above and columns aside. With
k = first_kernel // 2 + 1, everything a position needs lies on earlier lines x + k*y, so the
decoder computes the positions of one line together, layer by layer, through small matrix
products: Wc + k*(Hc-1) steps for a canvas of Hc x Wc, each a few positions' worth of work.

The encoder knows every code, so it fills the caches a whole layer at a time and takes the
rows in the decoder's order. The two schedules group and order the sums differently; they
agree bit for bit because the prior is evaluated in exact integer arithmetic
(`vqzip.priors.fixedpoint`), which is also why neither cares how many threads torch uses.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from vqzip.priors.fixedpoint import FixedPointPrior

# step(probs (n, K) float32, rows (n,), cols (n,)) -> the n symbols at those positions
Step = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

ROWS_PER_CHUNK = 32  # canvas rows per whole-layer chunk in the encoder: bounds its memory


@contextmanager
def one_thread():
    """Run the priors on one torch thread. The walk is thousands of small matrix products: a
    second OpenMP thread gains nothing on them, and when the other core is busy every parallel
    region waits for it (a Kodak image's walk took 45 s instead of 0.5 s beside a training run).
    Threads only change speed here, never results: the arithmetic is exact."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def wavefronts(height: int, width: int, k: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Rows and columns of each step's positions, in step order; every position once."""
    for t in range(width + k * (height - 1)):
        i = np.arange(max(0, -(-(t - width + 1) // k)), min(height - 1, t // k) + 1)
        yield i, t - k * i


@torch.inference_mode()
def walk(prior: FixedPointPrior, height: int, width: int, step: Step, conds: list[torch.Tensor] = ()) -> torch.Tensor:
    """Decode a (height, width) map in wavefront order, calling step with each batch of rows.

    conds: the maps the prior is conditioned on, as in its config's `conds`, each (height/f, width/f).
    Returns the (height, width) int64 map of the symbols step returned."""
    c = _Canvas(prior, torch.full((height, width), prior.cfg.num_codes, dtype=torch.long), conds)
    layers, (emit, bounds, rows, cols) = _schedule(c)
    for t in range(len(bounds) - 1):
        for layer, (pos, b) in enumerate(layers):
            if b[t] < b[t + 1]:
                c.layer(layer, pos[b[t] : b[t + 1]])
        a, z = bounds[t], bounds[t + 1]
        if a < z:
            p = emit[a:z]
            symbols = step(prior.probabilities(c.top(p)).numpy(), rows[a:z], cols[a:z])
            c.codes[p] = torch.from_numpy(np.asarray(symbols, dtype=np.int64))
    return c.codes.view(c.hc, c.wc)[c.r :, c.r : -c.r].clone()


def _schedule(c: "_Canvas"):
    """The walk's order, computed once: canvas positions sorted by wavefront step, then row (as
    `wavefronts` yields them); per layer, the flat positions where it is defined and each step's
    [start, stop) in them; and the same for the map's codes, with their map rows and columns."""
    ys, xs = np.divmod(np.arange(c.hc * c.wc), c.wc)
    t = xs + c.k * ys
    order = np.lexsort((ys, t))
    ys, xs, t = ys[order], xs[order], t[order]
    steps = np.arange(c.wc + c.k * (c.hc - 1) + 1)

    def part(mask):
        return torch.from_numpy(ys[mask] * c.wc + xs[mask]), np.searchsorted(t[mask], steps).tolist()

    layers = [part(c.defined(layer, ys, xs)) for layer in range(len(c.acts))]
    on_map = (ys >= c.r) & (xs >= c.r) & (xs < c.wc - c.r)
    return layers, (*part(on_map), ys[on_map] - c.r, xs[on_map] - c.r)


@torch.inference_mode()
def teacher_forced(prior: FixedPointPrior, codes: torch.Tensor, conds: list[torch.Tensor] = (),
                   batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(probability rows (n, K), symbols (n,)) for every code of the map `codes` (H, W), in the
    order `walk` decodes them, `batch` rows at a time; the same rows `walk` computes."""
    c = _Canvas(prior, codes, conds)
    rows, cols = np.arange(c.hc), np.arange(c.wc)
    for layer in range(len(c.acts)):
        for y0 in range(0, c.hc, ROWS_PER_CHUNK):
            ys, xs = (a.ravel() for a in np.meshgrid(rows[y0 : y0 + ROWS_PER_CHUNK], cols, indexing="ij"))
            keep = c.defined(layer, ys, xs)
            if keep.any():
                c.layer(layer, torch.from_numpy(ys[keep] * c.wc + xs[keep]))
        if layer:
            c.acts[layer - 1] = None  # done with: only the top layer feeds the head
    _, (emit, _, rows, cols) = _schedule(c)  # the walk's order of the map's codes
    symbols = codes.numpy()[rows, cols]
    for n in range(0, len(emit), batch):
        yield prior.probabilities(c.top(emit[n : n + batch])).numpy(), symbols[n : n + batch]


class _Canvas:
    """A map padded with the OUT token on a canvas, and one activation cache per layer.

    Caches are (Hc*Wc, C) int16 (|h| <= h_max < 2**15), addressed by flat position y*Wc + x: a
    layer's inputs at a set of positions are one gather of contiguous rows."""

    def __init__(self, prior: FixedPointPrior, codes: torch.Tensor, conds: list[torch.Tensor]):
        self.prior, self.r = prior, prior.cfg.reach
        r = self.r
        canvas = F.pad(codes, (r, r, r, 0), value=prior.cfg.num_codes)
        self.hc, self.wc = canvas.shape
        self.codes = canvas.view(-1)
        rows_above = int(-prior.taps[:, 0].min())
        self.k = rows_above + 1
        # layer l is defined where its whole input window lies on the canvas: offset off_l
        self.offsets = [rows_above + b for b in range(len(prior.blocks) + 1)]
        self.acts = [torch.zeros(self.hc * self.wc, prior.cfg.channels, dtype=torch.int16) for _ in self.offsets]
        self.conds = []  # per group, its features on the canvas, repeated xf, zero outside the map
        for feats, (f, _) in zip(prior.condition(list(conds)), prior.cfg.groups):
            (h, w, cc), canvas = feats.shape, torch.zeros(self.hc, self.wc, feats.shape[-1])
            if (f * h, f * w) != tuple(codes.shape):
                raise ValueError(f"a conditioning map of {h}x{w} does not fit a {tuple(codes.shape)} map at x{f}")
            canvas[r:, r : self.wc - r].view(h, f, w, f, cc).copy_(feats[:, None, :, None].expand(h, f, w, f, cc))
            self.conds.append(canvas.view(self.hc * self.wc, cc))
        self.taps = prior.taps[:, 0] * self.wc + prior.taps[:, 1]
        self.window = prior.block_taps[:, 0] * self.wc + prior.block_taps[:, 1]
        centre = int(((prior.block_taps[:, 0] == 0) & (prior.block_taps[:, 1] == 0)).nonzero()[0, 0])
        self.centre = slice(centre * prior.cfg.channels, (centre + 1) * prior.cfg.channels)  # a tap of the patch

    def defined(self, layer: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        off = self.offsets[layer]
        return (ys >= off) & (xs >= off) & (xs < self.wc - off)

    def layer(self, layer: int, pos: torch.Tensor) -> None:
        """Compute layer `layer` at flat canvas positions `pos`, whose inputs are in place."""
        p = self.prior
        if layer == 0:
            h = p.first(self.codes[pos.view(-1, 1) + self.taps])
        else:
            below = self.acts[layer - 1]
            patches = below.index_select(0, (pos.view(-1, 1) + self.window).view(-1)).view(len(pos), -1)
            patches = patches.to(torch.float32)
            conds = [c.index_select(0, pos) for c in self.conds]
            h = p.block(layer - 1, patches, patches[:, self.centre], conds)
        self.acts[layer].index_copy_(0, pos, h.to(torch.int16))

    def top(self, pos: torch.Tensor) -> torch.Tensor:
        return self.acts[-1].index_select(0, pos).to(torch.float32)

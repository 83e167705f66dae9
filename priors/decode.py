"""The step-by-step schedule that turns a prior into probability rows, one wavefront at a time.

Every layer of the prior is computed once per canvas position and cached (in the manner of
Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models"): a
layer's activation at (y, x) needs the layer below at (y-1, x-1..x+1), (y, x-1) and (y, x),
and the first layer needs codes within first_kernel // 2 rows above and columns aside. With
k = first_kernel // 2 + 1, everything a position needs lies on earlier lines x + k*y, so the
positions of one line are computed together, layer by layer, through small matrix products:
the canvas takes Wc + k*(Hc-1) steps, and each step costs a few positions' worth of work.

Encoder and decoder both call `run`, and differ only in `step`: the encoder codes the known
symbols, the decoder decodes them. Both fill the canvas in the same order and evaluate the same
positions in the same batches, so the float logits are bit-identical at the two ends (a batched
shortcut in the encoder alone would change them; see ../shared/NOTES.md). They run on one
thread whatever torch is set to: with more threads the same products round differently
(measured: 7e-10 apart), and one flipped probability derails the rest of a range-coded stream.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from priors.masked import MaskedConv2d
from priors.pixelcnn import PixelCNN

# step(probs (n, K) float32, rows (n,), cols (n,)) -> the n symbols at those positions
Step = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def wavefronts(height: int, width: int, k: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Rows and columns of each step's positions, in step order; every position once."""
    for t in range(width + k * (height - 1)):
        i = np.arange(max(0, -(-(t - width + 1) // k)), min(height - 1, t // k) + 1)
        yield i, t - k * i


@contextmanager
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def run(prior: PixelCNN, height: int, width: int, step: Step, cond_codes: torch.Tensor | None = None) -> torch.Tensor:
    """Walk a (height, width) map in wavefront order, calling step with each batch of rows.

    cond_codes: the (height/2, width/2) top map for a conditional prior, else None.
    Returns the (height, width) int64 map of the symbols step returned."""
    with one_thread():
        return _Walk(prior, height, width, cond_codes).run(step)


class _Walk:
    """Per-layer activation caches over the canvas, filled one wavefront at a time.

    `_layer` and the head loop compute, position by position, what `PixelCNN.forward` computes
    for whole maps (the first masked conv, then each `GatedBlock`, then ReLU/1x1 pairs);
    tests/test_priors.py checks that the two agree."""

    def __init__(self, prior: PixelCNN, height: int, width: int, cond_codes: torch.Tensor | None):
        self.prior = prior
        self.r = prior.cfg.reach
        self.canvas = prior.canvas(torch.full((1, height, width), prior.out_token, dtype=torch.long))[0]
        self.hc, self.wc = self.canvas.shape
        c = prior.cfg.channels
        # caches are channels-last, (Hc, Wc, C): a gathered position is one contiguous row
        self.cond = None
        if cond_codes is not None:
            self.cond = prior.cond_canvas(prior.condition(cond_codes[None]))[0].permute(1, 2, 0).contiguous()
        # layer l is defined where its whole input window lies on the canvas: offset off_l
        self.offsets = [prior.first.rows_above + b for b in range(len(prior.blocks) + 1)]
        self.acts = [torch.zeros(self.hc, self.wc, c) for _ in self.offsets]
        self.first = _tap_tables(prior)
        self.blocks = [(_flat(b.conv), _window(b.conv), _flat1x1(b.cond) if b.cond is not None else None,
                        _flat1x1(b.out)) for b in prior.blocks]
        self.head = [_flat1x1(m) for m in prior.head if isinstance(m, torch.nn.Conv2d)]  # each after a ReLU

    def run(self, step: Step) -> torch.Tensor:
        r, first_reach = self.r, self.prior.first.rows_above
        for ys, xs in wavefronts(self.hc, self.wc, first_reach + 1):
            for layer, off in enumerate(self.offsets):
                keep = (ys >= off) & (xs >= off) & (xs < self.wc - off)
                if keep.any():
                    self._layer(layer, torch.from_numpy(ys[keep]), torch.from_numpy(xs[keep]))
            emit = (ys >= r) & (xs >= r) & (xs < self.wc - r)
            if not emit.any():
                continue
            y, x = torch.from_numpy(ys[emit]), torch.from_numpy(xs[emit])
            h = self.acts[-1][y, x]
            for w, b in self.head:
                h = F.linear(torch.relu(h), w, b)
            probs = torch.softmax(h, dim=1).numpy()
            symbols = torch.from_numpy(np.asarray(step(probs, ys[emit] - r, xs[emit] - r), dtype=np.int64))
            self.canvas[y, x] = symbols
        return self.canvas[r:, r:-r].clone()

    def _layer(self, layer: int, y: torch.Tensor, x: torch.Tensor) -> None:
        if layer == 0:
            tables, taps, dy, dx, bias = self.first
            codes = self.canvas[y.view(-1, 1) + dy, x.view(-1, 1) + dx]  # (n, taps)
            a = tables[taps, codes].sum(1) + bias
        else:
            (w, b), window, cond, (wo, bo) = self.blocks[layer - 1]
            below = self.acts[layer - 1]
            a = F.linear(_patches(below, y, x, window), w, b)
            if cond is not None:
                a = a + F.linear(self.cond[y, x], *cond)
            t, s = a.chunk(2, 1)
            a = below[y, x] + F.linear(torch.tanh(t) * torch.sigmoid(s), wo, bo)
        self.acts[layer][y, x] = a


def _flat(conv: MaskedConv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A masked conv's weight as a matrix over flattened (rows, cols, C) patches."""
    return (conv.weight * conv.mask).permute(0, 2, 3, 1).flatten(1), conv.bias


def _tap_tables(prior: PixelCNN):
    """The first layer as lookups: embedding then masked conv is, per unmasked tap, a fixed
    (codes, C) table, so a position's first activation is a sum of one row per tap."""
    conv = prior.first
    w = conv.weight * conv.mask
    taps = conv.mask[0, 0].nonzero()  # (taps, 2): rows and columns of the unmasked taps
    tables = torch.stack([prior.embed.weight @ w[:, :, i, j].t() for i, j in taps.tolist()])
    return tables, torch.arange(len(taps)), taps[:, 0] - conv.rows_above, taps[:, 1] - conv.cols_each_side, conv.bias


def _flat1x1(conv: torch.nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    return conv.weight.flatten(1), conv.bias


def _window(conv: MaskedConv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column offsets of a masked conv's input window around its output position."""
    return (torch.arange(-conv.rows_above, 1).view(1, -1, 1),
            torch.arange(-conv.cols_each_side, conv.cols_each_side + 1).view(1, 1, -1))


def _patches(act: torch.Tensor, y: torch.Tensor, x: torch.Tensor, window) -> torch.Tensor:
    """(n, rows*cols*C) windows of act (H, W, C) ending at rows y, centred on columns x."""
    dy, dx = window
    return act[y.view(-1, 1, 1) + dy, x.view(-1, 1, 1) + dx].flatten(1)  # (n, rows, cols, C) flattened

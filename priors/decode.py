"""The step-by-step schedule that turns a prior into probability rows, one wavefront at a time.

Position (i, j) depends on the codes within `reach` rows above it and `reach` columns either
side, and on the codes left of it in its row. With k = reach + 1, every position on the line
j + k*i = t has all of those decoded before step t, so the positions of one line are decoded
together: the map takes W + k*(H-1) steps instead of H*W.

Encoder and decoder both call `run`, and differ only in `step`: the encoder codes the known
symbols, the decoder decodes them. Both fill the canvas in the same order and evaluate the same
windows in the same batches, so the float logits are bit-identical at the two ends (a batched
shortcut in the encoder alone would change them; see ../shared/NOTES.md). They run on one
thread whatever torch is set to: with more threads the same convolutions round differently
(measured: 7e-10 apart), and one flipped probability derails the rest of a range-coded stream.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch

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
        return _run(prior, height, width, step, cond_codes)


def _run(prior: PixelCNN, height: int, width: int, step: Step, cond_codes: torch.Tensor | None) -> torch.Tensor:
    r = prior.cfg.reach
    canvas = prior.canvas(torch.full((1, height, width), prior.out_token, dtype=torch.long))[0]
    cond = None
    if cond_codes is not None:
        cond = prior.cond_canvas(prior.condition(cond_codes[None]))[0]
    dr = torch.arange(r + 1).view(1, -1, 1)
    dc = torch.arange(2 * r + 1).view(1, 1, -1)
    for i, j in wavefronts(height, width, r + 1):
        ti, tj = torch.from_numpy(i).view(-1, 1, 1), torch.from_numpy(j).view(-1, 1, 1)
        rows, cols = ti + dr, tj + dc  # window of map position (i, j) on the canvas
        window = canvas[rows, cols]
        cond_w = cond[:, rows, cols].transpose(0, 1) if cond is not None else None
        logits = prior(window, cond_w)[:, :, 0, 0]
        probs = torch.softmax(logits, dim=1).numpy()
        symbols = step(probs, i, j)
        canvas[i + r, j + r] = torch.from_numpy(np.asarray(symbols, dtype=np.int64))
    return canvas[r:, r:-r].clone()

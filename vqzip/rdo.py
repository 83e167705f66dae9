"""Rate–distortion optimized encoding: each code chosen, in the decoder's order and under exactly
the probabilities the decoder will compute, among the nearest few codebook entries, to minimize

    ‖r − e_c‖² + λ · (−log2 p(c))          r: what this map's stage is to quantize

(entropy-constrained VQ, Chou, Lookabaugh & Gray 1989, made causal). The encoder runs the
decoder's own wavefront walk (`vqzip.priors.decode.walk`) with a step that picks the code and codes it
at once, so the stream is exactly what the decoder will read, and a choice changes the
probabilities of every later code as it will at the decoder. Maps are chosen coarsest first; a
level's latent is computed from the codes chosen for the coarser levels, and each residual
stage from what the chosen earlier stages left. The decoder does not change; λ = 0 is the
nearest code everywhere.
"""
from __future__ import annotations

import numpy as np
import torch

from vqzip.priors.decode import one_thread, walk
from vqzip.coder import SymbolEncoder
from vqzip.models import features_of
from vqzip import tiles

CANDIDATES = 8  # nearest codes considered per position


@torch.no_grad()
def level_latent(net, padded: np.ndarray, level: int, coarser: list[torch.Tensor], parts: list[tiles.Tile]) -> torch.Tensor:
    """The latent of `level` over the whole padded image (D, h, w), computed tile by tile
    (`parts`, in image pixels) from the chosen codes of the coarser levels."""
    stride = next(m.stride for m in net.maps if m.level == level)

    def latent_of(t: tiles.Tile):
        feats = features_of(net, padded[t.a : t.b, t.c : t.d])
        crop = [c[None, t.a // m.stride : t.b // m.stride, t.c // m.stride : t.d // m.stride] for c, m in zip(coarser, net.maps)]
        return net.latent(level, feats, crop)[0, :, (t.y0 - t.a) // stride : (t.y1 - t.a) // stride,
                                              (t.x0 - t.c) // stride : (t.x1 - t.c) // stride]

    return tiles.join(tiles.per_tile(latent_of, parts), parts, down=stride)


def nearest(residual: torch.Tensor, quantizer, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest codes of `quantizer` at every position of residual (D, h, w) and their
    squared distances: (h, w, k) int64 and float32, nearest first."""
    h, w = residual.shape[1:]
    with one_thread():  # the same candidates at any thread count
        best, idx = quantizer.nearest(residual[None], min(k, quantizer.num_codes))
    return idx.view(h, w, -1).numpy(), best.clamp_min(0).view(h, w, -1).numpy()


def choose_map(prior, conds: list[torch.Tensor], residual: torch.Tensor, quantizer,
               lam: float) -> tuple[torch.Tensor, bytes]:
    """Codes of `quantizer` for one map, chosen as the module says, and the range-coded stream of them."""
    cand, dist = nearest(residual, quantizer, CANDIDATES)
    enc = SymbolEncoder()

    def step(probs: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        c, d = cand[rows, cols], dist[rows, cols]
        p = np.take_along_axis(probs, c, 1) / probs.sum(1, keepdims=True)
        with np.errstate(divide="ignore"):
            cost = d - lam * np.log2(p)
        symbols = np.take_along_axis(c, cost.argmin(1)[:, None], 1)[:, 0]
        enc.encode(symbols, probs)
        return symbols

    with one_thread():
        codes = walk(prior, residual.shape[1], residual.shape[2], step, conds)
    return codes, enc.to_bytes()


def encode(model, padded: np.ndarray, lam: float, n_maps: int, parts: list[tiles.Tile]) -> tuple[list[torch.Tensor], list[bytes]]:
    """The first n_maps code maps of a padded image, chosen with multiplier lam, and their streams."""
    net, codes, streams = model.net, [], []
    for level, vq in enumerate(net.levels):
        if len(codes) >= n_maps:
            break
        r = level_latent(net, padded, level, codes, parts)
        for stage in vq.stages:
            if len(codes) >= n_maps:
                break
            k = len(codes)
            c, s = choose_map(model.priors[k], [codes[j] for j in net.maps[k].conds], r, stage, lam)
            codes.append(c)
            streams.append(s)
            r = r - stage.lookup(c[None])[0]
    return codes, streams

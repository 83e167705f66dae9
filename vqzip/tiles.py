"""Running the network over an image's tiles: deterministically, in parallel, in bounded memory.

The VQ-VAE is fully convolutional. It runs over tiles of at most TILE (rows, columns) image
pixels, each read with MARGIN pixels of context on every side: more than its encoder's (~80 px)
and decoder's (~30 px) receptive fields, so tiles join without seams, and an image of any size
needs a few tiles' memory, not its own (a whole-width stripe of a 40 MP image took 1.7 GB).

The decoder alone runs over smaller tiles (DECODE_TILE, DECODE_MARGIN), so that an image of
Kodak's size is two or more of them and both cores work on it (one tile is one thread): its
receptive field is smaller (a code changes the decoder's output at most 27 px beyond its own
pixels in every shipped model; tests/test_shipped.py checks it is within DECODE_MARGIN), so the
pixels are those of one whole-image pass.
"""
from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from vqzip.runtime import one_thread, threads

TILE = (512, 1024)
MARGIN = 128
DECODE_TILE = (256, 1024)
DECODE_MARGIN = 32


@dataclass(frozen=True)
class Tile:
    """The part [y0, y1) x [x0, x1) a tile gives, and the context [a, b) x [c, d) it reads."""

    y0: int
    y1: int
    x0: int
    x1: int
    a: int
    b: int
    c: int
    d: int

    def part(self, up: int = 1, down: int = 1) -> tuple[slice, slice]:
        """Rows and columns of the tile's part, in a plane up / down times as fine as the tiles' unit."""
        return slice(self.y0 * up // down, self.y1 * up // down), slice(self.x0 * up // down, self.x1 * up // down)

    def context(self, up: int = 1, down: int = 1) -> tuple[slice, slice]:
        """Rows and columns of the context the tile reads, in the same units."""
        return slice(self.a * up // down, self.b * up // down), slice(self.c * up // down, self.d * up // down)

    def inner(self, up: int = 1, down: int = 1) -> tuple[slice, slice]:
        """Rows and columns of the tile's part within its context, in the same units."""
        return (slice((self.y0 - self.a) * up // down, (self.y1 - self.a) * up // down),
                slice((self.x0 - self.c) * up // down, (self.x1 - self.c) * up // down))


def tiles(rows: int, cols: int, size: tuple[int, int] = TILE, margin: int = MARGIN) -> list[Tile]:
    """The tiles of a rows x cols plane, row by row (every measure in one unit: pixels, or codes)."""
    if min(size) < 1 or margin < 0:
        raise ValueError(f"tiles of {size} with a margin of {margin}")
    return [Tile(y0, min(y0 + size[0], rows), x0, min(x0 + size[1], cols), max(0, y0 - margin),
                 min(rows, y0 + size[0] + margin), max(0, x0 - margin), min(cols, x0 + size[1] + margin))
            for y0 in range(0, rows, size[0]) for x0 in range(0, cols, size[1])]


def per_tile(fn, parts: list[Tile], at_once: int | None = None) -> list:
    """[fn(t) for t in parts], each on one thread of the network's engine (ONNX Runtime's
    sessions run on one; torch is held to one), as many at once as the process's thread count
    (`vqzip.runtime.threads`; at most `at_once`: each tile's work takes memory).
    The network's results then never depend on the thread count: oneDNN may sum in another
    order with more threads (vqz-base's output layer, a transposed convolution to 3 channels,
    did: pixels one level apart at 1 and 2 threads). Tiles in parallel also keep a busy core
    from stalling the others, as OpenMP's parallel regions would. Each tile runs in a copy of
    the caller's context (`vqzip.runtime.coding`: the image it belongs to)."""
    n = min(threads(), at_once or len(parts))
    with one_thread():
        if n == 1 or len(parts) < 2:
            return [fn(t) for t in parts]
        caller = contextvars.copy_context()
        with ThreadPoolExecutor(min(n, len(parts))) as pool:  # ORT's runs and torch's ops release the GIL
            return list(pool.map(lambda t: caller.copy().run(fn, t), parts))


def join(blocks: list[np.ndarray], parts: list[Tile], up: int = 1, down: int = 1) -> np.ndarray:
    """Blocks (..., h, w), one per tile, placed at their tile's part scaled by up / down (for
    maps finer or coarser than the tiles' unit) -> one array (..., H, W)."""
    last = parts[-1]
    out = np.empty((*blocks[0].shape[:-2], last.y1 * up // down, last.x1 * up // down), blocks[0].dtype)
    for blk, t in zip(blocks, parts):
        out[(..., *t.part(up, down))] = blk
    return out

"""Skipping a map in blocks: where the coarser maps already do well enough, a file codes none of a
skippable map's codes (`MapSpec.skippable`: vqz-l3's fine map), and the decoder's vectors of it
are zero there (the decode of the maps before it, locally).

vqz-l3's fine latent is all or nothing otherwise: on the validation split, two maps cost 0.39 bpp
and three at least 1.22 whatever the RDO multiplier, so the rates between were reached only by
shrinking the image. Skipping spends fine bits only where they buy the most: the encoder codes
the skippable map once, measures per block of BLOCK x BLOCK of its positions (8 x 8 pixels at
vqz-l3's stride 2) the squared error its codes save in the decoded pixels and the bits they cost,
and keeps the blocks that save more than `mu` per bit (`keep_blocks`). The decoder was not
trained for it and needs no training: with half the blocks skipped at random, six validation
images decoded within -0.1% to -6.7% of the error expected from their two- and three-map
decodes, block by block.

In the code map, a skipped position holds the OUT token (the prior's num_codes), which the
priors read as they read the canvas's margins; it is never coded. The block flags go first in
the skippable map's stream (`encode`, `decode`), and the file says so with the header
extension TAG_FINE_SKIP (`pack`, `unpack`).
"""
from __future__ import annotations

import struct

import numpy as np

from vqzip.coder import SymbolDecoder, SymbolEncoder

BLOCK = 4  # positions of the skippable map per block side: 8 x 8 pixels at stride 2
_VALUE = struct.Struct("<Bf")  # the extension: block side, and the encoder's mu (for the record)
_CONTEXTS = 5  # kept blocks among above-left, above and above-right (0..3), or the first row (4)


def block_sums(a: np.ndarray, side: int) -> np.ndarray:
    """Sums of an (H, W) array over blocks of side x side, the last ones short -> (ceil H/side, ceil W/side)."""
    bh, bw = -(-a.shape[0] // side), -(-a.shape[1] // side)
    a = np.pad(a, ((0, bh * side - a.shape[0]), (0, bw * side - a.shape[1])))
    return a.reshape(bh, side, bw, side).sum((1, 3))


def keep_blocks(saved: np.ndarray, bits: np.ndarray, mu: float) -> np.ndarray:
    """Blocks whose codes save more squared error (summed over pixels and channels) than
    mu per bit they cost: (bh, bw) bool."""
    return saved > mu * bits


def positions(keep: np.ndarray, shape: tuple[int, int], block: int = BLOCK) -> np.ndarray:
    """Block flags (bh, bw) -> the skippable map's positions (shape) they cover."""
    return keep.repeat(block, 0).repeat(block, 1)[: shape[0], : shape[1]]


def _rows(n_rows: int, n_cols: int, code) -> np.ndarray:
    """The flags row by row, each row under adaptive counts (integers, the same at both ends)
    per context from the row above; code(row's probability rows, row index) gives the row's
    flags (coding known ones, or decoding)."""
    counts = np.ones((_CONTEXTS, 2), np.float32)
    out = np.zeros((n_rows, n_cols), bool)
    for i in range(n_rows):
        if i == 0:
            ctx = np.full(n_cols, _CONTEXTS - 1)
        else:
            above = np.pad(out[i - 1].astype(np.int64), 1)
            ctx = above[:-2] + above[1:-1] + above[2:]
        out[i] = code(counts[ctx], i)
        np.add.at(counts, (ctx, out[i].astype(np.int64)), 1)
    return out


def encode(enc: SymbolEncoder, keep: np.ndarray) -> None:
    """Code the block flags (bh, bw) with enc, before the map's codes."""
    def code(probs, i):
        enc.encode(keep[i].astype(np.int32), probs)
        return keep[i]

    _rows(*keep.shape, code)


def decode(dec: SymbolDecoder, n_rows: int, n_cols: int) -> np.ndarray:
    """The block flags (n_rows, n_cols) from the front of a stream."""
    return _rows(n_rows, n_cols, lambda probs, i: dec.decode(probs).astype(bool))


def blocks_of(shape: tuple[int, int], block: int = BLOCK) -> tuple[int, int]:
    """(rows, columns) of blocks over a skippable map of this shape."""
    return -(-shape[0] // block), -(-shape[1] // block)


def pack(mu: float, block: int = BLOCK) -> bytes:
    """The extension's value."""
    return _VALUE.pack(block, mu)


def unpack(value: bytes) -> tuple[int, float]:
    """(block side, mu) from the extension's value; ValueError if it is not one."""
    if len(value) != _VALUE.size or value[0] == 0:
        raise ValueError(f"invalid fine-skip extension {value.hex() or '(empty)'}")
    return _VALUE.unpack(value)

"""Colour offsets: a coarse correction of the decoded image's local mean colour, coded in the file.

    encoder: original - decoded ─mean per BLOCK x BLOCK block─► integer offsets (small ones 0)
    decoder: decoded + offsets, bilinear between block centres, in integer arithmetic

A VQ decoder rebuilds colours from finite codebooks: flat and saturated colours come back tens
of levels off (vqz-base decoded a 1x1 (200, 30, 90) as (149, 93, 63)) and photos lose some
chroma. Training on flat colours narrowed it (run C of issue 11: 8x8 flat colours 37 -> 14
levels of mean error) but cost 18.6% rate on photos at the same budget and still missed by far.
So the encoder, which can decode what it coded, measures what the decoder gets wrong on
average per block and sends it: a flat image comes back within rounding, whatever the model;
a photo's offsets are mostly zero and cost a few dozen bytes; a file that needs none has none.
The interpolation is integer, so every machine adds the same offsets.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from vqzip import metrics

BLOCK = 64  # image pixels per block side; smaller for small images (`block_for`)
SMALL = 128  # images under this on their longer side always take their offsets
THRESHOLD = 2  # offsets smaller than this (levels) are not worth their bits: sent as 0
# Offsets are sent only if they gain at least this many dB of PSNR per bit per pixel they cost:
# about the codec's own slope between levels (vqz-base, validation split: 10.5 dB per bpp from
# quality 1 to 4), so they are never a worse buy than a higher level.
SLOPE_DB_PER_BPP = 10.0
ROUNDS = 2  # the second measures what the interpolated first left
_HEAD = struct.Struct("<B")  # log2 of the block side


@dataclass(frozen=True)
class Offsets:
    """An image's offsets: (gh, gw, 3) int16 levels, one per block of block x block pixels."""

    grid: np.ndarray
    block: int


def block_for(width: int, height: int) -> int:
    """The block side for an image: BLOCK, or for a smaller one an eighth of its longer side
    (a power of 2, down to 1 pixel), so that an icon gets an 8x8 grid of offsets and a tiny
    image one offset per pixel."""
    side = max(width, height)
    return BLOCK if side >= 8 * BLOCK else 1 << max(0, (side // 8).bit_length() - 1)


def measure(original: np.ndarray, decoded: np.ndarray) -> Offsets | None:
    """(H, W, 3) uint8 original and decoded -> their offsets, or None if they are all 0 or not
    worth their bits (SLOPE_DB_PER_BPP; a small image, whose file is mostly header anyway,
    always takes them). The block side is `block_for` the image's size."""
    block = block_for(original.shape[1], original.shape[0])
    gh, gw = -(-original.shape[0] // block), -(-original.shape[1] // block)
    grid = np.zeros((gh, gw, 3), np.int64)
    for _ in range(ROUNDS):
        grid += np.rint(_block_means(original, apply(decoded, Offsets(grid, block)), block)).astype(np.int64)
        grid = np.clip(grid, -255, 255)
    grid[np.abs(grid) < THRESHOLD] = 0
    if not grid.any():
        return None
    offsets = Offsets(grid.astype(np.int16), block)
    before, after = metrics.sse(original, decoded), metrics.sse(original, apply(decoded, offsets))
    gain_db = np.inf if after == 0 else 10 * np.log10(before / after)
    bpp = 8 * len(pack(offsets)) / (original.shape[0] * original.shape[1])
    small = max(original.shape[:2]) < SMALL
    return offsets if small or gain_db >= SLOPE_DB_PER_BPP * bpp else None


def apply(decoded: np.ndarray, offsets: Offsets) -> np.ndarray:
    """decoded (H, W, 3) uint8 plus offsets, interpolated bilinearly between block centres
    (clamped at the edges) with integer weights and rounding -> uint8."""
    h, w = decoded.shape[:2]
    block, o = offsets.block, offsets.grid.astype(np.int64)
    out = np.empty_like(decoded)
    y0, y1, wy = _axis(h, o.shape[0], block)
    x0, x1, wx = _axis(w, o.shape[1], block)
    rows = (2 * block - wx)[None, :, None] * o[:, x0] + wx[None, :, None] * o[:, x1]  # (gh, W, 3), scale 2 block
    den = (2 * block) ** 2
    for a in range(0, h, 256):  # a band of rows at a time: bounded memory for large images
        b = min(a + 256, h)
        num = (2 * block - wy[a:b])[:, None, None] * rows[y0[a:b]] + wy[a:b, None, None] * rows[y1[a:b]]
        out[a:b] = np.clip(decoded[a:b].astype(np.int64) + (num + den // 2) // den, 0, 255)
    return out


def pack(offsets: Offsets) -> bytes:
    """Offsets -> the bytes of the file's extension: the block side's log2, then zlib of the grid
    as little-endian int16."""
    return _HEAD.pack(offsets.block.bit_length() - 1) + zlib.compress(offsets.grid.astype("<i2").tobytes(), 9)


def unpack(value: bytes, width: int, height: int) -> Offsets:
    """The extension's bytes -> the offsets of an image of width x height; ValueError if they do
    not fit. The block side is the file's (a power of 2 up to BLOCK), whatever `block_for` would
    choose now."""
    if len(value) < _HEAD.size or not 1 << value[0] <= BLOCK:
        raise ValueError("colour offsets' block side is not a power of 2 up to 64 pixels")
    block = 1 << value[0]
    gh, gw = -(-height // block), -(-width // block)
    d = zlib.decompressobj()
    try:
        raw = d.decompress(value[_HEAD.size :], 2 * gh * gw * 3 + 1)
    except zlib.error:
        raw = b""
    if len(raw) != 2 * gh * gw * 3 or not d.eof or d.unused_data:
        raise ValueError(f"colour offsets do not fit a {width}x{height} image")
    grid = np.frombuffer(raw, "<i2").reshape(gh, gw, 3)
    if np.abs(grid).max() > 255:
        raise ValueError("colour offsets beyond 255 levels")
    return Offsets(grid, block)


def _block_means(original: np.ndarray, decoded: np.ndarray, block: int) -> np.ndarray:
    """Mean of original - decoded over each block (partial blocks at the edges), a band of blocks at a time."""
    h, w = original.shape[:2]
    gh, gw = -(-h // block), -(-w // block)
    out = np.empty((gh, gw, 3))
    cols = np.minimum(block, w - block * np.arange(gw))  # pixels per block column
    for r in range(gh):
        band = slice(r * block, (r + 1) * block)
        err = original[band].astype(np.int32) - decoded[band].astype(np.int32)
        err = np.pad(err, ((0, 0), (0, gw * block - w), (0, 0)))
        out[r] = err.reshape(len(err), gw, block, 3).sum((0, 2)) / (len(err) * cols)[:, None]
    return out


def _axis(n: int, g: int, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel along an axis of n: the blocks below and above its position among the block
    centres, and the weight of the one above, in units of 1/(2 block)."""
    pos = 2 * np.arange(n, dtype=np.int64) + 1 - block  # twice the distance from the first centre
    i0 = np.clip(pos // (2 * block), 0, g - 1)
    i1 = np.minimum(i0 + 1, g - 1)
    return i0, i1, np.clip(pos - 2 * block * i0, 0, 2 * block)

"""Flat blocks: blocks of the image that are one colour, give or take FLAT_RANGE levels, sent as
that colour.

    encoder: blocks whose original spans at most FLAT_RANGE levels per channel and whose
             decoded pixels are further from it than its mean colour is -> (mask, colours)
    decoder: those blocks painted their colour, after the colour offsets

A VQ decoder draws every block from finite codebooks, and on a flat saturated colour it draws
texture: vqz-base decoded a 64x64 pure blue with a standard deviation of 14 levels per channel
(a mean error of 9.8). Colour offsets, a mean per block, cannot remove texture, and training on
flat crops cost photos 18.6% rate (issue 11, run C). Flat areas are common (graphics,
screenshots, clipped skies) and cheap to send exactly: a bit per block and a colour per flat one.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from vqzip import colour_offsets, metrics

BLOCK = 16  # image pixels per block side; smaller for small images (`block_for`)
FLAT_RANGE = 2  # a block is flat if each channel spans at most this many levels: every pixel within 2 of its colour
SMALL = colour_offsets.SMALL  # images under this on their longer side always take their flat blocks
_HEAD = struct.Struct("<B")  # log2 of the block side


@dataclass(frozen=True)
class FlatBlocks:
    """An image's flat blocks: (gh, gw) bool mask, and (n, 3) uint8 colours of the n set blocks in
    row-major order, over blocks of block x block pixels (partial at the right and bottom)."""

    mask: np.ndarray
    colours: np.ndarray
    block: int


def block_for(width: int, height: int) -> int:
    """BLOCK, or the colour offsets' block side where that is smaller (small images)."""
    return min(BLOCK, colour_offsets.block_for(width, height))


def measure(original: np.ndarray, decoded: np.ndarray) -> FlatBlocks | None:
    """(H, W, 3) uint8 original and what the decoder will show -> the flat blocks worth sending,
    or None. A flat block is sent if its colour is closer to the original than the decoded
    block is, and all of them together only if they gain at least the colour offsets' dB of
    PSNR per bit per pixel they cost (a small image always takes them)."""
    h, w = original.shape[:2]
    block = block_for(w, h)
    gh, gw = -(-h // block), -(-w // block)
    mask = np.zeros((gh, gw), bool)
    colours = np.zeros((gh, gw, 3), np.uint8)
    before = after = 0
    for r in range(gh):
        band = slice(r * block, (r + 1) * block)
        o, d = (_blocks(x[band], block, gw) for x in (original, decoded))  # (rows, gw, block, 3), NaN padded
        lo, hi = np.nanmin(o, (0, 2)), np.nanmax(o, (0, 2))
        colour = np.rint(np.nanmean(o, (0, 2)))
        sse_flat = np.nansum((o - colour[None, :, None]) ** 2, (0, 2, 3))
        sse_dec = np.nansum((o - d) ** 2, (0, 2, 3))
        mask[r] = ((hi - lo) <= FLAT_RANGE).all(1) & (sse_flat < sse_dec)
        colours[r] = colour.astype(np.uint8)
        before += sse_dec[mask[r]].sum()
        after += sse_flat[mask[r]].sum()
    if not mask.any():
        return None
    flat = FlatBlocks(mask, colours[mask], block)
    total = metrics.sse(original, decoded)
    rest = total - before + after
    gain_db = np.inf if rest == 0 else 10 * np.log10(total / rest)
    bpp = 8 * len(pack(flat)) / (h * w)
    small = max(h, w) < SMALL
    return flat if small or gain_db >= colour_offsets.SLOPE_DB_PER_BPP * bpp else None


def apply(decoded: np.ndarray, flat: FlatBlocks) -> np.ndarray:
    """decoded (H, W, 3) uint8 with the flat blocks painted their colour -> a new array."""
    out = decoded.copy()
    block = flat.block
    grid = np.zeros(flat.mask.shape + (3,), np.uint8)
    grid[flat.mask] = flat.colours
    for r in np.flatnonzero(flat.mask.any(1)):  # a band of blocks at a time: bounded memory
        band = slice(r * block, (r + 1) * block)
        rows = out[band]
        cols = np.repeat(flat.mask[r], block)[: rows.shape[1]]
        rows[:, cols] = np.repeat(grid[r], block, 0)[: rows.shape[1]][cols]
    return out


def pack(flat: FlatBlocks) -> bytes:
    """Flat blocks -> the bytes of the file's extension: the block side's log2, then zlib of the
    mask's bits (row-major, numpy's packbits) followed by the set blocks' RGB colours."""
    raw = np.packbits(flat.mask).tobytes() + flat.colours.astype(np.uint8).tobytes()
    return _HEAD.pack(flat.block.bit_length() - 1) + zlib.compress(raw, 9)


def unpack(value: bytes, width: int, height: int) -> FlatBlocks:
    """The extension's bytes -> the flat blocks of an image of width x height; ValueError if they
    do not fit. The block side is the file's (a power of 2 up to BLOCK)."""
    if len(value) < _HEAD.size or not 1 << value[0] <= BLOCK:
        raise ValueError(f"flat blocks' side is not a power of 2 up to {BLOCK} pixels")
    block = 1 << value[0]
    gh, gw = -(-height // block), -(-width // block)
    n_mask = -(-gh * gw // 8)
    d = zlib.decompressobj()
    try:
        raw = d.decompress(value[_HEAD.size :], n_mask + 3 * gh * gw + 1)
    except zlib.error:
        raw = b""
    mask = np.unpackbits(np.frombuffer(raw[:n_mask], np.uint8), count=gh * gw).astype(bool) if len(raw) >= n_mask else None
    if mask is None or len(raw) != n_mask + 3 * int(mask.sum()) or not d.eof or d.unused_data:
        raise ValueError(f"flat blocks do not fit a {width}x{height} image")
    return FlatBlocks(mask.reshape(gh, gw), np.frombuffer(raw[n_mask:], np.uint8).reshape(-1, 3), block)


def _blocks(band: np.ndarray, block: int, gw: int) -> np.ndarray:
    """A band of up to `block` rows (rows, W, 3) -> (rows, gw, block, 3) float64, NaN past the
    right edge."""
    x = band.astype(np.float64)
    x = np.pad(x, ((0, 0), (0, gw * block - x.shape[1]), (0, 0)), constant_values=np.nan)
    return x.reshape(len(x), gw, block, 3)

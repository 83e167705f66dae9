"""Probability rows for coding a map, one wavefront at a time: the decoder's walk, and the same
walk over known codes for the encoder.

Every layer of the prior is computed once per canvas position and cached (in the manner of
Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models"): a
layer's activation at (y, x) needs the layer below at (y-1, x-1..x+1), (y, x-1) and (y, x),
and the first layer needs codes within first_kernel // 2 rows above and columns aside. With
k = first_kernel // 2 + 1, everything a position needs lies on earlier lines x + k*y, so the
walk computes the positions of one line together, layer by layer, through small matrix
products: Wc + k*(Hc-1) steps for a canvas of Hc x Wc, each a few positions' worth of work.
Its caches keep only the last few wavefronts, so its memory grows with the map's height, not
its area.

The encoder knows every code, yet walks too: computing whole layers at once was no faster
(0.74-0.87 s against 0.79-0.92 s for a validation image's two maps) and slower on larger maps
(4.1 s against 2.7 s for a 256x384 map), with caches of the map's size. Every probability is
computed in exact integer arithmetic (`vqzip.priors.fixedpoint`), so the two ends agree bit for
bit on any machine and any number of threads.

Independent tiles: a prior whose model sets `tile` (the tensor `walk.tile`: rows, columns; 0
for the whole height or width) has its map cut into tiles of that size (the edge ones padded
below and right with OUT, never coded), each walked as if it were a map of its own (OUT around
it, conditioning features zero off it) and all of them on the same wavefront steps, so a step
does the same few operations on many times the positions: Wt + k*(Ht - 1) steps for tiles of
canvas Ht x Wt instead of Wc + k*(Hc - 1) for the map, whatever the map's size. A step's
positions go row by row, and within a row tile by tile (row-major over the tiles); a map of more
than TILES tiles is walked TILES tiles at a time, group after group, which bounds the caches.
The codes at a tile's top and left edges lose their context: measured with L3's float priors
on six training images' maps, bands of 32 rows cost 0.33%, 0.34% and 0.46% more bits on the
top, bottom and fine maps, tiles of 32x64 codes 0.33%, 0.53% and 0.68%.

A context-free prior (a 1x1 first kernel: no code reaches it) has nothing to wait for: its map
is computed in row bands, every layer at once over the same canvas, and coded in row-major order
(`tile` does not apply to it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

if TYPE_CHECKING:  # fixedpoint's prior walks through this module
    from vqzip.priors.fixedpoint import FixedPointPrior

# step(probs (n, K) float32, rows (n,), cols (n,)) -> the n symbols at those positions
Step = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

RING = 8  # wavefronts the walk's caches keep (more if a prior's slope k needs: k + 2)


def wavefronts(height: int, width: int, k: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Rows and columns of each step's positions, in step order; every position once."""
    for t in range(width + k * (height - 1)):
        i = np.arange(max(0, -(-(t - width + 1) // k)), min(height - 1, t // k) + 1)
        yield i, t - k * i


def walk(prior: FixedPointPrior, height: int, width: int, step: Step, conds=(), skip=None) -> np.ndarray:
    """Decode a (height, width) map in wavefront order (a context-free prior's: row bands, in
    raster order; a tiled prior's: tile by tile, as the module says), calling step with each
    batch of positions.

    conds: the maps the prior is conditioned on, as in its config's `conds`, each (height/f, width/f)
    (integer arrays, or CPU torch tensors).
    skip: (height, width) bool, positions that hold OUT and are never coded (`vqzip.fine_skip`):
    no probabilities are computed there, and step never sees them.
    Returns the (height, width) int64 map of the symbols step returned (OUT where skipped)."""
    out = np.full((height, width), prior.cfg.num_codes, dtype=np.int64)
    conds = [np.asarray(c) for c in conds]
    skip = None if skip is None else np.asarray(skip, dtype=bool)
    if prior.context_free:
        for _, symbols, rows, cols in _bands(prior, height, width, step, conds, skip):
            out[rows, cols] = symbols
        return out
    for c in _canvases(prior, out, conds, skip):
        for _ in _steps(c, step):
            pass
        c.put_codes(out)
    return out


def teacher_forced(prior: FixedPointPrior, codes, conds=(), batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(probability rows (n, K), symbols (n,)) for every code of the map `codes` (H, W) (an
    integer array, or a CPU torch tensor), in the order `walk` decodes them, at most `batch` rows
    at a time: the walk over known codes (OUT codes are skipped positions, as `walk`'s skip)."""
    known = np.asarray(codes)
    conds = [np.asarray(c) for c in conds]
    skip = known >= prior.cfg.num_codes
    skip = skip if skip.any() else None

    def step(p, rows, cols):
        return known[rows, cols]

    steps = ((p, s) for p, s, _, _ in _bands(prior, *known.shape, step, conds, skip)) if prior.context_free else \
        (out for c in _canvases(prior, known, conds, skip) for out in _steps(c, step))
    for probs, symbols in steps:
        for n in range(0, len(symbols), batch):
            yield probs[n : n + batch], symbols[n : n + batch]


BAND = 16384  # positions of a context-free map computed at once (at least BAND_ROWS rows)
BAND_ROWS = 8  # each band recomputes the rows above it that its blocks reach: keep that a small share


def _bands(prior: FixedPointPrior, height: int, width: int, step: Step, conds: list[np.ndarray],
           skip: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The schedule of a context-free prior: no position depends on another's code, so each band
    of rows has every layer computed at once, as `_Canvas` would compute it position by position
    (the same canvas, the same integers); yields (probability rows, symbols, map rows, map
    columns) in raster order."""
    r = prior.cfg.reach  # a 1x1 first kernel: the blocks' rows are all the reach
    wc = width + 2 * r
    dtype = np.int16 if prior.cond_bound < 1 << 15 else np.float32
    groups = [(f, feats) for feats, (f, _) in zip(prior.condition(list(conds), dtype=dtype), prior.cfg.groups)]
    for f, feats in groups:
        if (f * feats.shape[0], f * feats.shape[1]) != (height, width):
            raise ValueError(f"a conditioning map of {feats.shape[0]}x{feats.shape[1]} does not fit a {height}x{width} map at x{f}")
    h0 = prior.first(np.zeros((1, 0), dtype=np.int64))  # (1, C): the same at every canvas position
    taps = [(int(dy), int(dx)) for dy, dx in prior.block_taps]
    centre = taps.index((0, 0))
    rows_per = max(BAND_ROWS, BAND // max(width, 1))
    for y0 in range(0, height, rows_per):
        y1 = min(y0 + rows_per, height)
        # h covers canvas rows [top, y1 + r) and columns [left, wc - left); canvas = map + r
        top, left = y0, 0
        h = np.broadcast_to(h0, ((y1 + r - top) * wc, h0.shape[1])).reshape(y1 + r - top, wc, -1)
        for i in range(len(prior.blocks)):
            top, left = top + 1, left + 1
            n_rows, n_cols = y1 + r - top, wc - 2 * left
            parts = [h[1 + dy : 1 + dy + n_rows, 1 + dx : 1 + dx + n_cols] for dy, dx in taps]
            patches = np.concatenate(parts, 2).reshape(n_rows * n_cols, -1).astype(np.float32)
            ys, xs = np.arange(top, y1 + r) - r, np.arange(left, wc - left) - r
            on = ((ys >= 0)[:, None] & ((xs >= 0) & (xs < width))[None]).reshape(-1, 1)
            cond = [feats.reshape(-1, feats.shape[-1])[((ys.clip(min=0) // f)[:, None] * feats.shape[1]
                                                        + xs.clip(0, width - 1)[None] // f).reshape(-1)]
                    .astype(np.float32) * on for f, feats in groups]
            h = prior.block(i, patches, parts[centre].reshape(n_rows * n_cols, -1), cond).reshape(n_rows, n_cols, -1)
        h = h.reshape(-1, h.shape[-1])
        rows, cols = (a.ravel() for a in np.meshgrid(np.arange(y0, y1), np.arange(width), indexing="ij"))
        if skip is not None:
            on = ~skip[y0:y1].ravel()
            h, rows, cols = h[on], rows[on], cols[on]
        probs = prior.probabilities(h)
        symbols = np.asarray(step(probs, rows, cols), dtype=np.int64)
        yield probs, symbols, rows, cols


TILES = 64  # tiles walked together at most: bounds the caches (0.4 MB a tile for 64x64 tiles at 96 channels)
# Map columns whose conditioning features a walk holds at once beyond those a step reads, when
# its tiles lie in one column of tiles (bands of rows): the wavefront moves right, and a step reads
# about k * tile rows of columns (about 100 for bands of 32 rows). A 40 MP image's fine map held
# 400 MB of them whole. A walk whose steps read more than WINDOW / 2 columns (a map walked whole)
# holds the whole width: a window would be computed again every few steps.
WINDOW = 512


def _canvases(prior: FixedPointPrior, codes: np.ndarray, conds: list[np.ndarray], skip: np.ndarray | None = None
              ) -> Iterator["_Canvas"]:
    """The canvases of a map's walk, one per group of at most TILES tiles (a whole map is one
    tile), in order."""
    height, width = codes.shape
    if len(conds) != len(prior.cfg.conds):
        raise ValueError(f"this prior takes {len(prior.cfg.conds)} conditioning maps, not {len(conds)}")
    for f, idx in prior.cfg.groups:
        for i in idx:
            h, w = conds[i].shape
            if (f * h, f * w) != (height, width):
                raise ValueError(f"a conditioning map of {h}x{w} does not fit a {height}x{width} map at x{f}")
    th, tw = (t if 0 < t < n else n for t, n in zip(prior.tile, (height, width)))
    corners = [(y, x) for y in range(0, height, th) for x in range(0, width, tw)]
    for i in range(0, len(corners), TILES):
        yield _Canvas(prior, codes, corners[i : i + TILES], th, tw, list(conds), skip)


def _steps(c: "_Canvas", step: Step) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The walk: per wavefront step with positions on the map, step(probability rows, map rows,
    map columns) gives the symbols there, which later steps read; yields (probability rows,
    symbols). A layer's positions on a step are a run of rows (x = t - k*y within its columns),
    the same in every tile."""
    k, r, rows = c.k, c.r, c.rows
    tile_index = np.arange(c.tiles)
    codes = c.codes.reshape(-1)
    for t in range(c.wc + k * (c.hc - 1)):
        runs = [(max(off, (t - c.wc + off) // k + 1), min(c.hc - 1, (t - off) // k)) for off in c.offsets]
        first = runs[1][0]  # the blocks' runs lie within the first block's: its conditioning rows serve all
        conds = c.cond_rows(rows[first : runs[1][1] + 1], t) if runs[1][0] <= runs[1][1] else None
        for layer, (lo, hi) in enumerate(runs):
            if lo <= hi:
                c.step_layer(layer, t, lo, hi, conds and [g[(lo - first) * c.tiles : (hi - first + 1) * c.tiles] for g in conds])
        lo, hi = max(r, (t - c.wc + r) // k + 1), min(c.hc - 1, (t - r) // k)
        if lo <= hi:
            ys = rows[lo : hi + 1]
            at = ((ys * c.wc + t - k * ys)[:, None] * c.tiles + tile_index).reshape(-1)  # into codes
            h = c.acts[-1][c.base(t) + lo : c.base(t) + hi + 1].reshape(-1, c.acts[-1].shape[-1])
            map_rows, map_cols = ((ys - r)[:, None] + c.tops).reshape(-1), ((t - k * ys - r)[:, None] + c.lefts).reshape(-1)
            if c.padded or c.skip is not None:
                on = (map_rows < c.height) & (map_cols < c.width)  # the edge tiles' padding is never coded
                if c.skip is not None:
                    on &= ~c.skip[np.minimum(map_rows, c.height - 1), np.minimum(map_cols, c.width - 1)]
                if not on.any():
                    continue
                at, h, map_rows, map_cols = at[on], h[on], map_rows[on], map_cols[on]
            probs = c.prior.probabilities(h)
            symbols = np.asarray(step(probs, map_rows, map_cols), dtype=np.int64)
            codes[at] = symbols
            yield probs, symbols


class _Canvas:
    """Tiles of a map (th x tw codes at `corners`, the edge ones padded below and right with the
    OUT token), each padded with OUT on a canvas of its own, side by side in a last axis (codes
    (Hc * Wc, tiles), caches (rows, tiles, C)), so a step's rows of every tile are one slice; one
    activation cache per layer, and the conditioning features of the columns the wavefront is at
    (`_cover`).

    A cache holds int16 rows of C (|h| <= h_max < 2**15), one per position of the last `ring`
    wavefronts, at (t % ring) * Hc + y for wavefront t: a position's inputs lie at most k + 1
    wavefronts back, so the memory does not grow with the map's width, and the inputs of a step's
    run of rows are runs of rows too (slices, not gathers). Conditioning features stay at their
    own resolution and are read at (y // f, x // f) in map coordinates."""

    def __init__(self, prior: FixedPointPrior, codes: np.ndarray, corners: list[tuple[int, int]],
                 th: int, tw: int, conds: list[np.ndarray], skip: np.ndarray | None = None, ring: int = RING):
        """codes: the map (OUT where not known yet); conds: the conditioning maps; skip: the
        positions of the map never coded (`walk`)."""
        self.prior, self.r, self.cond_maps, self.skip = prior, prior.cfg.reach, conds, skip
        r = self.r
        self.height, self.width = codes.shape
        self.corners, self.th, self.tw, self.tiles = corners, th, tw, len(corners)
        self.tops, self.lefts = (np.array([c[i] for c in corners]) for i in (0, 1))
        self.padded = bool(((self.tops + th > self.height) | (self.lefts + tw > self.width)).any())
        # int32 (a 40 MP image's fine map is 10 M codes), OUT around each tile and where an edge tile runs off the map
        self.hc, self.wc = th + r, tw + 2 * r
        canvas = np.full((self.hc, self.wc, self.tiles), prior.cfg.num_codes, dtype=np.int32)
        for i, (y, x) in enumerate(corners):
            part = codes[y : y + th, x : x + tw]
            canvas[r : r + part.shape[0], r : r + part.shape[1], i] = part
        self.codes = canvas.reshape(-1, self.tiles)
        rows_above = int(-prior.taps[:, 0].min()) if len(prior.taps) else 0
        self.k = rows_above + 1
        self.ring = max(ring, self.k + 2)  # inputs lie up to k + 1 wavefronts back
        # layer l is defined where its whole input window lies on the canvas: offset off_l
        self.offsets = [rows_above + b for b in range(len(prior.blocks) + 1)]
        self.acts = [np.zeros((self.hc * self.ring, self.tiles, prior.cfg.channels), dtype=np.int16) for _ in self.offsets]
        self.taps = prior.taps[:, 0] * self.wc + prior.taps[:, 1]
        dy, dx = prior.block_taps[:, 0], prior.block_taps[:, 1]
        self.window_steps = [(int(a), int(a * self.k + b)) for a, b in zip(dy, dx)]  # (row, wavefront) offsets
        # a block's inputs at a step's positions, tap by tap (filled in place: no joining, no second cast)
        self.patches = np.empty((self.hc * self.tiles, len(self.window_steps) * prior.cfg.channels), dtype=np.float32)
        self.patch_taps = self.patches.reshape(self.hc, self.tiles, len(self.window_steps), prior.cfg.channels)
        self.rows = np.arange(self.hc)
        self.cond_dtype = np.int16 if prior.cond_bound < 1 << 15 else np.float32
        self.map_rows = (int(self.tops.min()), min(self.height, int(self.tops.max()) + th))  # the tiles' rows of the map
        # tiles side by side in columns each read their own columns, and steps of over WINDOW / 2
        # columns would move a window every few steps: both hold the whole width
        self.whole_width = bool((self.lefts != self.lefts[0]).any()) or self.k * self.hc > WINDOW // 2
        self.window, self.feats = (0, 0), []  # map columns [x0, x1) held; per group (first row, first column, features)
        self._cover(0, 0)

    def base(self, t: int) -> int:
        """The cache row of wavefront t's row 0."""
        return (t % self.ring) * self.hc

    def step_layer(self, layer: int, t: int, lo: int, hi: int, conds: list[np.ndarray] | None) -> None:
        """Compute layer `layer` on wavefront t at canvas rows lo..hi of every tile (conds: the
        conditioning features there, for a block)."""
        n = hi - lo + 1
        if layer == 0:
            ys = self.rows[lo : hi + 1]
            taps = self.codes[(ys * self.wc + t - self.k * ys)[:, None] + self.taps]  # (n, taps, tiles)
            h = self.prior.first(taps.transpose(0, 2, 1).reshape(n * self.tiles, -1))
        else:
            below = self.acts[layer - 1]
            for j, (dy, dt) in enumerate(self.window_steps):
                a = self.base(t + dt) + lo + dy
                self.patch_taps[:n, :, j] = below[a : a + n]
            centre = below[self.base(t) + lo : self.base(t) + hi + 1].reshape(n * self.tiles, -1)  # tap (0, 0)
            h = self.prior.block(layer - 1, self.patches[: n * self.tiles], centre, conds)
        self.acts[layer][self.base(t) + lo : self.base(t) + hi + 1] = h.reshape(n, self.tiles, -1)

    def cond_rows(self, ys: np.ndarray, t: int) -> list[np.ndarray]:
        """Each group's features (float32) at canvas rows ys of wavefront t in every tile, row by
        row: zero off the tile (so above and beside it) and off the map."""
        y, x = ys - self.r, t - self.k * ys - self.r
        on = ((y >= 0) & (x >= 0) & (x < self.wc - 2 * self.r))[:, None]
        y, x = y[:, None] + self.tops, x[:, None] + self.lefts  # map coordinates (rows, tiles)
        on = (on & (y < self.height) & (x < self.width)).reshape(-1)
        if on.any():
            cols = x.reshape(-1)[on]
            self._cover(int(cols.min()), int(cols.max()))
        out = []
        for (f, _), (r0, c0, feats) in zip(self.prior.cfg.groups, self.feats):
            at = (y // f - r0) * feats.shape[1] + x // f - c0
            rows = feats.reshape(-1, feats.shape[-1])[np.where(on, at.reshape(-1), 0)].astype(np.float32)
            rows[~on] = 0
            out.append(rows)
        return out

    def _cover(self, lo: int, hi: int) -> None:
        """Hold the conditioning features of the tiles' rows at map columns lo..hi, and WINDOW
        columns on (k before, where a growing wavefront's first column cycles), unless they are
        held (or the whole width, `whole_width`)."""
        if self.window[0] <= lo and hi < self.window[1]:
            return
        if self.whole_width:
            lo, hi = 0, self.width - 1
        lo, x1 = max(0, lo - self.k), min(self.width, hi + 1 + WINDOW)
        self.window, self.feats = (lo, x1), []
        (y0, y1), boxes = self.map_rows, []
        for f, _ in self.prior.cfg.groups:
            boxes.append((y0 // f, -(-y1 // f), lo // f, -(-x1 // f)))
        feats = self.prior.condition(self.cond_maps, dtype=self.cond_dtype, boxes=boxes)
        self.feats = [(b[0], b[2], fe) for b, fe in zip(boxes, feats)]

    def put_codes(self, out: np.ndarray) -> None:
        """Write the tiles' codes into their places in the map `out`."""
        tiles = self.codes.reshape(self.hc, self.wc, self.tiles).transpose(2, 0, 1)[:, self.r :, self.r : -self.r]
        for (y, x), codes in zip(self.corners, tiles):
            out[y : y + self.th, x : x + self.tw] = codes[: self.height - y, : self.width - x]

"""Rate–distortion optimized encoding: each code chosen, in the decoder's order and under exactly
the probabilities the decoder will compute, among the nearest few codebook entries, to minimize

    ‖r − e_c‖² + λ · (−log2 p(c))          r: what this map's stage is to quantize

(entropy-constrained VQ, Chou, Lookabaugh & Gray 1989, made causal). The encoder runs the
decoder's own walk (the prior's `walk`, `vqzip.priors.registry`) with a step that picks the code and codes it
at once, so the stream is exactly what the decoder will read, and a choice changes the
probabilities of every later code as it will at the decoder. Maps are chosen coarsest first; a
latent is computed from the codes chosen for the coarser latents, and each residual
stage from what the chosen earlier stages left, tile by tile, keeping only each position's
candidates (so memory does not hold a large image's latents). The decoder does not change;
λ = 0 is the nearest code everywhere.
"""
from __future__ import annotations

import numpy as np

from vqzip.runtime import one_thread
from vqzip.coder import SymbolEncoder
from vqzip import fine_skip, tiles
from vqzip.inference import features_of

CANDIDATES = 8  # nearest codes considered per position
# Images of at most this many tiles keep each tile's encoder features from one map to the next
# (about 100 MB a tile); larger ones compute them again per map, in bounded memory.
CACHED_TILES = 4
# A tile of vqz-l3's fine latent decodes the coarser latents over its context first (hundreds of MB);
# when the candidates held are large too (a 40 MP fine map's eight take 480 MB), two such tiles
# at once would pass 2 GB, so the tiles then run one at a time (the same results: one thread
# each), trading that phase's speed on large images for memory, however many cores there are.
CANDIDATE_BUDGET = 256 << 20


def candidates(net, padded, latent: int, stage: int, chosen: list[np.ndarray], parts: list[tiles.Tile],
               k: int = CANDIDATES, features: dict | None = None, store: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest codes of a latent's stage at every position, and their squared distances:
    (h, w, k) int16 and float32, nearest first and among equal distances the lower code first
    (`vqzip.inference.codebooks.least`; only the first `store` of them kept, if given: the same
    as those of the k). Computed tile by tile (`parts`, in image pixels
    of `padded`, a `vqzip.codec.EdgePadded` image or an array):
    the latent from the chosen codes of the coarser latents (`chosen`, in coding order),
    less the vectors of the stages before this one chosen so far; so the latent of a large
    image is never whole, only k candidates per position. `features`, if given, keeps each
    tile's encoder features for the next call (the same for every map)."""
    maps = [m for m in net.maps if m.latent == latent]
    stride, first = maps[0].stride, net.maps.index(maps[0])
    quantizer = net.quantizers[latent]
    k = min(k, maps[stage].num_codes)
    store = min(store or k, k)
    # Filled in place, tile by tile: a fine map of a 40 MP image has 10 M positions, whose
    # candidates take 480 MB, and joining per-tile blocks would hold them two more times.
    idx = np.empty((parts[-1].y1 // stride, parts[-1].x1 // stride, store), np.int16)
    dist = np.empty(idx.shape, np.float32)

    def near(t: tiles.Tile) -> None:
        feats = features.get(t) if features is not None else None
        if feats is None:
            feats = features_of(net, padded[t.context()])
            if features is not None:
                features[t] = feats  # tiles are distinct keys: the threads never share one
        crop = [c[t.context(down=m.stride)][None] for c, m in zip(chosen, net.maps)]
        rows, cols = t.inner(down=stride)
        z = net.latent(latent, feats, crop[:first])[:, :, rows, cols]
        earlier = [c[:, rows, cols] for c in crop[first : first + stage]]  # this latent's maps chosen so far
        d, i = quantizer.nearest(z, earlier, k)  # (positions, k), row-major
        part = t.part(down=stride)
        idx[part] = i[:, :store].astype(np.int16).reshape(*z.shape[2:], store)
        dist[part] = np.maximum(d[:, :store], 0).reshape(*z.shape[2:], store)

    tiles.per_tile(near, parts, 1 if idx.nbytes + dist.nbytes > CANDIDATE_BUDGET else None)  # tiles write disjoint parts
    return idx, dist


def choose_map(prior, conds: list[np.ndarray], cand: np.ndarray, dist: np.ndarray, lam: float,
               keep: tuple[np.ndarray, np.ndarray] | None = None, bits: np.ndarray | None = None
               ) -> tuple[np.ndarray, bytes]:
    """Codes for one map among its candidates (`candidates`), chosen as the module says, and the
    range-coded stream of them. keep: a map skipped in blocks (`vqzip.fine_skip`), as its block
    flags and the positions they cover: the flags are coded first, and skipped positions get
    the OUT token, not coded. bits: if given, an array of the map's shape that receives each
    coded code's length in bits (0 where skipped)."""
    enc = SymbolEncoder()
    if keep is not None:
        fine_skip.encode(enc, keep[0])

    def step(probs: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        c, d = cand[rows, cols].astype(np.int64), dist[rows, cols]
        p = np.take_along_axis(probs, c, 1) / probs.sum(1, keepdims=True)
        with np.errstate(divide="ignore"):
            cost = d - lam * np.log2(p)
        pick = cost.argmin(1)[:, None]
        symbols = np.take_along_axis(c, pick, 1)[:, 0]
        enc.encode(symbols, probs)
        if bits is not None:
            bits[rows, cols] = -np.log2(np.take_along_axis(p, pick, 1)[:, 0])
        return symbols

    with one_thread():
        codes = prior.walk(cand.shape[0], cand.shape[1], step, conds, None if keep is None else ~keep[1])
    return codes, enc.to_bytes()


def encode(model, padded, lam: float, n_maps: int, parts: list[tiles.Tile], skip: float = 0.0, decode=None,
           target: np.ndarray | None = None) -> tuple[list[np.ndarray], list[bytes]]:
    """The first n_maps code maps of a padded image, chosen with multiplier lam, and their streams.

    skip: mu of `vqzip.fine_skip` (0: every map whole): a skippable map is chosen twice,
    first whole to measure, per block, the squared error its codes save in the decoded pixels
    (decode(code maps) -> the image of `target`'s shape, uint8) and the bits they cost, then
    with the blocks that save less than skip per bit skipped."""
    net, codes, streams = model.net, [], []
    features = {} if len(parts) <= CACHED_TILES else None  # 768x512, 2 maps, one thread: 4.0-4.6 s -> 3.8-4.0
    # λ = 0 picks the nearest code whatever the probabilities: the first candidate is kept, not
    # eight (a 40 MP fine map's eight take 480 MB). The search is the same: of two codes at
    # exactly the same distance the lower comes first, for any k (`codebooks.least`).
    store = None if lam > 0 else 1
    for k in range(n_maps):
        m = net.maps[k]
        cand, dist = candidates(net, padded, m.latent, m.stage, codes, parts, features=features, store=store)
        conds = [codes[j] for j in m.conds]
        if skip and m.skippable:
            bits = np.zeros(cand.shape[:2])
            whole, _ = choose_map(model.priors[k], conds, cand, dist, lam, bits=bits)
            # The decodes need the memory more than the candidates do (eight a position take 480 MB
            # at 40 MP: level 7's peak, when it kept eight, went from 2,319 to 2,121 MB): they are
            # computed again after, the same.
            del cand, dist
            side = fine_skip.BLOCK * m.stride
            saved = _block_sse(decode(codes), target, side) - _block_sse(decode(codes + [whole]), target, side)
            del whole
            kept = fine_skip.keep_blocks(saved, fine_skip.block_sums(bits, fine_skip.BLOCK), skip)
            cand, dist = candidates(net, padded, m.latent, m.stage, codes, parts, features=features, store=store)
            c, s = choose_map(model.priors[k], conds, cand, dist, lam, (kept, fine_skip.positions(kept, cand.shape[:2])))
        else:
            c, s = choose_map(model.priors[k], conds, cand, dist, lam)
        del cand, dist  # before the next map's candidates: a bottom map's are 120 MB at 40 MP
        codes.append(c)
        streams.append(s)
    return codes, streams


def _block_sse(decoded: np.ndarray, target: np.ndarray, side: int) -> np.ndarray:
    """Squared error of decoded against target (H, W, 3 uint8), summed over blocks of side x side
    pixels (the last ones short), a band of blocks at a time (a 40 MP image's errors are not
    held whole)."""
    rows = []
    for y in range(0, target.shape[0], side * 16):
        d = decoded[y : y + side * 16].astype(np.int32) - target[y : y + side * 16]
        rows.append(fine_skip.block_sums((d * d).sum(2, dtype=np.int64), side))
    return np.concatenate(rows).astype(np.float64)

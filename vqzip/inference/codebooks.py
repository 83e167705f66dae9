"""The quantizers' codebooks in numpy, per kind: what the codec does with a latent's codes.

    lookup(codes)               the first len(codes) maps -> their vectors, summed over stages
    residual_indices(z)         the nearest code of every stage in turn, on what the stages before left
    nearest(z, earlier, k)      RDO's k best codes of the next stage, with their squared errors

A lattice latent (`LatticeCodebook`) has lookup and residual_indices at a rate anchor
(`anchor=`), and no `nearest` yet: RDO over its symbols is not written.

The same semantics as the torch kinds (`vqzip.models.quantize`, `residual_vq`, `product_vq`,
`lattice`), from the same weights (`net.<latent>.stages.<s>.embed`, a product stage's
`...halves.<h>.embed`, a lattice's `net.<latent>.log2_gain`). Arrays are (B, D, H, W) float32 vectors and (B, H, W) int64 codes.

Order among equal distances is fixed here, whatever the BLAS or thread count: the least
squared distance first, and among equal ones the lower code (torch.topk's order for ties was its
own choice, and differed between k = 1 and k = 8). The distances are computed as the torch
kinds compute them (‖z‖² − 2 z·e + ‖e‖², float32), so the nearest code is the same but for
vectors all but equidistant from two codes, where the last bit of a float32 sum decides.
"""
from __future__ import annotations

import numpy as np

from vqzip.models.configs import quantizer_name

CHUNK = 8192  # positions whose distances to every code are computed at once: a large image's never are


def least(d: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k least of each row of d (n, K): (values, columns), (n, k) each, ordered by value and
    among equal values by column."""
    if k == 1:
        i = d.argmin(1)[:, None]  # the first of equal least values
    elif k >= d.shape[1]:
        i = np.argsort(d, 1, kind="stable")[:, :k]
    else:
        i = np.argpartition(d, k - 1, 1)[:, :k]
        kth = np.take_along_axis(d, i, 1).max(1, keepdims=True)
        tied = (d <= kth).sum(1) > k  # a value equal to the k-th was left out: which one is argpartition's choice
        if tied.any():
            i[tied] = np.argsort(d[tied], 1, kind="stable")[:, :k]
        v = np.take_along_axis(d, i, 1)
        i = np.take_along_axis(i, np.lexsort((i, v), axis=1), 1)
    return np.take_along_axis(d, i, 1), i.astype(np.int64)


def _flat(z: np.ndarray) -> np.ndarray:
    """(B, D, H, W) -> (B*H*W, D), positions in row-major order."""
    return z.transpose(0, 2, 3, 1).reshape(-1, z.shape[1])


class Codebook:
    """One map's codebook (the EMA VQ's `embed`, K x D)."""

    def __init__(self, embed: np.ndarray):
        self.embed = np.ascontiguousarray(embed, dtype=np.float32)
        self.num_codes = len(self.embed)
        self._e2 = (self.embed * self.embed).sum(1)
        self._embed_t = np.ascontiguousarray(self.embed.T)

    def distances(self, flat: np.ndarray) -> np.ndarray:
        """Squared distance of each row of flat (n, D) to every code -> (n, K)."""
        d = flat @ (-2 * self.embed.T)
        d += (flat * flat).sum(1, keepdims=True)
        d += self._e2
        return d

    def indices(self, flat: np.ndarray) -> np.ndarray:
        """The nearest code of each row of flat (n, D) -> (n,) int64."""
        return np.concatenate([self.distances(flat[i : i + CHUNK]).argmin(1) for i in range(0, max(len(flat), 1), CHUNK)])

    def nearest(self, flat: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest codes of each row of flat (n, D), in `least`'s order: (distances, codes)."""
        parts = [least(self.distances(flat[i : i + CHUNK]), k) for i in range(0, max(len(flat), 1), CHUNK)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def vectors(self, codes: np.ndarray) -> np.ndarray:
        """Codes (...) -> their vectors (..., D)."""
        return self.embed[codes]

    def channels(self, codes: np.ndarray) -> np.ndarray:
        """Codes (B, H, W) -> their vectors channel-first, (D, B, H, W), each channel gathered
        whole (the network's layout without a transposing copy)."""
        return np.take(self._embed_t, codes, axis=1)


class ProductCodebook:
    """A product quantizer's map (`vqzip.models.product_vq`): code i · radix + j is the first
    half's vector i beside the second half's vector j."""

    def __init__(self, first: np.ndarray, second: np.ndarray):
        self.halves = (Codebook(first), Codebook(second))
        self.radix = self.halves[1].num_codes
        self.num_codes = self.halves[0].num_codes * self.radix
        self._split = self.halves[0].embed.shape[1]

    def indices(self, flat: np.ndarray) -> np.ndarray:
        """The nearest code of each row: the pair of nearest halves (a squared distance is the sum of the halves')."""
        return self.halves[0].indices(flat[:, : self._split]) * self.radix + self.halves[1].indices(flat[:, self._split :])

    def nearest(self, flat: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k least sums of the halves' distances, in `least`'s order (column i · radix + j is code i · radix + j)."""
        parts = []
        for s in range(0, max(len(flat), 1), CHUNK):
            rows = flat[s : s + CHUNK]
            d1, d2 = self.halves[0].distances(rows[:, : self._split]), self.halves[1].distances(rows[:, self._split :])
            parts.append(least((d1[:, :, None] + d2[:, None, :]).reshape(len(rows), -1), k))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def vectors(self, codes: np.ndarray) -> np.ndarray:
        return np.concatenate([self.halves[0].vectors(codes // self.radix), self.halves[1].vectors(codes % self.radix)], -1)

    def channels(self, codes: np.ndarray) -> np.ndarray:
        return np.concatenate([self.halves[0].channels(codes // self.radix), self.halves[1].channels(codes % self.radix)], 0)


class LatentCodebooks:
    """One latent's codebooks, one per map (residual stage), in coding order: the numpy
    `vqzip.models.quantizers.LatentQuantizer` of the codec."""

    def __init__(self, stages: list[Codebook | ProductCodebook]):
        self.stages = stages

    def lookup(self, codes: list[np.ndarray]) -> np.ndarray:
        """Codes of the first len(codes) stages, each (B, H, W) -> their summed vectors (B, D, H, W)."""
        q = self.stages[0].channels(codes[0])
        for book, c in zip(self.stages[1:], codes[1:]):
            q += book.channels(c)
        return np.ascontiguousarray(q.swapaxes(0, 1))  # no copy for one image

    def residual_indices(self, z: np.ndarray) -> list[np.ndarray]:
        """The nearest code of every stage in turn, each on what the stages before left: (B, H, W) each."""
        shape, flat, codes = (z.shape[0], *z.shape[2:]), _flat(z), []
        for book in self.stages:
            codes.append(book.indices(flat))
            flat = flat - book.vectors(codes[-1])
        return [c.reshape(shape) for c in codes]

    def nearest(self, z: np.ndarray, earlier: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest codes of stage len(earlier) to what the earlier stages' codes (B, H, W)
        left of z (B, D, H, W): (distances, codes), (B*H*W, k) each, positions row-major,
        in `least`'s order."""
        flat = _flat(z)
        for book, c in zip(self.stages, earlier):
            flat = flat - book.vectors(c.reshape(-1))
        return self.stages[len(earlier)].nearest(flat, k)


class LatticeCodebook:
    """A lattice latent's one map (`vqzip.models.lattice`): symbols per element, their step set by
    the gains of a rate anchor, from the integer log2 gains (`LatticeConfig.fixed_gains`) as
    the torch quantizer out of training scales by them, bit for bit (the same float32 gains,
    IEEE products and quotients, round half to even). Codes are (B, C, H, W) int64 in 0..2L."""

    def __init__(self, cfg, log2_gain: np.ndarray):
        self.cfg, self.max_symbol = cfg, cfg.max_symbol
        self.fixed = cfg.fixed_gains(np.asarray(log2_gain, np.float32).tolist())

    def log2_gains(self, anchor: float) -> np.ndarray:
        """The integer log2 gains (C,) int64 of a (fractional) anchor, units of 2**-12: what the
        prior's scale index is computed from."""
        return np.array(self.cfg.gains_at(self.fixed, anchor)[0], np.int64)

    def gains(self, anchor: float) -> np.ndarray:
        """The gains g (1, C, 1, 1) float32 the values are scaled by."""
        return np.array(self.cfg.gains_at(self.fixed, anchor)[1], np.float32)[None, :, None, None]

    def residual_indices(self, z: np.ndarray, *, anchor: float) -> list[np.ndarray]:
        """y (B, C, H, W) -> [clip(round(y g), -L, L) + L], the one map."""
        t = np.asarray(z, np.float32) * self.gains(anchor)
        return [np.clip(np.round(t), -self.max_symbol, self.max_symbol).astype(np.int64) + self.max_symbol]

    def lookup(self, codes: list[np.ndarray], *, anchor: float) -> np.ndarray:
        """[codes (B, C, H, W)] -> y_hat = (codes - L) / g, float32."""
        (c,) = codes
        return (c - self.max_symbol).astype(np.float32) / self.gains(anchor)


# Each quantizer kind's map codebook from the network's tensors under a stage's prefix
# (every VQ kind of `vqzip.models.configs.QUANTIZER_CONFIGS` has one here; the lattice's latent
# is one `LatticeCodebook`)
_STAGE_BOOKS = {
    "vq": lambda t, p: Codebook(t[f"{p}embed"]),
    "product": lambda t, p: ProductCodebook(t[f"{p}halves.0.embed"], t[f"{p}halves.1.embed"]),
}


def latent_codebooks(quantizer, maps: int, tensors: dict[str, np.ndarray], prefix: str) -> LatentCodebooks | LatticeCodebook:
    """A latent's codebooks, of `maps` stages of the kind quantizer config `quantizer` is the
    config of (`vqzip.models.configs`), from the network's tensors under `prefix` (e.g.
    "vq_t."); KeyError for a missing one."""
    name = quantizer_name(quantizer)
    if name == "lattice":
        return LatticeCodebook(quantizer, tensors[f"{prefix}log2_gain"])
    book = _STAGE_BOOKS[name]
    return LatentCodebooks([book(tensors, f"{prefix}stages.{s}.") for s in range(maps)])

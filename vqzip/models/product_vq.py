"""Product quantization (Jégou, Douze & Schmid 2011): each vector's two halves quantized apart,
by two EMA codebooks of a and b codes, their pair one code of a · b.

    z = [z1 | z2] ──VQ a──► i ─┐
                  ──VQ b──► j ─┴─► code i · b + j        z_q = [e1[i] | e2[j]]

A map keeps its alphabet of K = a · b codes (the priors see no difference) from a + b vectors:
the nearest-code search costs a + b distances a position rather than K, and the codebooks
hold about a twentieth of the parameters at K = 512 (16 + 32 half vectors). Since a squared distance is the sum of the halves', the
nearest pair is the pair of nearest halves, and RDO's candidates are the least sums (the codec's
search, `vqzip.inference.codebooks.ProductCodebook`).

The example of a quantizer kind (`vqzip.models.quantizers`, "product"): its stages are residual
as the default kind's (`ResidualVQ`), each a `ProductVQ`.
"""
from __future__ import annotations

import torch
from torch import nn

from vqzip.models.configs import ProductConfig, product_factors
from vqzip.models.quantize import VectorQuantizer
from vqzip.models.residual_vq import ResidualVQ


def build(cfg: ProductConfig, maps: int, num_codes: int, dim: int, *, optional: bool = False) -> ResidualVQ:
    """The quantizer kind's latent: `maps` residual stages of `ProductVQ`."""
    return ResidualVQ(maps, num_codes, dim, optional=optional, commitment=cfg.commitment, stage=ProductVQ,
                      decay=cfg.decay)


class ProductVQ(nn.Module):
    """One map's quantizer, as `VectorQuantizer` is one (what `ResidualVQ` needs of a stage):
    num_codes = a · b with a the largest factor up to its square root (16: 4 · 4; 512: 16 · 32);
    ValueError for a prime. dim >= 2: the halves are dim // 2 and the rest."""

    def __init__(self, num_codes: int, dim: int, *, commitment: float = 0.25, decay: float = 0.99):
        super().__init__()
        a, _ = product_factors(num_codes, dim)
        self.num_codes, self.dim, self.commitment = num_codes, dim, commitment
        self.radix = num_codes // a  # code = i * radix + j
        self.halves = nn.ModuleList([VectorQuantizer(a, dim // 2, commitment=commitment, decay=decay),
                                     VectorQuantizer(self.radix, dim - dim // 2, commitment=commitment, decay=decay)])

    def _split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[:, : self.dim // 2], z[:, self.dim // 2 :]

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code for each position of z (B, D, H, W) -> (B, H, W) int64: the nearest halves'."""
        i, j = (vq.indices(h) for vq, h in zip(self.halves, self._split(z)))
        return i * self.radix + j

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors for indices (B, H, W) -> (B, D, H, W)."""
        first, second = self.halves
        return torch.cat([first.lookup(indices // self.radix), second.lookup(indices % self.radix)], 1)

    def forward(self, z: torch.Tensor):
        """(z_q with straight-through gradient, indices, commitment loss), each half's EMA
        codebook following the halves assigned to it in training."""
        (q1, i, loss1), (q2, j, loss2) = (vq(h) for vq, h in zip(self.halves, self._split(z)))
        h = self.dim // 2
        return torch.cat([q1, q2], 1), i * self.radix + j, (loss1 * h + loss2 * (self.dim - h)) / self.dim

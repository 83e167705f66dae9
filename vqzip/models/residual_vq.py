"""Residual vector quantization (Juang & Gray 1982; Zeghidour et al. 2021, SoundStream).

    z ──VQ 0──► c0 ─┐   r1 = z - e0[c0] ──VQ 1──► c1 ─┐   r2 = r1 - e1[c1] ──► ...
                    └──────────────── z_q = e0[c0] + e1[c1] + ... ◄───────────┘

Each stage is a `VectorQuantizer` (or another one-map quantizer: `stage`) coding what the stages
before it left, so a map of S stages gives up to S·log2(K) bits per position, and any prefix of
the stages is a coarser z_q. With `dropout`, training uses a random prefix per image
(SoundStream's quantizer dropout): the decoder learns to rebuild from 1..S stages, so a quality
level can code fewer stages. An `optional` level (one a file may leave out whole) draws from
0..S: with none kept, its output is zero and passes no gradient, as the decoder will see it.
Knows nothing of images or bits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vqzip.models.quantize import VectorQuantizer


class ResidualVQ(nn.Module):
    """A `vqzip.models.quantizers.LatentQuantizer` of `stages` maps, each coded by a quantizer of
    class `stage`, `stage(num_codes, dim, commitment=..., **stage_kwargs)` (by default the EMA VQ;
    stage_kwargs then its decay, rate, ...), which gives `forward` (z_q, indices, loss) and
    `indices` and `lookup` on one map as `VectorQuantizer` does."""

    def __init__(self, stages: int, num_codes: int, dim: int, *, dropout: bool = True, optional: bool = False,
                 commitment: float = 0.25, stage: type[nn.Module] = VectorQuantizer, **stage_kwargs):
        super().__init__()
        self.stages = nn.ModuleList(stage(num_codes, dim, commitment=commitment, **stage_kwargs) for _ in range(stages))
        self.dropout, self.optional, self.commitment = dropout, optional, commitment

    def lookup(self, codes: list[torch.Tensor]) -> torch.Tensor:
        """Codes of the first len(codes) stages, each (B, H, W) -> their summed vectors (B, D, H, W)."""
        return sum(vq.lookup(c) for vq, c in zip(self.stages, codes))

    def residual_indices(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Nearest code of every stage in turn, each on what the stages before left."""
        codes = []
        for vq in self.stages:
            codes.append(vq.indices(z))
            z = z - vq.lookup(codes[-1])
        return codes

    def forward(self, z: torch.Tensor):
        """Returns (z_q with straight-through gradient, codes per stage, commitment loss). In
        training with dropout, image b keeps its first n_b stages, n_b uniform in 1..S (0..S if
        `optional`)."""
        with torch.autocast(z.device.type, enabled=False):
            z = z.float()
            r, full, kept, codes = z.detach(), torch.zeros_like(z), torch.zeros_like(z), []
            keep = n = None
            if self.training and self.dropout and (len(self.stages) > 1 or self.optional):
                n = torch.randint(0 if self.optional else 1, len(self.stages) + 1, (z.shape[0],), device=z.device)
                keep = [(s < n).to(z.dtype).view(-1, 1, 1, 1) for s in range(len(self.stages))]
            for s, vq in enumerate(self.stages):
                q, idx, _ = vq(r)  # EMA update in training; q carries no gradient (r is detached)
                codes.append(idx)
                r = r - q
                full = full + q
                kept = kept + (q if keep is None else q * keep[s])
            loss = self.commitment * F.mse_loss(z, full)  # the encoder aims at what all stages can give
            out = z + (kept - z).detach()
            if n is not None and self.optional:
                out = out * (n > 0).to(z.dtype).view(-1, 1, 1, 1)
            return out, codes, loss

"""Vector quantization with an EMA codebook (van den Oord et al. 2017, VQ-VAE; Razavi et al. 2019, VQ-VAE-2).

    z (B, D, H, W) --nearest code--> indices (B, H, W) --lookup--> z_q (B, D, H, W)

Gradients pass straight through (z_q = z + sg(z_q - z)); the codebook is not learned by
gradient but follows the running mean of the vectors assigned to each code. Codes that stop
being used are restarted on random encoder outputs, so the whole codebook stays in play.

With `rate` > 0, training assigns each vector entropy-constrained (Chou, Lookabaugh & Gray
1989): to the code minimizing ‖z − e‖² / D̄ + rate · (−log2 P(code)), D̄ being the batch's
mean distance to the nearest code (so `rate` is the share of a typical quantization error one
bit is worth) and P the codes' running usage. The codebook then learns cells sized for a
variable-length code, as the priors and the encoder's RDO (`vqzip.rdo`) will use it.
`indices` (the codec's nearest code) is unchanged.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _data_parallel() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_rows(flat: torch.Tensor) -> torch.Tensor:
    """Every data-parallel rank's rows, in rank order (one process: flat itself)."""
    if not _data_parallel():
        return flat
    parts = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, flat.contiguous())
    return torch.cat(parts)


def _sample_rows(flat: torch.Tensor, n: int) -> torch.Tensor:
    """n random rows of every rank's vectors, drawn by rank 0 and the same on every rank, so
    data-parallel training restarts codes as one process with the whole batch would."""
    rows = _all_rows(flat)
    new = rows[torch.randint(len(rows), (n,), device=rows.device)]
    if _data_parallel():
        dist.broadcast(new, 0)
    return new


CHUNK = 8192  # positions whose distances to every code are computed at once: a large image's never are


class VectorQuantizer(nn.Module):
    def __init__(
        self,
        num_codes: int,
        dim: int,
        *,
        decay: float = 0.99,  # EMA of counts and sums, as in VQ-VAE-2
        commitment: float = 0.25,  # beta of the VQ-VAE paper
        dead_threshold: float = 1.0,  # EMA count under which a code is restarted
        eps: float = 1e-5,
        rate: float = 0.0,  # weight of the code length in training's assignment; 0: nearest code
    ):
        super().__init__()
        self.num_codes, self.dim = num_codes, dim
        self.decay, self.commitment, self.dead_threshold, self.eps = decay, commitment, dead_threshold, eps
        self.rate = rate
        self.register_buffer("embed", torch.randn(num_codes, dim) * 0.1)
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_avg", self.embed.clone())
        self.register_buffer("initted", torch.tensor(False))

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code for each position of z (B, D, H, W) -> (B, H, W) int64."""
        return torch.cat([d.argmin(1) for d in self._chunked_distances(z)]).view(z.shape[0], z.shape[2], z.shape[3])

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """Squared distance of each position of z (B, D, H, W) to every code -> (B*H*W, K)."""
        return self._distances(self._flat(z))

    def _chunked_distances(self, z: torch.Tensor):
        """`distances`, CHUNK positions at a time."""
        flat = self._flat(z)
        return (self._distances(flat[i : i + CHUNK]) for i in range(0, max(len(flat), 1), CHUNK))

    def _flat(self, z: torch.Tensor) -> torch.Tensor:
        return z.permute(0, 2, 3, 1).reshape(-1, self.dim)

    def _distances(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed.t() + self.embed.pow(2).sum(1)

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """Training's assignment: the nearest code, or entropy-constrained with `rate` > 0.
        argmin over codes of ‖z − e‖² / D̄ + rate · bits is argmin of −2 z·e + ‖e‖² + D̄ · rate · bits
        (‖z‖² and the scale are the same for every code): one fused matrix product per CHUNK
        rows, without the (positions × codes) passes of the literal formula (a fine level's
        assignment was a third of a training step)."""
        flat = self._flat(z)
        chunks = [flat[i : i + CHUNK] for i in range(0, max(len(flat), 1), CHUNK)]
        e2 = self.embed.pow(2).sum(1)
        bias = e2
        if self.rate:
            nearest = torch.cat([torch.addmm(e2, c, self.embed.t(), alpha=-2).amin(1) for c in chunks])
            mean = (nearest + flat.pow(2).sum(1)).mean().clamp_min(1e-12)  # D̄, the batch's mean nearest distance
            bits = -torch.log2((self.cluster_size + self.eps) / (self.cluster_size.sum() + self.num_codes * self.eps))
            bias = e2 + self.rate * mean * bits
        idx = torch.cat([torch.addmm(bias, c, self.embed.t(), alpha=-2).argmin(1) for c in chunks])
        return idx.view(z.shape[0], z.shape[2], z.shape[3])

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors for indices (B, H, W) -> (B, D, H, W)."""
        return F.embedding(indices, self.embed).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor):
        """Returns (z_q with straight-through gradient, indices, commitment loss). Runs in float32
        under autocast too: nearest-code search and the EMA sums need its precision."""
        with torch.autocast(z.device.type, enabled=False):
            return self._forward(z.float())

    def _forward(self, z: torch.Tensor):
        if self.training:  # one assignment per step: z_q from the codebook it was made with, then the EMA moves
            if not self.initted:
                self._init_(z.detach())
            idx = self.assign(z.detach())
            zq = self.lookup(idx)
            self._update_(z.detach(), idx)
        else:
            idx = self.indices(z.detach())
            zq = self.lookup(idx)
        loss = self.commitment * F.mse_loss(z, zq)
        return z + (zq - z).detach(), idx, loss

    @torch.no_grad()
    def _init_(self, z: torch.Tensor) -> None:
        """Start from data, not noise: most codes are used from the first step."""
        self.embed.copy_(_sample_rows(self._flat(z), self.num_codes))
        self.embed_avg.copy_(self.embed)
        self.cluster_size.fill_(1.0)
        self.initted.fill_(True)

    @torch.no_grad()
    def _update_(self, z: torch.Tensor, idx: torch.Tensor) -> None:
        """The EMA step: each code's count and sum follow the vectors assigned to it (idx)."""
        flat = self._flat(z)
        counts = torch.bincount(idx.flatten(), minlength=self.num_codes).to(flat.dtype)
        sums = torch.zeros_like(self.embed_avg).index_add_(0, idx.flatten(), flat)
        if _data_parallel():  # the codebook follows every rank's vectors, identically on each
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n  # Laplace smoothing
        self.embed.copy_(self.embed_avg / smoothed.unsqueeze(1))
        dead = self.cluster_size < self.dead_threshold
        if dead.any():
            new = _sample_rows(flat, int(dead.sum()))
            self.embed[dead] = new
            # Twice the threshold gives a restarted code ~70 steps to attract vectors.
            self.cluster_size[dead] = 2 * self.dead_threshold
            self.embed_avg[dead] = new * 2 * self.dead_threshold

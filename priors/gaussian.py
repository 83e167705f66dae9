"""A discretized-Gaussian prior over a map with a channel axis: the lattice quantizer's fine latent
(issue 35), C scalar symbols per position, each coded under a zero-mean Gaussian whose scale
comes from the conditioning maps alone.

    conds ──CondNet per group──► repeat up by the group's factor, sum ──► ReLU, 1x1, ReLU, 1x1
                                                                          └► log2 sigma (C, H, W)
    q = symbol - L,  s = sigma * g  (g: the channel's gain, 2 ** (log2_gain / 2**GAIN_BITS))
    p(q) = Phi((q + 1/2) / s) - Phi((q - 1/2) / s), the tails beyond +-L folded into the end symbols

No code reaches another code's distribution (the conditioning maps act as the hyperprior), so a
whole map is computed at once, channel after channel, with no wavefront.

This module holds what the codec reads and imports no torch: the config and the exact form.
The float module training fits, and its calibration to the exact tensors, are
`vqzip.priors.gaussian_float`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from vqzip.priors.pixelcnn_config import PixelCNNConfig

GAIN_BITS = 12  # log2 gains and log2 sigma in units of 2**-GAIN_BITS


@dataclass(frozen=True)
class GaussianConfig:
    channels: int = 8  # C, symbols per position
    max_symbol: int = 31  # L: q in -L..L, symbol q + L
    # per conditioning map, in the order the caller passes them: (its alphabet, this map's rows per
    # row of it), as PixelCNNConfig's
    conds: tuple[tuple[int, int], ...] = ()
    cond_channels: int = 64
    hidden: int = 64
    # the exact form's table: `scales` values of s = sigma * g, geometric from scale_min to scale_max
    scales: int = 64
    scale_min: float = 0.11  # below it the zero symbol's probability is 1 - 1e-5 already
    scale_max: float = 64.0  # about 2L: a wider Gaussian is nearly flat over -L..L

    def __post_init__(self):
        object.__setattr__(self, "conds", tuple((int(k), int(f)) for k, f in self.conds))  # JSON gives lists

    @property
    def num_codes(self) -> int:
        """The alphabet of each symbol (OUT = num_codes marks a position not coded)."""
        return 2 * self.max_symbol + 1

    groups = PixelCNNConfig.groups  # (factor, indices into conds) per group of maps at one resolution

    def to_dict(self) -> dict:
        return asdict(self)


def describe(cfg: GaussianConfig) -> str:
    return (f"a discretized Gaussian over {cfg.channels} channels of {cfg.num_codes} symbols, its scale "
            f"predicted from the maps before it")

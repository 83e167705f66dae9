"""Quantizer kinds by name: what a network config names as its latents' quantizer.

In config.json's `net`, `"quantizer": {"kind": NAME, ...its fields}`; absent, the EMA VQ ("vq"),
whose fields (`commitment`, `decay`, `rate`) sit in `net` itself as they did before kinds existed,
so the shipped configs, their digests and their weights read as they are.

A kind is a `QuantizerKind`, and nothing else names it:

- `Config`: a frozen dataclass of the kind's own settings, every field with a default;
  `to_dict()` gives the fields JSON can hold; it lives, without torch, in `vqzip.models.configs`
  (`QUANTIZER_CONFIGS`), with the reading and writing of config.json's `net`;
- `build(cfg, maps, num_codes, dim, optional=...)`: the `LatentQuantizer` (an `nn.Module`) of one
  latent of vectors of dimension `dim`, coded as `maps` code maps of `num_codes` symbols each (the
  latent's `MapSpec`s); `optional`: a file may leave the whole latent out, so training drops it
  at random (its output then zero) for the decoder to learn without it.

The network trains through `forward`; the codec runs the kind's numpy codebooks
(`vqzip.inference.codebooks`: `lookup`, `residual_indices`, and `nearest` for RDO), which read
the same weights and keep the same semantics. Entropy coding is
the priors' (`vqzip.priors.registry`): a quantizer knows nothing of bits.

The EMA VQ with residual stages (`quantize.py`, `residual_vq.py`) is the default kind; product
quantization (`product_vq.py`) is the example of another. The lattice (`lattice.py`: scalar
quantization with a learned gain per channel and rate anchor, coded by a discretized-Gaussian
prior) quantizes a fine latent only (`VQVAE2Config.fine_quantizer`), and its methods take the
anchor whose gains they scale by (`anchor=`): `forward` rounds z · g with a straight-through
gradient (and `noisy` gives the rate's input, z · g plus uniform noise); `residual_indices`
gives the rounded values clipped to ±L and offset into the alphabet 0..2L (num_codes = 2L + 1);
`lookup` is (code − L) / g. Its symbols are per element: its one map is (B, C, H, W), and its
`MapSpec` has `channels` C.

Adding a kind: a module of its own with its quantizer, its Config in `vqzip.models.configs`,
its numpy codebook in `vqzip.inference.codebooks`, and one entry in `KINDS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import nn

from vqzip.models import lattice, product_vq
from vqzip.models.configs import QUANTIZER_CONFIGS, VQConfig, quantizer_name
from vqzip.models.residual_vq import ResidualVQ


class LatentQuantizer(Protocol):
    """One latent's quantizer: vectors (B, D, H, W) <-> its code maps, each (B, H, W) int64 of
    symbols in 0..num_codes-1, in coding order. The first n maps of any n decode to a coarser
    vector: a file may code a prefix of them. A kind whose step depends on the rate (the
    lattice) takes the anchor as a keyword, `anchor=`, in each of these methods, and its maps
    may carry a channel axis ((B, C, H, W): `MapSpec.channels`)."""

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Training: (z_q with a straight-through gradient to z, the code maps, the loss that pulls
        z towards z_q). In eval mode the maps are `residual_indices(z)` and z_q is
        `lookup(maps)` (up to the straight-through's rounding)."""

    def residual_indices(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's code maps of z (the λ = 0 choice: each map's nearest codes, given the
        maps before it): every map, in coding order."""

    def lookup(self, codes: list[torch.Tensor]) -> torch.Tensor:
        """The first len(codes) maps (1 to all) -> the vectors they decode to, (B, D, H, W): the
        decoder's. A function of the codes and the weights alone."""


@dataclass(frozen=True)
class QuantizerKind:
    name: str
    Config: type
    build: Callable[..., nn.Module]  # (cfg, maps, num_codes, dim, *, optional) -> LatentQuantizer


def _residual_vq(cfg: VQConfig, maps: int, num_codes: int, dim: int, *, optional: bool = False) -> ResidualVQ:
    return ResidualVQ(maps, num_codes, dim, optional=optional, **cfg.to_dict())


_BUILDS = {"vq": _residual_vq, "product": product_vq.build, "lattice": lattice.build}
KINDS: dict[str, QuantizerKind] = {name: QuantizerKind(name, cls, _BUILDS[name]) for name, cls in QUANTIZER_CONFIGS.items()}


def build(cfg, maps: int, num_codes: int, dim: int, *, optional: bool = False) -> nn.Module:
    """The quantizer of one latent, of the kind `cfg` is the config of (see the module's text)."""
    return KINDS[quantizer_name(cfg)].build(cfg, maps, num_codes, dim, optional=optional)

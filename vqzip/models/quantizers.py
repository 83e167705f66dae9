"""Quantizer kinds by name: what a network config names as its latents' quantizer.

In config.json's `net`, `"quantizer": {"kind": NAME, ...its fields}`; absent, the EMA VQ ("vq"),
whose fields (`commitment`, `decay`, `rate`) sit in `net` itself as they did before kinds existed,
so the shipped configs, their digests and their weights read as they are.

A kind is a `QuantizerKind`, and nothing else names it:

- `Config`: a frozen dataclass of the kind's own settings, every field with a default;
  `to_dict()` gives the fields JSON can hold;
- `build(cfg, maps, num_codes, dim, optional=...)`: the `LatentQuantizer` (an `nn.Module`) of one
  latent of vectors of dimension `dim`, coded as `maps` code maps of `num_codes` symbols each (the
  latent's `MapSpec`s); `optional`: a file may leave the whole latent out, so training drops it
  at random (its output then zero) for the decoder to learn without it.

The network trains through `forward` and decodes through `lookup`; the codec's encoder codes
`residual_indices`; RDO (`vqzip.rdo`) chooses among `nearest`'s candidates. Entropy coding is
the priors' (`vqzip.priors.registry`): a quantizer knows nothing of bits.

The EMA VQ with residual stages (`quantize.py`, `residual_vq.py`) is the default kind; product
quantization (`product_vq.py`) is the example of another. A lattice kind (scalar quantization with a learned
step, coded by a discretized-Gaussian prior) implements the same methods: `forward` rounds
z / step with a straight-through gradient (or adds uniform noise); `residual_indices` gives the
rounded values clipped to ±L and offset into the alphabet 0..2L (num_codes = 2L + 1); `lookup`
is (code − L) · step; `nearest` gives the integers nearest z / step with their squared errors
(two a value are all RDO needs). Its symbols are per element rather than per position, so its
maps have a channel axis that `MapSpec`, the codec and the prior walk will carry; its prior is
a prior kind of its own.

Adding a kind: a module of its own with its Config and its quantizer, and one entry in `KINDS`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Protocol

import torch
from torch import nn

from vqzip.models import product_vq
from vqzip.models.quantize import VQConfig
from vqzip.models.residual_vq import ResidualVQ

DEFAULT = "vq"  # the kind of a network config that names none


class LatentQuantizer(Protocol):
    """One latent's quantizer: vectors (B, D, H, W) <-> its code maps, each (B, H, W) int64 of
    symbols in 0..num_codes-1, in coding order. The first n maps of any n decode to a coarser
    vector: a file may code a prefix of them."""

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

    def nearest(self, z: torch.Tensor, earlier: list[torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """RDO's candidates for map len(earlier), given the codes chosen for the maps before it:
        the k codes c (k at most num_codes) of least ‖z − lookup(earlier + [c])‖² at each
        position of z (B, D, H, W), and those squared errors: (distances, codes), (B*H*W, k)
        each, positions in row-major order, least first."""


@dataclass(frozen=True)
class QuantizerKind:
    name: str
    Config: type
    build: Callable[..., nn.Module]  # (cfg, maps, num_codes, dim, *, optional) -> LatentQuantizer


def _residual_vq(cfg: VQConfig, maps: int, num_codes: int, dim: int, *, optional: bool = False) -> ResidualVQ:
    return ResidualVQ(maps, num_codes, dim, optional=optional, **cfg.to_dict())


KINDS: dict[str, QuantizerKind] = {k.name: k for k in (
    QuantizerKind("vq", VQConfig, _residual_vq),
    QuantizerKind("product", product_vq.ProductConfig, product_vq.build),
)}


def kind(name: str) -> QuantizerKind:
    """The kind of that name; ValueError naming the known ones for another."""
    if name not in KINDS:
        raise ValueError(f"unknown quantizer kind {name!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def kind_of(cfg) -> QuantizerKind:
    """The kind whose config `cfg` is."""
    for k in KINDS.values():
        if type(cfg) is k.Config:
            return k
    raise ValueError(f"{type(cfg).__name__} is the config of no registered quantizer kind")


def config_from_net(net: dict) -> tuple[object, dict]:
    """A network config dict (config.json's `net`) -> its quantizer config and its other fields:
    the `quantizer` entry ({"kind": name, fields}), or where there is none the default kind's
    config from the fields of its names (those absent take their defaults). ValueError or
    TypeError where it is not one."""
    rest = dict(net)
    if "quantizer" in rest:
        d = dict(rest.pop("quantizer"))
        return kind(d.pop("kind", DEFAULT)).Config(**d), rest
    names = {f.name for f in fields(KINDS[DEFAULT].Config)}
    return KINDS[DEFAULT].Config(**{k: rest.pop(k) for k in list(rest) if k in names}), rest


def config_to_net(cfg) -> dict:
    """A quantizer config's fields in a network config dict: the default kind's flat (as before
    kinds existed), another's as {"quantizer": {"kind": name, fields}}."""
    name = kind_of(cfg).name
    return cfg.to_dict() if name == DEFAULT else {"quantizer": {"kind": name, **cfg.to_dict()}}


def build(cfg, maps: int, num_codes: int, dim: int, *, optional: bool = False) -> nn.Module:
    """The quantizer of one latent, of the kind `cfg` is the config of (see the module's text)."""
    return kind_of(cfg).build(cfg, maps, num_codes, dim, optional=optional)

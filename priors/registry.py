"""Prior kinds by name: what a model's config.json names in each map's prior config (`"kind"`,
absent for PixelCNN, so configs written before kinds existed read as they are).

A kind is one implementation of this protocol (`PriorKind`), and nothing else names it:

- `Config`: a frozen dataclass taking `num_codes` (the map's alphabet; OUT = num_codes) and
  `conds` ((alphabet, factor) per map it may be conditioned on, as `vqzip.models.prior_config`
  gives them) and its own fields with defaults; `to_dict()` gives the fields JSON can hold.
- `Float(cfg)`: the `nn.Module` training fits (`FloatPrior`); it, `calibrate` and `cut` need
  torch, so the registry names them by `Lazy("module:name")`, imported when first called (no
  module of this package may share a name `vqzip.priors` exports, such as `calibrate`: importing
  it later would rebind that name to the module).
- `Exact(cfg, tensors)`: its integer form, what export makes and the codec walks
  (`ExactPrior`), evaluated in numpy (tensors: numpy arrays or CPU torch tensors):
  ValueError where the tensors do not fit cfg.
- `calibrate(float_prior, maps)`: the integer tensors of `Exact` from a trained float prior,
  given (codes, conditioning maps) pairs it is typical on.
- `describe(cfg)`: the card's words for it; `cut(full, cfg, maps)`, or None: a smaller prior
  started from a trained one's weights (ValueError where cfg cannot be cut from it).

A map with a channel axis (the "gaussian" kind, `vqzip.priors.gaussian`: a lattice quantizer's C
scalar symbols per position) extends the protocol so:

- `Config` takes no `num_codes`: it has `channels` and `max_symbol` L, and `num_codes` (2L + 1) is
  a property of it; `conds` as every kind's.
- `Float(cfg)` is trained with its quantizer, not by the prior phase's crops: `forward(conds)` ->
  log2 sigma (B, C, H, W), `bits(q, log2_sigma, log2_gain)` -> the rate of each symbol.
- `Exact`'s maps are (C, H, W), coded channel after channel, each in raster order; every call
  takes the channels' integer log2 gains as the keyword `log2_gain` (C,), in units of
  2**-GAIN_BITS (the model file's gains of the operating point): `walk(height, width, step,
  conds, skip, *, log2_gain)` -> (C, height, width), its step's rows indexing the channels
  stacked as a (C * height, width) map (row c * height + y), skip (height, width) or (C, height,
  width); `teacher_forced(codes (C, H, W), conds, batch, *, log2_gain)`.

Adding a kind: a module of its own with those pieces (its torch-free Config and Exact apart from
its float side), and one entry in `KINDS` below.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

import numpy as np

from vqzip.priors import factorized, gaussian
from vqzip.priors.decode import Step
from vqzip.priors.fixedpoint import FixedPointPrior
from vqzip.priors.pixelcnn_config import PixelCNNConfig

if TYPE_CHECKING:  # the float side of a kind is training's, imported by `Lazy` when called
    import torch
    from torch import nn

    Maps = list[tuple[torch.Tensor, list[torch.Tensor]]]  # (codes (H, W), its conditioning maps)

DEFAULT = "pixelcnn"  # the kind of a prior config that names none


class FloatPrior(Protocol):
    """A prior as training fits it (an `nn.Module`)."""

    cfg: object

    def crops(self, codes: list[torch.Tensor], conds: list[list[torch.Tensor]], corners: list[tuple[int, int, int]],
              size: int) -> tuple[tuple, torch.Tensor]:
        """The training inputs of size x size crops of this prior's map: codes: the map of each
        image; conds: each image's conditioning maps; corners: (image, row, column) of each crop
        in map coordinates -> (inputs for `forward`, the crops' codes (B, size, size))."""

    def forward(self, *inputs) -> torch.Tensor:
        """`crops`' inputs -> logits (B, K, size, size) of the crops' codes."""

    def nll_bits(self, codes: torch.Tensor, conds: list[torch.Tensor] = ()) -> torch.Tensor:
        """Ideal code length of whole maps (B, H, W) in bits, per map (B,)."""


class ExactPrior(Protocol):
    """A prior's integer form: the same probabilities on every machine, encoder and decoder."""

    cfg: object

    def walk(self, height: int, width: int, step: Step, conds=(), skip=None) -> np.ndarray:
        """Decode a (height, width) map in this kind's scan order, calling step with each batch of
        positions (never one in `skip`, which holds OUT) -> the int64 map of step's symbols.
        conds (integer maps) and skip (bool) are numpy arrays or CPU torch tensors; the
        arithmetic is numpy's."""

    def teacher_forced(self, codes, conds=(), batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(probability rows, symbols) of every code of `codes` (OUT: not coded), in `walk`'s order;
        arrays as `walk`'s."""


@dataclass(frozen=True)
class Lazy:
    """The function or class "module:name" names, imported when first called: a kind's float
    side (its module, calibration and cut) imports torch, which reading configs and walking the
    exact forms do without."""

    target: str

    def __call__(self, *args, **kwargs):
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)(*args, **kwargs)


@dataclass(frozen=True)
class PriorKind:
    name: str
    Config: type
    Float: Callable[[object], nn.Module]
    Exact: Callable[[object, dict], ExactPrior]
    calibrate: Callable[[nn.Module, Maps], dict[str, torch.Tensor]]
    describe: Callable[[object], str]
    cut: Callable[[nn.Module, object, Maps], nn.Module] | None = None


KINDS: dict[str, PriorKind] = {k.name: k for k in (
    PriorKind("pixelcnn", PixelCNNConfig, Lazy("vqzip.priors.pixelcnn:PixelCNN"), FixedPointPrior,
              Lazy("vqzip.priors.calibration:calibrate"),
              lambda c: f"a PixelCNN of {c.channels} channels and {c.blocks} gated block{'s' * (c.blocks != 1)} reaching "
                        f"{c.reach} rows up and columns aside, conditioned on the maps before it",
              Lazy("vqzip.priors.cut:cut")),
    PriorKind("factorized", factorized.FactorizedConfig, Lazy("vqzip.priors.factorized_float:Factorized"),
              factorized.FixedFactorized, Lazy("vqzip.priors.factorized_float:calibrate"), factorized.describe),
    PriorKind("gaussian", gaussian.GaussianConfig, Lazy("vqzip.priors.gaussian_float:GaussianPrior"),
              gaussian.ExactGaussian, Lazy("vqzip.priors.gaussian_float:calibrate"), gaussian.describe),
)}


def kind(name: str) -> PriorKind:
    """The kind of that name; ValueError naming the known ones for another."""
    if name not in KINDS:
        raise ValueError(f"unknown prior kind {name!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def kind_of(cfg) -> PriorKind:
    """The kind whose config `cfg` is."""
    for k in KINDS.values():
        if type(cfg) is k.Config:
            return k
    raise ValueError(f"{type(cfg).__name__} is the config of no registered prior kind")


def config_from_dict(d: dict):
    """A prior config from its config.json form (`kind` absent: PixelCNN); ValueError or
    TypeError where it is not one."""
    d = dict(d)
    return kind(d.pop("kind", DEFAULT)).Config(**d)


def config_to_dict(cfg) -> dict:
    """A prior config's config.json form: its fields, after `kind` unless it is the default
    (so a PixelCNN's config is what it was before kinds existed, byte for byte)."""
    name = kind_of(cfg).name
    return cfg.to_dict() if name == DEFAULT else {"kind": name, **cfg.to_dict()}


def float_prior(cfg) -> nn.Module:
    """A fresh float prior of config `cfg`."""
    return kind_of(cfg).Float(cfg)


def exact_prior(cfg, tensors: dict) -> ExactPrior:
    """The integer form of a prior of config `cfg` from its tensors in a model file (numpy
    arrays or CPU torch tensors)."""
    return kind_of(cfg).Exact(cfg, tensors)


def calibrate(prior: nn.Module, maps: Maps) -> dict[str, torch.Tensor]:
    """The integer tensors of a trained float prior, calibrated on `maps`."""
    return kind_of(prior.cfg).calibrate(prior, maps)

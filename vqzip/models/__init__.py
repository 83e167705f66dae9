"""Model architectures, registered by the `arch` field of a model's config.json.

Every architecture is an `nn.Module` built from its `Config` dataclass (`Config.from_dict` reads
config.json's `net`, `to_dict` writes it), with this contract (the
codec and the trainer use nothing else):

- `STRIDE`: images are padded to a multiple of it; the first map's stride;
- `maps`: the `MapSpec` of each code map, in coding order, with its roles (skippable, preview);
  `quantizers`: one per latent, in coding order, each a `vqzip.models.quantizers.LatentQuantizer`
  of the kind the config names;
- `normalize(x)`: uint8-range pixels -> model input;
- `forward(x)` for training: a dict with `x_hat`, `preview`, `codes` (one map per `maps` entry)
  and `vq_loss`;
- `features(x)`, then `latent(index, feats, coarser)`: the vectors a latent quantizes, given the
  coarser latents' codes;
- `decode(codes)`: code maps (a prefix of `maps` past the first latent's) -> image; a skippable
  map's positions holding its OUT token (num_codes) decode as a zero vector;
- `decode_preview(codes)`: the preview map (`MapSpec.preview`) alone -> the image at 1/preview.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vqzip import priors
from vqzip.models.spec import MapSpec
from vqzip.models.vqvae2 import VQVAE2

ARCHS: dict[str, type[nn.Module]] = {"vqvae2": VQVAE2}

__all__ = ["ARCHS", "MapSpec", "VQVAE2", "build", "features_of", "prior_config"]


def build(arch: str, cfg: dict) -> nn.Module:
    """A fresh network of a registered architecture from its config dict; ValueError for an unknown one."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHS))}")
    cls = ARCHS[arch]
    return cls(cls.Config.from_dict(cfg))


@torch.no_grad()
def features_of(net: nn.Module, pixels: np.ndarray) -> torch.Tensor:
    """(h, w, 3) uint8 rows of an image -> `net.features` of them (1, C, h', w'): the pixels become
    floats here, one stripe of an image at a time."""
    x = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32))[None]
    return net.features(net.normalize(x).contiguous(memory_format=torch.channels_last))


def prior_config(maps: list[MapSpec], k: int, kind: str = priors.DEFAULT, **kwargs):
    """The config of a prior of kind `kind` (`vqzip.priors.registry`) for map k: its alphabet, and
    one conditioning input per map it sees, at that map's stride over its own; kwargs set the
    rest (the kind's own options: channels, blocks, ...)."""
    m = maps[k]
    return priors.kind(kind).Config(num_codes=m.num_codes, conds=tuple((maps[j].num_codes, maps[j].stride // m.stride)
                                                                       for j in m.conds), **kwargs)

"""Model architectures, registered by the `arch` field of a model's config.json.

Each architecture has a config (`vqzip.models.configs`, torch-free: `arch_config` reads
config.json's `net`, `to_dict` writes it; its `maps()` are the code maps it implies) and an
`nn.Module` built from it for training and export, with this contract:

- `STRIDE`: images are padded to a multiple of it; the first map's stride;
- `maps`: the `MapSpec` of each code map, in coding order, with its roles (skippable, preview);
  `quantizers`: one per latent, in coding order, each a `vqzip.models.quantizers.LatentQuantizer`
  of the kind the config names;
- `normalize(x)`: uint8-range pixels -> model input;
- `forward(x)` for training: a dict with `x_hat`, `preview`, `codes` (one map per `maps` entry)
  and `vq_loss`;
- `graphs()`: the pure functions of float tensors the codec runs between its codebook lookups
  (named by the config's `graphs()`), exported to ONNX (`vqzip.training.onnx_export`) or run by
  the torch backend; the codec's composition of them is `vqzip.inference.network`.

Importing this package imports no torch: the modules (`VQVAE2`, `build`) load when first named.
"""
from __future__ import annotations

from vqzip.models.configs import ARCH_CONFIGS, arch_config
from vqzip.models.spec import MapSpec, lattice_config, lattice_map

__all__ = ["ARCH_CONFIGS", "MapSpec", "VQVAE2", "arch_config", "build", "lattice_config", "lattice_map", "prior_config"]


def __getattr__(name: str):
    if name == "VQVAE2":  # the torch module, imported when first asked for
        from vqzip.models.vqvae2 import VQVAE2

        return VQVAE2
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build(arch: str, cfg: dict):
    """A fresh network (an nn.Module: needs torch) of a registered architecture from its config
    dict; ValueError for an unknown one."""
    from vqzip.models.vqvae2 import VQVAE2

    return {"vqvae2": VQVAE2}[arch](arch_config(arch, cfg))


def prior_config(maps: list[MapSpec], k: int, kind: str | None = None, **kwargs):
    """The config of a prior of kind `kind` (`vqzip.priors.registry`; None: its default) for map
    k: its alphabet, and one conditioning input per map it sees, at that map's stride over its
    own; kwargs set the rest (the kind's own options: channels, blocks, ...)."""
    from vqzip import priors

    m = maps[k]
    return priors.kind(kind or priors.DEFAULT).Config(
        num_codes=m.num_codes, conds=tuple((maps[j].num_codes, maps[j].stride // m.stride) for j in m.conds), **kwargs)

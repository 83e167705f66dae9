"""What the codec needs to know of a model's code maps, whatever its architecture."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MapSpec:
    """One code map of a model, in coding order, and its roles, set by the architecture: the codec,
    RDO, block skipping and the format read these fields and never a map's name.

    A model's maps are grouped by latent (one quantized latent each, at one resolution, index
    `latent` in coding order); a latent holds one map per residual stage (`stage`). A map's prior
    is conditioned on the maps listed in `conds` (indices of earlier maps): the coarser latents and
    the earlier stages of its own.

    skippable: the map may be coded only in blocks (`vqzip.fine_skip`), the rest holding the
    prior's OUT token, which the decoder reads as a zero vector; only a latent's sole stage can be.
    preview: the map decodes alone (`conds` empty) to a preview of the image at 1/preview of its
    size each way (`net.decode_preview`); 0: it does not.
    channels: symbols per position: 1 for a VQ map (codes (B, H, W)); C for a lattice map
    (codes (B, C, H, W), one symbol per element, `vqzip.models.lattice`)."""

    name: str  # for messages and records only
    latent: int
    stage: int
    stride: int  # image pixels per code, each way
    num_codes: int
    conds: tuple[int, ...]
    skippable: bool = False
    preview: int = 0
    channels: int = 1


def lattice_map(maps) -> int | None:
    """The index in `maps` (a model's `MapSpec`s, in coding order) of its lattice map, the one of
    scalar symbols (`channels` > 1, `vqzip.models.lattice`); None for a model without one. A
    model has at most one: the first found is it."""
    return next((k for k, m in enumerate(maps) if m.channels > 1), None)


def lattice_config(net):
    """The `LatticeConfig` of network `net`'s lattice map (any network of the models' contract,
    torch's or `vqzip.inference`'s: its `maps` and the `cfg` of its `quantizers`), None for a
    network without one."""
    k = lattice_map(net.maps)
    return None if k is None else net.quantizers[net.maps[k].latent].cfg

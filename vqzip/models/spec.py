"""What the codec needs to know of a model's code maps, whatever its architecture."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MapSpec:
    """One code map of a model, in coding order.

    A model's maps are grouped in levels (one latent each, at one resolution); a level holds one
    map per residual stage. A map's prior is conditioned on the maps listed in `conds`
    (indices of earlier maps): the coarser levels and the earlier stages of its own level."""

    name: str
    level: int
    stage: int
    stride: int  # image pixels per code, each way
    num_codes: int
    conds: tuple[int, ...]

"""A PixelCNN prior's config (`vqzip.priors.pixelcnn`): its own module, free of torch, so that
reading a model's config.json and walking its exact form (`vqzip.priors.fixedpoint`) need no
training framework."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PixelCNNConfig:
    num_codes: int = 512
    channels: int = 128
    first_kernel: int = 5  # mask-A kernel width; it reaches first_kernel // 2 rows up
    blocks: int = 4  # gated mask-B blocks, each reaching one more row up and column aside
    # per conditioning map, in the order the caller passes them: (its alphabet size, this map's
    # rows per row of it: 2 for the next coarser level, 1 for an earlier stage of the same level)
    conds: tuple[tuple[int, int], ...] = ()
    cond_channels: int = 64

    def __post_init__(self):
        object.__setattr__(self, "conds", tuple((int(k), int(f)) for k, f in self.conds))  # JSON gives lists

    @property
    def reach(self) -> int:
        """Rows above, and columns either side, that a position's logits depend on."""
        return self.first_kernel // 2 + self.blocks

    @property
    def groups(self) -> list[tuple[int, list[int]]]:
        """(factor, indices into conds) of each group of conditioning maps, in order of first appearance."""
        out: dict[int, list[int]] = {}
        for i, (_, f) in enumerate(self.conds):
            out.setdefault(f, []).append(i)
        return list(out.items())

    def to_dict(self) -> dict:
        return asdict(self)

"""PixelCNN prior over a code map, optionally conditioned on a coarser map.

    codes ──pad with OUT──► canvas (H+R, W+2C) ──embed──► mask-A conv ──► gated mask-B blocks
                                                                           ▲ + cond (1x1 per block)
                                              logits (K, H, W) ◄── 1x1 head ┘

All convolutions are valid; the canvas carries R rows above and C columns left and right of
the map, filled with the learned OUT token, so nothing outside the causal window reaches a
position through padding. Training and rate estimation run `forward` over whole maps;
coding evaluates the same layers one wavefront at a time with cached activations
(`priors.decode`), tested against `forward`.

The bottom prior's condition is the top map, turned into features by a small non-causal net
(the decoder knows the whole top map before it starts on the bottom one) and upsampled x2.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from priors.masked import MaskedConv2d


@dataclass(frozen=True)
class PixelCNNConfig:
    num_codes: int = 512
    channels: int = 128
    first_kernel: int = 5  # mask-A kernel width; it reaches first_kernel // 2 rows up
    blocks: int = 4  # gated mask-B blocks, each reaching one more row up and column aside
    cond_codes: int = 0  # size of the conditioning map's alphabet; 0 for none
    cond_channels: int = 64

    @property
    def reach(self) -> int:
        """Rows above, and columns either side, that a position's logits depend on."""
        return self.first_kernel // 2 + self.blocks

    def to_dict(self) -> dict:
        return asdict(self)


class GatedBlock(nn.Module):
    def __init__(self, c: int, cond_channels: int):
        super().__init__()
        self.conv = MaskedConv2d(c, 2 * c, 1, 1, "B")
        self.cond = nn.Conv2d(cond_channels, 2 * c, 1) if cond_channels else None
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, h: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        a = self.conv(h)
        if self.cond is not None:
            a = a + self.cond(_crop_to(cond, a))
        t, s = a.chunk(2, 1)
        return h[:, :, 1:, 1:-1] + self.out(torch.tanh(t) * torch.sigmoid(s))


def _crop_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Crop canvas-aligned x to like's extent. Valid convs eat rows at the top and columns
    evenly left and right, so the surviving region is bottom-aligned and centred."""
    dh, dw = x.shape[-2] - like.shape[-2], x.shape[-1] - like.shape[-1]
    return x[:, :, dh:, dw // 2 : x.shape[-1] - dw // 2]


class PixelCNN(nn.Module):
    def __init__(self, cfg: PixelCNNConfig):
        super().__init__()
        self.cfg = cfg
        c, r = cfg.channels, cfg.first_kernel // 2
        self.out_token = cfg.num_codes
        self.embed = nn.Embedding(cfg.num_codes + 1, c)
        self.first = MaskedConv2d(c, c, r, r, "A")
        cc = cfg.cond_channels if cfg.cond_codes else 0
        self.blocks = nn.ModuleList(GatedBlock(c, cc) for _ in range(cfg.blocks))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, cfg.num_codes, 1))
        if cfg.cond_codes:
            self.cond_net = nn.Sequential(
                nn.Embedding(cfg.cond_codes, cc), _ChannelsFirst(),
                nn.Conv2d(cc, cc, 3, padding=1), nn.ReLU(), nn.Conv2d(cc, cc, 3, padding=1),
            )

    def condition(self, cond_codes: torch.Tensor) -> torch.Tensor:
        """Top map (B, h, w) -> conditioning features at twice its resolution (B, cc, 2h, 2w)."""
        return F.interpolate(self.cond_net(cond_codes), scale_factor=2, mode="nearest")

    def canvas(self, codes: torch.Tensor) -> torch.Tensor:
        """Map (B, H, W) -> canvas (B, H+R, W+2C) with OUT around it."""
        r = self.cfg.reach
        return F.pad(codes, (r, r, r, 0), value=self.out_token)

    def cond_canvas(self, feats: torch.Tensor) -> torch.Tensor:
        """Features (B, cc, H, W) -> canvas-aligned (B, cc, H+R, W+2C), zero outside the map."""
        r = self.cfg.reach
        return F.pad(feats, (r, r, r, 0))

    def forward(self, canvas: torch.Tensor, cond_canvas: torch.Tensor | None = None) -> torch.Tensor:
        """Canvas (B, Hc, Wc) of codes or OUT -> logits (B, K, Hc - R, Wc - 2C).

        Logits at each position depend only on canvas entries above it and left of it in its
        row, within the reach (tested by perturbation in tests/test_priors.py)."""
        if (cond_canvas is None) != (not self.cfg.cond_codes):
            raise ValueError("cond_canvas must be given exactly when the prior is conditional")
        h = self.first(self.embed(canvas).permute(0, 3, 1, 2))
        for block in self.blocks:
            h = block(h, cond_canvas)
        return self.head(h)

    def nll_bits(self, codes: torch.Tensor, cond_codes: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced ideal code length of whole maps (B, H, W), in bits, per map (B,)."""
        cond = self.cond_canvas(self.condition(cond_codes)) if cond_codes is not None else None
        logits = self(self.canvas(codes), cond)
        ce = F.cross_entropy(logits, codes, reduction="none")
        return ce.flatten(1).sum(1) / torch.log(torch.tensor(2.0))


class _ChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)

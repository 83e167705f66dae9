"""PixelCNN prior over a code map, optionally conditioned on maps coded before it.

    codes ──pad with OUT──► canvas (H+R, W+2C) ──embed──► mask-A conv ──► gated mask-B blocks
                                                                           ▲ + cond (1x1 per block
                                              logits (K, H, W) ◄── 1x1 head ┘      and group)

All convolutions are valid; the canvas carries R rows above and C columns left and right of
the map, filled with the learned OUT token, so nothing outside the causal window reaches a
position through padding. Training and rate estimation run `forward` over whole maps;
coding evaluates the same layers one wavefront at a time with cached activations
(`vqzip.priors.decode`), tested against `forward`.

Conditioning maps are known whole before this map is decoded, so a small non-causal net turns
them into features: maps at the same resolution form a group (their embeddings are summed, then
two 3x3 convolutions), and each group's features are repeated up to this map's resolution (x2
for a coarser level, x1 for an earlier residual stage of the same level). Each gated block adds
a 1x1 projection of every group's features.

Its config is `vqzip.priors.pixelcnn_config`'s, which the codec reads without torch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vqzip.priors.masked import MaskedConv2d
from vqzip.priors.pixelcnn_config import PixelCNNConfig


class GatedBlock(nn.Module):
    def __init__(self, c: int, cond_channels: int, groups: int):
        super().__init__()
        self.conv = MaskedConv2d(c, 2 * c, 1, 1, "B")
        self.cond = nn.ModuleList(nn.Conv2d(cond_channels, 2 * c, 1) for _ in range(groups))
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, h: torch.Tensor, conds: list[torch.Tensor]) -> torch.Tensor:
        a = self.conv(h)
        for proj, cond in zip(self.cond, conds):
            a = a + proj(_crop_to(cond, a))
        t, s = a.chunk(2, 1)
        return h[:, :, 1:, 1:-1] + self.out(torch.tanh(t) * torch.sigmoid(s))


def _crop_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Crop canvas-aligned x to like's extent. Valid convs eat rows at the top and columns
    evenly left and right, so the surviving region is bottom-aligned and centred."""
    dh, dw = x.shape[-2] - like.shape[-2], x.shape[-1] - like.shape[-1]
    return x[:, :, dh:, dw // 2 : x.shape[-1] - dw // 2]


class CondNet(nn.Module):
    """Maps at one resolution (B, h, w) each -> features (B, cc, h, w): their embeddings summed,
    3x3 conv, ReLU, 3x3 conv (zero padding)."""

    def __init__(self, alphabets: list[int], cc: int):
        super().__init__()
        self.embeds = nn.ModuleList(nn.Embedding(k, cc) for k in alphabets)
        self.c1 = nn.Conv2d(cc, cc, 3, padding=1)
        self.c2 = nn.Conv2d(cc, cc, 3, padding=1)

    def embed(self, maps: list[torch.Tensor]) -> torch.Tensor:
        return sum(e(m) for e, m in zip(self.embeds, maps)).permute(0, 3, 1, 2)

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        return self.c2(F.relu(self.c1(self.embed(maps))))


class PixelCNN(nn.Module):
    def __init__(self, cfg: PixelCNNConfig):
        super().__init__()
        self.cfg = cfg
        c, r = cfg.channels, cfg.first_kernel // 2
        self.out_token = cfg.num_codes
        self.embed = nn.Embedding(cfg.num_codes + 1, c)
        self.first = MaskedConv2d(c, c, r, r, "A")
        groups = cfg.groups
        self.blocks = nn.ModuleList(GatedBlock(c, cfg.cond_channels, len(groups)) for _ in range(cfg.blocks))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, cfg.num_codes, 1))
        self.cond_nets = nn.ModuleList(CondNet([cfg.conds[i][0] for i in idx], cfg.cond_channels) for _, idx in groups)

    def condition(self, conds: list[torch.Tensor]) -> list[torch.Tensor]:
        """Conditioning maps (B, H/f, W/f), as in cfg.conds -> one feature map (B, cc, H, W) per group."""
        if len(conds) != len(self.cfg.conds):
            raise ValueError(f"this prior takes {len(self.cfg.conds)} conditioning maps, not {len(conds)}")
        return [F.interpolate(net([conds[i] for i in idx]), scale_factor=f, mode="nearest") if f > 1
                else net([conds[i] for i in idx]) for net, (f, idx) in zip(self.cond_nets, self.cfg.groups)]

    def canvas(self, codes: torch.Tensor) -> torch.Tensor:
        """Map (B, H, W) -> canvas (B, H+R, W+2C) with OUT around it."""
        r = self.cfg.reach
        return F.pad(codes, (r, r, r, 0), value=self.out_token)

    def cond_canvas(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Features (B, cc, H, W) per group -> canvas-aligned (B, cc, H+R, W+2C), zero outside the map."""
        r = self.cfg.reach
        return [F.pad(f, (r, r, r, 0)) for f in feats]

    def forward(self, canvas: torch.Tensor, cond_canvas: list[torch.Tensor] = ()) -> torch.Tensor:
        """Canvas (B, Hc, Wc) of codes or OUT, and `cond_canvas` of the conditioning features ->
        logits (B, K, Hc - R, Wc - 2C).

        Logits at each position depend only on canvas entries above it and left of it in its
        row, within the reach (tested by perturbation in tests/test_priors.py)."""
        if len(cond_canvas) != len(self.cond_nets):
            raise ValueError(f"this prior takes {len(self.cond_nets)} conditioning feature maps, not {len(cond_canvas)}")
        h = self.first(self.embed(canvas).permute(0, 3, 1, 2))
        for block in self.blocks:
            h = block(h, cond_canvas)
        return self.head(h)

    def cond_canvas_crop(self, conds: list[torch.Tensor], y: int, x: int, size: int) -> list[torch.Tensor]:
        """Rows [y, y+size+R) and columns [x, x+size+2R) of `self.cond_canvas(self.condition(conds))`
        (one tensor per group), computed from just the conditioning codes they depend on (the
        condition nets reach 2 codes)."""
        r = self.cfg.reach
        a0, a1, b0, b1 = y - r, y + size, x - r, x + size + r  # map coordinates of the crop
        out = []
        for net, (f, idx) in zip(self.cond_nets, self.cfg.groups):
            maps = [conds[i] for i in idx]
            (hg, wg), (h, w) = maps[0].shape, (f * maps[0].shape[0], f * maps[0].shape[1])
            ca0, ca1, cb0, cb1 = max(a0, 0), min(a1, h), max(b0, 0), min(b1, w)
            t0, t1 = max(ca0 // f - 2, 0), min(-(-ca1 // f) + 2, hg)
            u0, u1 = max(cb0 // f - 2, 0), min(-(-cb1 // f) + 2, wg)
            feats = net([m[None, t0:t1, u0:u1] for m in maps])
            if f > 1:
                feats = F.interpolate(feats, scale_factor=f, mode="nearest")
            part = feats[0][:, ca0 - f * t0 : ca1 - f * t0, cb0 - f * u0 : cb1 - f * u0]
            out.append(F.pad(part, (cb0 - b0, b1 - cb1, ca0 - a0, a1 - ca1)))
        return out

    def crops(self, codes: list[torch.Tensor], conds: list[list[torch.Tensor]], corners: list[tuple[int, int, int]],
              size: int) -> tuple[tuple, torch.Tensor]:
        """Training crops (`vqzip.priors.registry.FloatPrior`): each crop's canvas (B, size + R,
        size + 2R), its conditioning canvases (one per group), and its codes (B, size, size)."""
        r = self.cfg.reach
        canvases, targets, feats = [], [], []
        for i, y, x in corners:
            canvases.append(self.canvas(codes[i][None])[0, y : y + size + r, x : x + size + 2 * r])
            targets.append(codes[i][y : y + size, x : x + size])
            feats.append(self.cond_canvas_crop(conds[i], y, x, size))
        return (torch.stack(canvases), [torch.stack(g) for g in zip(*feats)]), torch.stack(targets)

    def nll_bits(self, codes: torch.Tensor, conds: list[torch.Tensor] = ()) -> torch.Tensor:
        """Teacher-forced ideal code length of whole maps (B, H, W), in bits, per map (B,)."""
        logits = self(self.canvas(codes), self.cond_canvas(self.condition(list(conds))))
        ce = F.cross_entropy(logits, codes, reduction="none")
        return ce.flatten(1).sum(1) / torch.log(torch.tensor(2.0))

"""Masked convolutions for raster-order autoregressive models (van den Oord et al. 2016, PixelCNN).

Kernels here cover only the rows above and the current row: a (r+1) x (2c+1) kernel whose
last row is masked right of the centre (type B) or from the centre on (type A, for the first
layer, so a position never sees its own code). They are *valid* convolutions: callers pad the
input explicitly (see `vqzip.priors.pixelcnn`), so a small window and a whole map go through the
same arithmetic, and nothing outside the causal window can leak in through padding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskedConv2d(nn.Conv2d):
    def __init__(self, in_ch: int, out_ch: int, rows_above: int, cols_each_side: int, mask_type: str):
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', not {mask_type!r}")
        super().__init__(in_ch, out_ch, (rows_above + 1, 2 * cols_each_side + 1))
        self.rows_above, self.cols_each_side, self.mask_type = rows_above, cols_each_side, mask_type
        mask = torch.ones_like(self.weight)
        first_masked = cols_each_side + (mask_type == "B")
        mask[:, :, rows_above, first_masked:] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, out, H - rows_above, W - 2 * cols_each_side)."""
        return F.conv2d(x, self.weight * self.mask, self.bias)

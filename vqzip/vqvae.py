"""Hierarchical VQ-VAE (Razavi et al. 2019, "Generating Diverse High-Fidelity Images with VQ-VAE-2").

    x ──enc_b──► h_b (1/4) ──enc_t──► z_t (1/8) ──VQ──► top codes
                  │                                   │ dec_t
                  └──────────── concat ◄──────────────┘
                                 │ pre_b
                                 ▼
                            z_b (1/4) ──VQ──► bottom codes
    x̂ ◄──dec── concat(up(q_t), q_b)
    preview (1/4) ◄──head── dec_t(q_t)

The preview head makes an image from the top codes alone; training it (weight `preview`) pushes a
coarse picture into the top level, so a file's top map can be decoded by itself for a fast preview.

Fully convolutional: the codec pads images to a multiple of `stride` and crops back.
No entropy coding here; `encode` gives the two code maps and `decode` rebuilds from them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from vqzip.quantize import VectorQuantizer


@dataclass(frozen=True)
class VQVAEConfig:
    channels: int = 128
    code_dim: int = 64
    top_codes: int = 512
    bottom_codes: int = 512
    res_blocks: int = 2
    decoder_res_blocks: int = 3  # the decoder carries the quality; give it a little more depth
    commitment: float = 0.25
    decay: float = 0.99
    preview: float = 0.5  # weight of the preview head's loss (1/4-resolution image from top codes)

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c // 2, 3, padding=1), nn.ReLU(), nn.Conv2d(c // 2, c, 1))

    def forward(self, x):
        return x + self.body(x)


def _res(c: int, n: int) -> list[nn.Module]:
    return [ResBlock(c) for _ in range(n)] + [nn.ReLU()]


class VQVAE(nn.Module):
    def __init__(self, cfg: VQVAEConfig):
        super().__init__()
        self.cfg = cfg
        c, d = cfg.channels, cfg.code_dim
        self.enc_b = nn.Sequential(
            nn.Conv2d(3, c // 2, 4, 2, 1), nn.ReLU(), nn.Conv2d(c // 2, c, 4, 2, 1), *_res(c, cfg.res_blocks)
        )
        self.enc_t = nn.Sequential(nn.Conv2d(c, c, 4, 2, 1), *_res(c, cfg.res_blocks), nn.Conv2d(c, d, 1))
        self.dec_t = nn.Sequential(nn.Conv2d(d, c, 3, padding=1), *_res(c, cfg.res_blocks), nn.ConvTranspose2d(c, c, 4, 2, 1))
        self.pre_b = nn.Conv2d(2 * c, d, 1)
        self.up_t = nn.ConvTranspose2d(d, d, 4, 2, 1)
        self.dec = nn.Sequential(
            nn.Conv2d(2 * d, c, 3, padding=1),
            *_res(c, cfg.decoder_res_blocks),
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(c // 2, 3, 4, 2, 1),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c // 2, 3, padding=1), nn.ReLU(), nn.Conv2d(c // 2, 3, 1))
        self.vq_t = VectorQuantizer(cfg.top_codes, d, decay=cfg.decay, commitment=cfg.commitment)
        self.vq_b = VectorQuantizer(cfg.bottom_codes, d, decay=cfg.decay, commitment=cfg.commitment)

    @staticmethod
    def normalize(x: torch.Tensor) -> torch.Tensor:
        """uint8-range float (B, 3, H, W) -> model input range."""
        return x / 255.0 - 0.5

    def forward(self, x: torch.Tensor) -> dict:
        """x: normalized (B, 3, H, W), H and W multiples of 8. Returns x_hat, the 1/4-resolution
        preview, codes and the VQ loss."""
        h_b = self.enc_b(x)
        q_t, top, loss_t = self.vq_t(self.enc_t(h_b))
        d_t = self.dec_t(q_t)
        q_b, bottom, loss_b = self.vq_b(self.pre_b(torch.cat([h_b, d_t], 1)))
        return {"x_hat": self._decode(q_t, q_b), "preview": self.head(d_t), "top": top, "bottom": bottom,
                "vq_loss": loss_t + loss_b}

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized image (B, 3, H, W) -> (top codes (B, H/8, W/8), bottom codes (B, H/4, W/4))."""
        h_b = self.enc_b(x)
        top = self.vq_t.indices(self.enc_t(h_b))
        bottom = self.vq_b.indices(self.pre_b(torch.cat([h_b, self.dec_t(self.vq_t.lookup(top))], 1)))
        return top, bottom

    @torch.no_grad()
    def decode(self, top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """Code maps -> normalized reconstruction (B, 3, H, W)."""
        return self._decode(self.vq_t.lookup(top), self.vq_b.lookup(bottom))

    @torch.no_grad()
    def decode_preview(self, top: torch.Tensor) -> torch.Tensor:
        """Top codes (B, h, w) -> normalized preview (B, 3, 2h, 2w): the image at 1/4 resolution."""
        return self.head(self.dec_t(self.vq_t.lookup(top)))

    def _decode(self, q_t: torch.Tensor, q_b: torch.Tensor) -> torch.Tensor:
        return self.dec(torch.cat([self.up_t(q_t), q_b], 1))

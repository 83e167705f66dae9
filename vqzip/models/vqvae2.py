"""Hierarchical VQ-VAE (Razavi et al. 2019, "Generating Diverse High-Fidelity Images with VQ-VAE-2"),
with residual stages at the bottom latent and an optional fine latent.

    x ──enc_b──► h_b (1/4) ──enc_t──► z_t (1/8) ──VQ──► top codes
     │ (1/2: h_h) │                                   │ dec_t
     │            └──────────── concat ◄──────────────┘
     │                           │ pre_b
     │                           ▼
     │                      z_b (1/4) ──residual VQ──► bottom codes, stage 0, 1, ... (`bottom_stages`)
     │      x̂ ◄──dec── concat(up(q_t), q_b)          q_b: the sum of the stages' vectors coded
     │
     │   with `fine_stages`: dec stops at 1/2 resolution (m), and
     └──► concat(h_h, m) ──pre_f──► z_f (1/2) ──VQ──► fine codes;  x̂ ◄──dec_f── concat(m, q_f)
         (with a lattice `fine_quantizer`: pre_f three 3x3 convolutions, z_f = y of C channels,
          q_f = y_hat; `vqzip.models.lattice`)
    preview (1/4) ◄──head── dec_t(q_t)

Code maps, in coding order: "top", then "bottom" (stage 0), "bottom.1", ..., then "fine" (stage
0), "fine.1", ... Each map's prior is conditioned on every map before it: the coarser latents
(x2, x4) and the earlier stages (same resolution). A file may code any prefix of the maps that
reaches the bottom latent (training drops stages at random, and the fine latent whole, so that the
decoder does well with fewer); with `bottom_stages=1` and no fine latent this is vqzip 0.2's model
exactly.

The fine latent codes at a quarter of the image's pixels what the coarser latents left: it
sees the decoder's own 1/2-resolution picture of them, as the bottom latent sees the top's.
It adds resolution rather than depth, which is where bits buy the most quality (on the
validation split, coding at a finer scale gained 2.4 dB per doubling of rate where a second
bottom stage gained 1.3). A fine latent of one stage is skippable in blocks (`MapSpec.skippable`):
its zero vector is the coarser maps' own decode there.

The preview head makes an image from the top codes alone; training it (weight `preview`) pushes a
coarse picture into the top latent, so a file's top map can be decoded by itself for a fast
preview (`MapSpec.preview`).

Every latent's quantizer is of the kind the config names (`quantizer`, `vqzip.models.quantizers`):
by default the EMA VQ, in residual stages.

Fully convolutional: the codec pads images to a multiple of `STRIDE` and crops back.
No entropy coding here. The codec runs the network as `graphs()`, pure functions of float
arrays between the codebook lookups (`vqzip.inference`): exported to ONNX, or run as they are
by the torch backend.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from vqzip.models import quantizers
from vqzip.models.configs import VQVAE2Config

class ResBlock(nn.Module):
    def __init__(self, c: int, padding: str):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c // 2, 3, padding=1, padding_mode=padding), nn.ReLU(),
                                  nn.Conv2d(c // 2, c, 1))

    def forward(self, x):
        return x + self.body(x)


class VQVAE2(nn.Module):
    ARCH = "vqvae2"  # its name in a model's config.json
    STRIDE = VQVAE2Config.STRIDE
    Config = VQVAE2Config

    def __init__(self, cfg: VQVAE2Config):
        super().__init__()
        self.cfg = cfg
        c, d, pad = cfg.channels, cfg.code_dim, cfg.padding

        def conv(i, o, k, s=1, p=0):
            return nn.Conv2d(i, o, k, s, p, padding_mode=pad)

        def res(n):
            return [ResBlock(c, pad) for _ in range(n)] + [nn.ReLU()]

        self.enc_b = nn.Sequential(conv(3, c // 2, 4, 2, 1), nn.ReLU(), conv(c // 2, c, 4, 2, 1), *res(cfg.res_blocks))
        self.enc_t = nn.Sequential(conv(c, c, 4, 2, 1), *res(cfg.res_blocks), nn.Conv2d(c, d, 1))
        self.dec_t = nn.Sequential(conv(d, c, 3, p=1), *res(cfg.res_blocks), nn.ConvTranspose2d(c, c, 4, 2, 1))
        self.pre_b = nn.Conv2d(2 * c, d, 1)
        self.up_t = nn.ConvTranspose2d(d, d, 4, 2, 1)
        self.dec = nn.Sequential(
            conv(2 * d, c, 3, p=1),
            *res(cfg.decoder_res_blocks),
            nn.ConvTranspose2d(c, c // 2, 4, 2, 1),
            nn.ReLU(),
            *([] if cfg.fine_stages else [nn.ConvTranspose2d(c // 2, 3, 4, 2, 1)]),
        )
        self.head = nn.Sequential(nn.ReLU(), conv(c, c // 2, 3, p=1), nn.ReLU(), nn.Conv2d(c // 2, 3, 1))
        self.vq_t = quantizers.build(cfg.quantizer, 1, cfg.top_codes, d)
        self.vq_b = quantizers.build(cfg.quantizer, cfg.bottom_stages, cfg.bottom_codes, d)
        self.quantizers = (self.vq_t, self.vq_b)  # one per latent, in coding order (`quantizers.LatentQuantizer`)
        self.maps = cfg.maps()
        if cfg.fine_stages:
            h, lattice = c // 2, cfg.fine_quantizer
            if lattice is None:
                f = d
                self.pre_f = nn.Conv2d(2 * h, d, 1)
            else:  # the prototype's analysis: y must carry what m lacks, at every rate
                f = lattice.channels
                self.pre_f = nn.Sequential(conv(2 * h, h, 3, p=1), nn.ReLU(), conv(h, h, 3, p=1), nn.ReLU(),
                                           conv(h, f, 3, p=1))
            self.dec_f = nn.Sequential(conv(h + f, h, 3, p=1), *[ResBlock(h, pad) for _ in range(cfg.fine_res_blocks)],
                                       nn.ReLU(), nn.ConvTranspose2d(h, 3, 4, 2, 1))
            self.vq_f = quantizers.build(lattice or cfg.quantizer, cfg.fine_stages, cfg.fine_codes, f, optional=True)
            self.quantizers += (self.vq_f,)

    @staticmethod
    def normalize(x: torch.Tensor) -> torch.Tensor:
        """uint8-range float (B, 3, H, W) -> model input range."""
        return x / 255.0 - 0.5

    def forward(self, x: torch.Tensor, anchor: float | None = None) -> dict:
        """x: normalized (B, 3, H, W), H and W multiples of STRIDE. Returns x_hat, the 1/4-resolution
        preview, the code maps, the VQ loss and, with a fine latent, z_f (its vectors before
        quantization: a lattice's y, whose rate training computes). anchor: the lattice's rate
        anchor (`vqzip.models.lattice`), which a lattice fine latent needs and others refuse."""
        h_h = self.enc_h(x)
        h_b = self.enc_q(h_h)
        q_t, top, loss_t = self.vq_t(self.enc_t(h_b))
        d_t = self.dec_t(q_t)
        q_b, bottom, loss_b = self.vq_b(self.pre_b(torch.cat([h_b, d_t], 1)))
        m = self.dec(torch.cat([self.up_t(q_t), q_b], 1))
        codes, vq_loss = top + bottom, loss_t + loss_b
        out = {"preview": self.head(d_t)}
        if self.cfg.fine_stages:
            m, out["z_f"], fine, loss_f = self.fine(h_h, m, anchor)
            codes, vq_loss = codes + fine, vq_loss + loss_f
        return {**out, "x_hat": m, "codes": codes, "vq_loss": vq_loss}

    def fine(self, h_h: torch.Tensor, m: torch.Tensor, anchor: float | None = None):
        """The fine latent's part of `forward`, from the encoder's 1/2-resolution features and
        the coarse decode m: (x_hat, z_f, its code maps, its quantizer's loss). anchor: the
        lattice's rate anchor, which a lattice fine latent needs and others refuse."""
        if (anchor is not None) != (self.cfg.fine_quantizer is not None):
            raise ValueError("a lattice fine latent needs its anchor, and only it takes one")
        z_f = self.pre_f(torch.cat([h_h, m], 1))
        q_f, codes, loss = self.vq_f(z_f) if anchor is None else self.vq_f(z_f, anchor=anchor)
        return self.dec_f(torch.cat([m, q_f], 1)), z_f, codes, loss

    def graphs(self) -> dict[str, Callable[..., tuple[torch.Tensor, ...]]]:
        """The functions the codec runs (their inputs and outputs: `VQVAE2Config.graphs`), each of float
        (B, C, H, W) tensors to a tuple of them; the codebook lookups and searches between them
        are the codec's (`vqzip.inference.network`). With a fine latent, synthesis_coarse is
        synthesis with q_f zero: dec_f's first convolution takes only m's half of its weights (a
        quarter less decoder time at 2 maps; the same pixels, bit for bit, on vqz-l3)."""
        def features(x):
            h_h = self.enc_h(x)
            return h_h, self.enc_q(h_h)

        def synthesis_coarse(m):
            first = self.dec_f[0]
            return (self.dec_f[1:](first._conv_forward(m, first.weight[:, : m.shape[1]], first.bias)),)

        out = {
            "features": features,
            "latent_top": lambda h_b: (self.enc_t(h_b),),
            "latent_bottom": lambda h_b, q_t: (self.pre_b(torch.cat([h_b, self.dec_t(q_t)], 1)),),
            "coarse": lambda q_t, q_b: (self.dec(torch.cat([self.up_t(q_t), q_b], 1)),),
            "preview": lambda q_t: (self.head(self.dec_t(q_t)),),
        }
        if self.cfg.fine_stages:
            out.update(latent_fine=lambda h_h, m: (self.pre_f(torch.cat([h_h, m], 1)),),
                       synthesis=lambda m, q_f: (self.dec_f(torch.cat([m, q_f], 1)),),
                       synthesis_coarse=synthesis_coarse)
        return out

    def enc_h(self, x: torch.Tensor) -> torch.Tensor:
        """enc_b's layers to 1/2 resolution."""
        return self.enc_b[1](self.enc_b[0](x))

    def enc_q(self, h_h: torch.Tensor) -> torch.Tensor:
        """enc_b's layers from 1/2 on to 1/4 resolution."""
        for layer in self.enc_b[2:]:
            h_h = layer(h_h)
        return h_h

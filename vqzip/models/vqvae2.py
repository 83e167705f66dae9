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
No entropy coding here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import nn

from vqzip.models import quantizers
from vqzip.models.quantize import VQConfig
from vqzip.models.spec import MapSpec


@dataclass(frozen=True)
class VQVAE2Config:
    channels: int = 128
    code_dim: int = 64
    top_codes: int = 512
    bottom_codes: int = 512
    res_blocks: int = 2
    decoder_res_blocks: int = 3  # the decoder carries the quality; give it a little more depth
    preview: float = 0.5  # weight of the preview head's loss (1/4-resolution image from top codes)
    bottom_stages: int = 1  # residual VQ stages at the bottom latent
    padding: str = "zeros"  # of the convolutions: "replicate" keeps image borders (and tiny images) from reading as gray
    fine_stages: int = 0  # residual VQ stages of a fine latent at 1/2 resolution; 0: none
    fine_codes: int = 512
    fine_res_blocks: int = 1
    # every latent's quantizer: a config of a kind of `vqzip.models.quantizers` (the EMA VQ's
    # commitment, decay and rate by default)
    quantizer: object = field(default_factory=VQConfig)

    def __post_init__(self):
        if self.fine_stages and self.bottom_stages != 1:
            raise ValueError("a fine latent follows a bottom latent of one stage")

    @classmethod
    def from_dict(cls, d: dict) -> VQVAE2Config:
        """The config of config.json's `net` dict (its quantizer read by
        `quantizers.config_from_net`); TypeError or ValueError where it is not one."""
        quantizer, rest = quantizers.config_from_net(d)
        return cls(**rest, quantizer=quantizer)

    def to_dict(self) -> dict:
        """`from_dict`'s inverse: the default quantizer's fields flat, as before kinds existed."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "quantizer"}
        return {**d, **quantizers.config_to_net(self.quantizer)}


class ResBlock(nn.Module):
    def __init__(self, c: int, padding: str):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c // 2, 3, padding=1, padding_mode=padding), nn.ReLU(),
                                  nn.Conv2d(c // 2, c, 1))

    def forward(self, x):
        return x + self.body(x)


class VQVAE2(nn.Module):
    STRIDE = 8  # image pixels per top code, each way: images are padded to a multiple of it
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
        self.maps = [MapSpec("top", 0, 0, self.STRIDE, cfg.top_codes, (), preview=4)] + [
            MapSpec("bottom" if s == 0 else f"bottom.{s}", 1, s, 4, cfg.bottom_codes, tuple(range(s + 1)))
            for s in range(cfg.bottom_stages)]
        if cfg.fine_stages:
            h, before = c // 2, len(self.maps)
            self.pre_f = nn.Conv2d(2 * h, d, 1)
            self.dec_f = nn.Sequential(conv(h + d, h, 3, p=1), *[ResBlock(h, pad) for _ in range(cfg.fine_res_blocks)],
                                       nn.ReLU(), nn.ConvTranspose2d(h, 3, 4, 2, 1))
            self.vq_f = quantizers.build(cfg.quantizer, cfg.fine_stages, cfg.fine_codes, d, optional=True)
            self.quantizers += (self.vq_f,)
            # Skipped positions zero the fine vectors of every stage (`decode`): only a fine
            # latent of one stage can be coded in blocks.
            self.maps += [MapSpec("fine" if s == 0 else f"fine.{s}", 2, s, 2, cfg.fine_codes, tuple(range(before + s)),
                                  skippable=cfg.fine_stages == 1)
                          for s in range(cfg.fine_stages)]

    @staticmethod
    def normalize(x: torch.Tensor) -> torch.Tensor:
        """uint8-range float (B, 3, H, W) -> model input range."""
        return x / 255.0 - 0.5

    def forward(self, x: torch.Tensor) -> dict:
        """x: normalized (B, 3, H, W), H and W multiples of STRIDE. Returns x_hat, the 1/4-resolution
        preview, the code maps and the VQ loss."""
        h_h = self.enc_h(x)
        h_b = self.enc_q(h_h)
        q_t, top, loss_t = self.vq_t(self.enc_t(h_b))
        d_t = self.dec_t(q_t)
        q_b, bottom, loss_b = self.vq_b(self.pre_b(torch.cat([h_b, d_t], 1)))
        m = self.dec(torch.cat([self.up_t(q_t), q_b], 1))
        codes, vq_loss = top + bottom, loss_t + loss_b
        if self.cfg.fine_stages:
            q_f, fine, loss_f = self.vq_f(self.pre_f(torch.cat([h_h, m], 1)))
            m, codes, vq_loss = self.dec_f(torch.cat([m, q_f], 1)), codes + fine, vq_loss + loss_f
        return {"x_hat": m, "preview": self.head(d_t), "codes": codes, "vq_loss": vq_loss}

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized x (B, 3, H, W) -> what every latent is computed from: the
        encoder's features at 1/2 and at 1/4 resolution."""
        h_h = self.enc_h(x)
        return h_h, self.enc_q(h_h)

    @torch.no_grad()
    def latent(self, index: int, feats: tuple[torch.Tensor, torch.Tensor], coarser: list[torch.Tensor]) -> torch.Tensor:
        """The vectors latent `index` quantizes (B, D, h, w), from `features`, given the code maps
        of the coarser latents (in coding order)."""
        h_h, h_b = feats
        if index == 0:
            return self.enc_t(h_b)
        if index == 1:
            return self.pre_b(torch.cat([h_b, self.dec_t(self.vq_t.lookup(coarser[:1]))], 1))
        return self.pre_f(torch.cat([h_h, self._coarse(coarser)], 1))

    @torch.no_grad()
    def decode(self, codes: list[torch.Tensor]) -> torch.Tensor:
        """Code maps (a prefix of `maps` from the first bottom stage on) -> normalized
        reconstruction (B, 3, H, W). Fine positions holding fine_codes (the priors' OUT token)
        are skipped: their fine vectors are zero."""
        m = self._coarse(codes)
        if not self.cfg.fine_stages:
            return m
        fine = codes[1 + self.cfg.bottom_stages :]
        if fine:
            skipped = fine[0] >= self.cfg.fine_codes  # OUT: a block the file skips (`vqzip.fine_skip`)
            if not skipped.any():
                return self.dec_f(torch.cat([m, self.vq_f.lookup(fine)], 1))
            q_f = self.vq_f.lookup([c.clamp(max=self.cfg.fine_codes - 1) for c in fine])
            return self.dec_f(torch.cat([m, q_f.masked_fill(skipped[:, None], 0)], 1))
        # No fine codes: q_f is zero, so dec_f's first convolution needs only m's half of its
        # weights (a quarter less decoder time at 2 maps; the same pixels, bit for bit, on vqz-l3).
        first = self.dec_f[0]
        return self.dec_f[1:](first._conv_forward(m, first.weight[:, : m.shape[1]], first.bias))

    @torch.no_grad()
    def decode_preview(self, top: torch.Tensor) -> torch.Tensor:
        """The preview map's codes, top (B, h, w) -> normalized preview (B, 3, 2h, 2w): the image
        at 1/4 resolution (`maps[0].preview`)."""
        return self.head(self.dec_t(self.vq_t.lookup([top])))

    def enc_h(self, x: torch.Tensor) -> torch.Tensor:
        """enc_b's layers to 1/2 resolution."""
        return self.enc_b[1](self.enc_b[0](x))

    def enc_q(self, h_h: torch.Tensor) -> torch.Tensor:
        """enc_b's layers from 1/2 on to 1/4 resolution."""
        for layer in self.enc_b[2:]:
            h_h = layer(h_h)
        return h_h

    def _coarse(self, codes: list[torch.Tensor]) -> torch.Tensor:
        """`dec` of the top and bottom maps among codes: the image, or with a fine latent the
        decoder's 1/2-resolution features."""
        q_b = self.vq_b.lookup(codes[1 : 1 + self.cfg.bottom_stages])
        return self.dec(torch.cat([self.up_t(self.vq_t.lookup(codes[:1])), q_b], 1))

    @staticmethod
    def from_v02(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A vqzip 0.2 VQ-VAE's state (one quantizer per latent) under this module's names."""
        return {k.replace("vq_t.", "vq_t.stages.0.", 1).replace("vq_b.", "vq_b.stages.0.", 1)
                if k.startswith(("vq_t.", "vq_b.")) else k: v for k, v in state.items()}

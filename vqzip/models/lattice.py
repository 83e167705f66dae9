"""The lattice: a fine latent scalar-quantized with a learned per-channel gain for each rate
anchor (issue 35's design; bench/design35/lattice.py is its prototype).

    y (B, C, H, W) ──× g──► t ──round, clip ±L──► q ──+L──► symbols 0..2L (codes (B, C, H, W))
    y_hat = q / g                              g = 2 ** (log2_gain[anchor] / 2**12) per channel

One network covers every rate: anchor k's gains are trained for the multiplier lambda_k
(`LatticeConfig.anchors`), and a fractional anchor lies between two, its log2 gains
interpolated (`LatticeConfig.gains_at`). The gains that reach the prior are integers
(`fixed_gains`), so that encoder and decoder compute the same probabilities; out of training the
quantizer scales by the floats those integers give, as the codec's numpy codebook does
(`vqzip.inference.codebooks.LatticeCodebook`), and in training by the float parameters
themselves, so that they learn.

Training rounds with a straight-through gradient for the decoder and gives the rate its own
input, t plus uniform noise (`noisy`): the prior's bits (a discretized Gaussian,
`vqzip.priors.gaussian_float`) are computed by the training loop, as a quantizer knows nothing
of bits. There is no commitment loss: the gains move the rounding to the latent, not the
latent to a codebook.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from vqzip.models.configs import ANCHOR_STEPS, GAIN_BITS, LatticeConfig


def build(cfg: LatticeConfig, maps: int, num_codes: int, dim: int, *, optional: bool = False) -> LatticeQuantizer:
    """The quantizer kind's latent (`vqzip.models.quantizers`): one map of cfg.channels channels
    of cfg.num_codes symbols. `optional` is accepted and changes nothing: training never drops
    the lattice (its lowest anchor is its cheap end); a file that leaves it out decodes y_hat = 0."""
    if maps != 1 or num_codes != cfg.num_codes or dim != cfg.channels:
        raise ValueError(f"a lattice latent is one map of {cfg.channels} channels of {cfg.num_codes} symbols, "
                         f"not {maps} of {dim} channels of {num_codes}")
    return LatticeQuantizer(cfg)


class LatticeQuantizer(nn.Module):
    """A `LatentQuantizer` whose methods take the rate anchor (`anchor=`, 0..anchors-1, fractional
    between anchors). Its one code map is (B, C, H, W) int64 of symbols q + L in 0..2L."""

    def __init__(self, cfg: LatticeConfig):
        super().__init__()
        self.cfg, self.max_symbol = cfg, cfg.max_symbol
        # gains start apart as sqrt(lambda) (the step that balances lambda at high rate scales so),
        # twice the unit at the first anchor
        start = [0.5 * math.log2(a / cfg.anchors[0]) + 1.0 for a in cfg.anchors]
        self.log2_gain = nn.Parameter(torch.tensor(start)[:, None].repeat(1, cfg.channels))

    def fixed_gains(self) -> torch.Tensor:
        """The log2 gains as the prior and the codec take them: int32 (anchors, C), units of 2**-12."""
        return torch.tensor(self.cfg.fixed_gains(self.log2_gain.detach().cpu().tolist()), dtype=torch.int32)

    def log2_gain_at(self, anchor: float) -> torch.Tensor:
        """log2 g (C,) float of a (fractional) anchor: in training the float parameters'
        interpolation (they learn through it); else the integers' (`LatticeConfig.gains_at`),
        divided by 2**12."""
        if self.training:
            lo, r = self.cfg.anchor_position(anchor)
            return (1 - r / ANCHOR_STEPS) * self.log2_gain[lo] + r / ANCHOR_STEPS * self.log2_gain[lo + 1]
        ints, _ = self._codec_gains(anchor)
        return torch.tensor(ints, dtype=torch.float32, device=self.log2_gain.device) / (1 << GAIN_BITS)

    def gain(self, anchor: float) -> torch.Tensor:
        """g (1, C, 1, 1) float32 of a (fractional) anchor: out of training, the codec's floats
        from the integers, bit for bit."""
        if self.training:
            return torch.exp2(self.log2_gain_at(anchor).float())[None, :, None, None]
        _, gains = self._codec_gains(anchor)
        return torch.tensor(gains, dtype=torch.float32, device=self.log2_gain.device)[None, :, None, None]

    def _codec_gains(self, anchor: float) -> tuple[list[int], list[float]]:
        return self.cfg.gains_at(self.cfg.fixed_gains(self.log2_gain.detach().cpu().tolist()), anchor)

    def residual_indices(self, z: torch.Tensor, *, anchor: float) -> list[torch.Tensor]:
        """The encoder's one code map of y = z (B, C, H, W): clip(round(y g), -L, L) + L."""
        t = z.float() * self.gain(anchor)
        return [torch.round(t).clamp(-self.max_symbol, self.max_symbol).long() + self.max_symbol]

    def lookup(self, codes: list[torch.Tensor], *, anchor: float) -> torch.Tensor:
        """[codes (B, C, H, W)] -> y_hat = (codes - L) / g, float32: the decoder's."""
        (c,) = codes
        return (c - self.max_symbol).float() / self.gain(anchor)

    def noisy(self, z: torch.Tensor, *, anchor: float) -> torch.Tensor:
        """The rate's input in training: y g plus uniform noise in ±1/2 (float32), whose
        discretized-Gaussian bits stand in for those of the rounded q, with a gradient to y and g."""
        t = z.float() * self.gain(anchor)
        return t + torch.empty_like(t).uniform_(-0.5, 0.5)

    def forward(self, z: torch.Tensor, *, anchor: float) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """(y_hat with a straight-through gradient to z and the gains, [codes], a zero loss): the
        decoder trains on the rounded values it will see. Out of training, y_hat is
        `lookup(residual_indices(z))` exactly."""
        with torch.autocast(z.device.type, enabled=False):
            g = self.gain(anchor)
            t = z.float() * g
            q = torch.round(t).clamp(-self.max_symbol, self.max_symbol)
            y_hat = (t + (q - t).detach()) / g if self.training else q / g  # eval: `lookup`'s, bit for bit
            return y_hat, [q.detach().long() + self.max_symbol], z.new_zeros((), dtype=torch.float32)


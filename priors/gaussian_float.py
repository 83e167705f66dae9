"""The discretized-Gaussian prior's float side (the kind: `vqzip.priors.gaussian`): the module
training fits with the lattice quantizer, and its calibration to the exact form's tensors. Torch's,
so kept apart from the config and the exact form, which the codec reads without it."""
from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from vqzip.priors.calibration import _affine, _budget, _cond_net, _cond_ranges, _fixed, _int8
from vqzip.priors.gaussian import GAIN_BITS, PROB_FLOOR, ExactGaussian, GaussianConfig
from vqzip.priors.pixelcnn import CondNet

LOG2_SIGMA_MAX = 64  # octaves: the exact head's clamp of log2 sigma (the table's ends clamp well inside it)
MIN_PROB = 2.0**-30  # the probability `bits` never goes below: 30 bits at most per symbol
LOG2_SCALE_RANGE = 24  # |log2 s| beyond this changes no probability in float32; clamped so (q +- 1/2) / s stays finite


class GaussianPrior(nn.Module):
    """log2 sigma of every symbol from the conditioning maps, and the bits of symbols under it.

    The lattice model trains it jointly with its quantizer: `forward` gives the scales, `bits`
    the rate term (it takes uniform noise in place of rounding)."""

    def __init__(self, cfg: GaussianConfig):
        super().__init__()
        if not cfg.conds:
            raise ValueError("a Gaussian prior takes its scale from conditioning maps; its config names none")
        self.cfg = cfg
        self.cond_nets = nn.ModuleList(CondNet([cfg.conds[i][0] for i in idx], cfg.cond_channels) for _, idx in cfg.groups)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(cfg.cond_channels, cfg.hidden, 1), nn.ReLU(),
                                  nn.Conv2d(cfg.hidden, cfg.channels, 1))

    def features(self, conds: list[torch.Tensor]) -> torch.Tensor:
        """Conditioning maps (B, H/f, W/f) int64, as in cfg.conds -> the head's input (B, cc, H, W):
        each group's CondNet features repeated up by its factor, summed."""
        if len(conds) != len(self.cfg.conds):
            raise ValueError(f"this prior takes {len(self.cfg.conds)} conditioning maps, not {len(conds)}")
        out = 0
        for net, (f, idx) in zip(self.cond_nets, self.cfg.groups):
            feats = net([conds[i] for i in idx])
            out = out + (F.interpolate(feats, scale_factor=f, mode="nearest") if f > 1 else feats)
        return out

    def forward(self, conds: list[torch.Tensor]) -> torch.Tensor:
        """Conditioning maps (B, h_i, w_i) int64, as in cfg.conds -> log2 sigma (B, C, H, W) float,
        sigma in units of the unscaled latent y (the symbol q's scale is sigma * gain)."""
        return self.head(self.features(conds))

    def bits(self, q: torch.Tensor, log2_sigma: torch.Tensor, log2_gain: torch.Tensor) -> torch.Tensor:
        """Bits per element (B, C, H, W) of q (B, C, H, W) (integers, or integers plus uniform noise
        in [-1/2, 1/2) for training) under the discretized N(0, s), s = 2 ** (log2_sigma + log2_gain);
        log2_gain (C,) or (B, C, 1, 1), in log2 units. -log2 of the probability of q's bin
        [q - 1/2, q + 1/2), its tails beyond +-L folded into the end symbols (|q| > L - 1/2: past
        +-(L + 1/2), where the quantizer clips, the bits keep rising), and clamped below at MIN_PROB. Float32 whatever the autocast (bf16 has 8 bits of mantissa: the
        difference of two CDFs would be noise); differentiable in q and log2_sigma (and log2_gain).

        By symmetry the bin of |q| is taken, so both CDFs lie in the lower tail, where erfc keeps
        its relative precision (a bin far out in the upper tail would be 1 - 1 = 0)."""
        with torch.autocast(q.device.type, enabled=False):
            q, log2_sigma, log2_gain = q.float(), log2_sigma.float(), log2_gain.float()
            if log2_gain.dim() == 1:
                log2_gain = log2_gain.view(1, -1, 1, 1)
            log2_s = (log2_sigma + log2_gain).clamp(-LOG2_SCALE_RANGE, LOG2_SCALE_RANGE)
            scale = torch.exp2(-log2_s) / math.sqrt(2)  # 1 / (s sqrt 2): Phi(x / s) = erfc(-x * scale) / 2
            m = q.abs()
            upper = torch.erfc((m - 0.5) * scale)  # 2 Phi((1/2 - |q|) / s)
            lower = torch.where(m > self.cfg.max_symbol - 0.5, torch.zeros_like(m), torch.erfc((m + 0.5) * scale))
            p = 0.5 * (upper - lower)
            return -torch.log2(p.clamp_min(MIN_PROB))


@torch.no_grad()
def calibrate(prior: GaussianPrior, maps: list[tuple[torch.Tensor, list[torch.Tensor]]]) -> dict[str, torch.Tensor]:
    """The integer tensors of `ExactGaussian(prior.cfg, ...)` (the registry's calibrate).

    maps: (codes, conditioning maps) pairs the prior is typical on, as every kind's calibrate takes
    them; only the conditioning maps are read (no code reaches this prior's arithmetic): the
    activations' ranges are taken from them, as a PixelCNN's calibration takes its own."""
    cfg, seen = prior.cfg, defaultdict(float)

    def note(key, x):
        seen[key] = max(seen[key], float(x.abs().max()))

    prior.eval()
    for _, conds in maps:
        _cond_ranges(prior, conds, note)
        note("z", prior.head[2](prior.head[1](prior.head[0](prior.features([c[None] for c in conds])))))
    head0, head1 = _int8(prior.head[1].weight.flatten(1)), _int8(prior.head[3].weight.flatten(1))
    # the groups' features are summed before the head's ReLU: one scale for all of them, each
    # within its share of head.0's exactness budget
    groups = len(cfg.groups)
    c2_max = _budget(head0[0]) // groups
    s_c = max(seen[f"c2.{g}"] for g in range(groups)) / c2_max
    t: dict[str, torch.Tensor] = {}
    for g, net in enumerate(prior.cond_nets):
        _cond_net(t, g, net, seen[f"c1.{g}"], s_c, c2_max)
    z_max = _budget(head1[0])
    s_z = seen["z"] / z_max
    _affine(t, "head.0", *head0, s_c, s_z, prior.head[1].bias, 0, z_max)
    log2_max = LOG2_SIGMA_MAX << GAIN_BITS
    _affine(t, "head.1", *head1, s_z, 2.0**-GAIN_BITS, prior.head[3].bias, -log2_max, log2_max)
    t.update(_scale_table(cfg))
    ExactGaussian(cfg, t)  # checks the shapes, the exactness budget and the int64 ranges
    return t


def _scale_table(cfg: GaussianConfig) -> dict[str, torch.Tensor]:
    """The scale index's integers and the probability table: t = log2 s in units of 2**-GAIN_BITS
    maps to index (t * m + b) >> shift, `cfg.scales` steps even in log s from scale_min to
    scale_max; row j holds the discretized N(0, s_j) of the s at the middle of index j's range of t,
    its tails folded into the end symbols, computed in float64, floored at PROB_FLOOR."""
    unit = 2.0**GAIN_BITS
    lo, hi = math.log2(cfg.scale_min) * unit, math.log2(cfg.scale_max) * unit
    ratio = torch.tensor([(cfg.scales - 1) / (hi - lo)], dtype=torch.float64)
    m, b, shift = _fixed(ratio, -lo * ratio)  # b holds the rounding half: index j is t's nearest step
    j = torch.arange(cfg.scales, dtype=torch.float64)
    # index j <=> j * 2**shift <= t * m + b < (j + 1) * 2**shift
    s = torch.exp2(((j + 0.5) * 2.0**shift - float(b)) / float(m) / unit)[:, None]
    q = torch.arange(-cfg.max_symbol, cfg.max_symbol + 1, dtype=torch.float64).abs()
    upper = torch.special.erfc((q - 0.5) / (s * math.sqrt(2)))  # the |q| bin's CDFs in the lower tail, as `bits`
    lower = torch.where(q == cfg.max_symbol, 0.0, torch.special.erfc((q + 0.5) / (s * math.sqrt(2))))
    table = (0.5 * (upper - lower)).clamp_min(PROB_FLOOR).float()
    return {"scale.m": m[0], "scale.b": b[0], "scale.shift": torch.tensor(shift), "table": table}

"""The factorized prior's float side (the kind: `vqzip.priors.factorized`): the module training
fits and its calibration to the exact form's counts. Torch's, so kept apart from the config and
the exact form, which the codec reads without it."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vqzip.priors.factorized import COUNT_BITS, FactorizedConfig


class Factorized(nn.Module):
    """The float prior: learned logits over the codes."""

    def __init__(self, cfg: FactorizedConfig):
        super().__init__()
        self.cfg = cfg
        self.logits = nn.Parameter(torch.zeros(cfg.num_codes))

    def crops(self, codes: list[torch.Tensor], conds: list[list[torch.Tensor]], corners: list[tuple[int, int, int]],
              size: int) -> tuple[tuple, torch.Tensor]:
        """Training crops (`vqzip.priors.registry.FloatPrior`): the crops' codes are the only input
        (for their shape) and the targets."""
        targets = torch.stack([codes[i][y : y + size, x : x + size] for i, y, x in corners])
        return (targets,), targets

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, h, w) -> logits (B, K, h, w), the same at every position."""
        b, h, w = codes.shape
        return self.logits.view(1, -1, 1, 1).expand(b, -1, h, w)

    def nll_bits(self, codes: torch.Tensor, conds: list[torch.Tensor] = ()) -> torch.Tensor:
        """Ideal code length of whole maps (B, H, W), in bits, per map (B,)."""
        nats = -F.log_softmax(self.logits, 0)[codes]
        return nats.flatten(1).sum(1) / torch.log(torch.tensor(2.0))


@torch.no_grad()
def calibrate(prior: Factorized, maps: list[tuple[torch.Tensor, list[torch.Tensor]]]) -> dict[str, torch.Tensor]:
    """The integer tensors of `FixedFactorized`: the float prior's probabilities in fixed point.
    `maps` (the calibration maps every kind is given) go unused: this prior has no activations
    whose range they would measure."""
    p = torch.softmax(prior.logits.double(), 0)
    return {"counts": torch.round(p * 2**COUNT_BITS).clamp_(min=1).to(torch.int32)}

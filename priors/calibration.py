"""From a trained float `PixelCNN` to the integer tensors of a `FixedPointPrior`.

Post-training quantization, run once when a model is exported; its output is stored in the
model file, so the codec never redoes this float arithmetic (which could round differently on
another machine).

- Weights: int8, one scale per output channel.
- Each activation: the widest integer range the next layer's exactness budget allows (its
  worst-case sum of |weight| x |input| below 2**24), capped at 2**15 - 1, with the scale that maps
  the largest value seen on the calibration maps to the end of that range; beyond it, clamped.
- Fixed scales where the range is known: gate inputs on a 1/128 grid over [-8, 8] (tanh and
  sigmoid are flat beyond), logits in 1/64 nat, exp table in units of 2**-20.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from vqzip.priors.fixedpoint import EXACT, GATE_SHIFT, FixedPointPrior
from vqzip.priors.pixelcnn import PixelCNN

U_MAX, U_SCALE = 1024, 8 / 1024
LOGIT_SCALE, LOGIT_MAX = 1 / 64, 1 << 20
EXP_BITS = 20
FIRST_SHIFT = 8  # first-layer tables keep 8 more bits than h, so the sum of taps rounds once
RANGE_CAP = (1 << 15) - 1  # activations are cached as int16
M_BITS = 36  # fixed-point multipliers stay below 2**36, so products stay far below 2**63


def _int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, in) float -> int8 weights and their per-output-channel scales (float64)."""
    w = w.detach().double()
    scale = w.abs().amax(1).clamp_min(1e-30) / 127
    return torch.round(w / scale[:, None]).to(torch.int8), scale


def _budget(*weights: torch.Tensor) -> int:
    """The largest input magnitude for which every one of these int8 layers sums exactly."""
    worst = max(int(w.to(torch.int64).abs().sum(1).max()) for w in weights)
    return min(RANGE_CAP, (EXACT - 1) // max(worst, 1))


def _fixed(ratio: torch.Tensor, bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Multipliers m and biases b (with the rounding half folded in) and the shift such that
    (acc * m + b) >> shift ~= round(acc * ratio + bias), per output channel."""
    shift = min(48, M_BITS - math.ceil(math.log2(float(ratio.abs().max()))))
    if shift < 1:
        raise ValueError(f"rescale ratio {float(ratio.abs().max()):.3g} too large for fixed point")
    m = torch.round(ratio * 2.0**shift).to(torch.int64)
    b = torch.zeros_like(m) if bias is None else torch.round(bias.double() * 2.0**shift).to(torch.int64)
    return m, b + (1 << (shift - 1)), shift


def _affine(t: dict, name: str, w: torch.Tensor, s_w: torch.Tensor, s_in: float, s_out: float,
            bias: torch.Tensor, lo: int, hi: int) -> int:
    m, b, shift = _fixed(s_w * s_in / s_out, bias.double() / s_out)
    t.update({f"{name}.w": w, f"{name}.m": m, f"{name}.b": b, f"{name}.q": torch.tensor([shift, lo, hi])})
    return shift


Maps = list[tuple[torch.Tensor, list[torch.Tensor]]]  # (codes (H, W), its conditioning maps)


@torch.no_grad()
def _ranges(prior: PixelCNN, maps: Maps) -> dict[str, float]:
    """Largest |activation| on the calibration maps, for each quantized activation of the float net."""
    seen = {"h": 0.0, "z": 0.0}
    for g in range(len(prior.cond_nets)):
        seen[f"c1.{g}"] = seen[f"c2.{g}"] = 0.0

    def note(key, x):
        seen[key] = max(seen[key], float(x.abs().max()))

    for codes, conds in maps:
        _cond_ranges(prior, conds, note)
        cond = prior.cond_canvas(prior.condition([c[None] for c in conds]))
        h = prior.first(prior.embed(prior.canvas(codes[None])).permute(0, 3, 1, 2))
        note("h", h)
        for block in prior.blocks:
            h = block(h, cond)
            note("h", h)
        note("z", prior.head[2](prior.head[1](prior.head[0](h))))
    return seen


def _cond_ranges(prior, conds: list[torch.Tensor], note: Callable[[str, torch.Tensor], None]) -> None:
    """note("c1.g", ...) and note("c2.g", ...) with each group g's activations on one image's
    conditioning maps (prior: a float prior with `cond_nets`, one `CondNet` per group of its cfg)."""
    for g, (net, (_, idx)) in enumerate(zip(prior.cond_nets, prior.cfg.groups)):
        c1 = F.relu(net.c1(net.embed([conds[i][None] for i in idx])))
        note(f"c1.{g}", c1)
        note(f"c2.{g}", net.c2(c1))


def _cond_net(t: dict, g: int, net, seen_c1: float, s_out: float, out_max: int) -> None:
    """The tensors of group g's conditioning net (`vqzip.priors.fixedpoint.Conditioning`) from its
    float `CondNet`: embeddings within c1's budget, c1 (ReLU) on the scale of the largest
    activation seen (seen_c1), c2 on the scale s_out, clamped to +-out_max."""
    c1, c2 = _int8(net.c1.weight.flatten(1)), _int8(net.c2.weight.flatten(1))
    e_max, c1_max = _budget(c1[0]), _budget(c2[0])
    embs = [e.weight.double() for e in net.embeds]
    s_e = sum(float(e.abs().max()) for e in embs) / e_max  # their sum stays within e_max
    s_c1 = seen_c1 / c1_max
    for i, emb in enumerate(embs):
        t[f"cond.{g}.embed.{i}"] = torch.round(emb / s_e).to(torch.int32)
    _affine(t, f"cond.{g}.c1", *c1, s_e, s_c1, net.c1.bias, 0, c1_max)
    _affine(t, f"cond.{g}.c2", *c2, s_c1, s_out, net.c2.bias, -out_max, out_max)


@torch.no_grad()
def calibrate(prior: PixelCNN, maps: Maps) -> dict[str, torch.Tensor]:
    """Integer tensors for `FixedPointPrior(prior.cfg, ...)`.

    maps: (codes (H, W), [conditioning maps, as in prior.cfg.conds]) pairs the prior is typical
    on, e.g. the code maps of a few training images; the activations' ranges are taken from them."""
    seen = _ranges(prior.eval(), maps)
    t: dict[str, torch.Tensor] = {}
    blocks = [(_int8(_masked(b.conv)), _int8(b.out.weight.flatten(1)), [_int8(c.weight.flatten(1)) for c in b.cond])
              for b in prior.blocks]
    head0, head1 = _int8(prior.head[1].weight.flatten(1)), _int8(prior.head[3].weight.flatten(1))

    h_max = _budget(head0[0], *(conv[0] for conv, _, _ in blocks))
    g_max = _budget(*(out[0] for _, out, _ in blocks))
    z_max = _budget(head1[0])
    s_h, s_z = seen["h"] / h_max, seen["z"] / z_max
    t.update({"limit.h": torch.tensor(h_max), "limit.u": torch.tensor(U_MAX), "limit.g": torch.tensor(g_max)})

    # first layer: embedding then masked conv, one (codes, C) table per unmasked tap
    conv = prior.first
    w = (conv.weight * conv.mask).double()
    taps = conv.mask[0, 0].nonzero()
    tables = torch.stack([prior.embed.weight.double() @ w[:, :, i, j].t() for i, j in taps.tolist()]) if len(taps) else \
        w.new_zeros(0, *prior.embed.weight.shape)  # a 1x1 first kernel: no code context at all
    unit = s_h / 2**FIRST_SHIFT
    t["first.tables"] = torch.round(tables / unit).to(torch.int32)
    t["first.b"] = torch.round(conv.bias.double() / unit).to(torch.int64) + (1 << (FIRST_SHIFT - 1))
    t["first.shift"] = torch.tensor(FIRST_SHIFT)
    t["first.taps"] = _taps(conv)
    t["blocks.taps"] = _taps(prior.blocks[0].conv)

    grid = (torch.arange(2 * U_MAX + 1, dtype=torch.float64) - U_MAX) * U_SCALE
    t["lut.tanh"] = torch.round(torch.tanh(grid) * g_max).to(torch.int32)
    t["lut.sigmoid"] = torch.round(torch.sigmoid(grid) * 2**GATE_SHIFT).to(torch.int32)
    d = torch.arange(math.ceil(EXP_BITS * math.log(2) / LOGIT_SCALE) + 1, dtype=torch.float64)
    t["lut.exp"] = torch.round(torch.exp(-d * LOGIT_SCALE) * 2**EXP_BITS).to(torch.int32)

    s_c = []  # per group, the scale of its features
    for g, net in enumerate(prior.cond_nets):
        c2_max = _budget(*(conds[g][0] for _, _, conds in blocks))
        s_c.append(seen[f"c2.{g}"] / c2_max)
        _cond_net(t, g, net, seen[f"c1.{g}"], s_c[g], c2_max)

    for i, (block, (cw, cs), (ow, os), conds) in enumerate(zip(prior.blocks, *zip(*blocks))):
        bias = block.conv.bias.double() + sum(c.bias.double() for c in block.cond)
        # gate pre-activations come out as table indices: 0..2*U_MAX for -8..8
        shift = _affine(t, f"blocks.{i}.conv", cw, cs, s_h, U_SCALE, bias + U_MAX * U_SCALE, 0, 2 * U_MAX)
        for g, (w, scale) in enumerate(conds):
            t[f"blocks.{i}.cond.{g}.w"] = w
            t[f"blocks.{i}.cond.{g}.m"] = torch.round(scale * s_c[g] / U_SCALE * 2.0**shift).to(torch.int64)
        _affine(t, f"blocks.{i}.out", ow, os, 1 / g_max, s_h, block.out.bias, -2 * h_max, 2 * h_max)
    _affine(t, "head.0", *head0, s_h, s_z, prior.head[1].bias, 0, z_max)
    _affine(t, "head.1", *head1, s_z, LOGIT_SCALE, prior.head[3].bias, -LOGIT_MAX, LOGIT_MAX)
    FixedPointPrior(prior.cfg, t)  # checks the exactness budget and int64 ranges
    return t


def _taps(conv) -> torch.Tensor:
    """(taps, 2): row and column offsets of a masked conv's unmasked taps from its output."""
    taps = conv.mask[0, 0].nonzero()
    return torch.stack([taps[:, 0] - conv.rows_above, taps[:, 1] - conv.cols_each_side], 1)


def _masked(conv) -> torch.Tensor:
    """A masked conv's weight over its unmasked taps, (out, taps*C), as the walk gathers them."""
    rows, cols = conv.mask[0, 0].nonzero().unbind(1)
    return conv.weight[:, :, rows, cols].permute(0, 2, 1).flatten(1)

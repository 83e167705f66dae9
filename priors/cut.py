"""A smaller PixelCNN prior cut from a trained one, as the start of its fine-tuning (the kind's `cut`).

The fine map holds 4x the bottom's codes, so its prior's size sets the decode time of every
level that codes it (`bench/fine_prior_size.py`). A prior of fewer channels or blocks starts
from a trained one's weights rather than from scratch: its first `blocks` gated blocks, and the
residual and gate channels that carry most. Ranking: a residual channel by its mean |h| after the
kept blocks (on the code maps given) times the norm of the weights reading it; a block's gate
channels by the norm of its output weights reading them. At full size the cut is the same prior.
"""
from __future__ import annotations

import torch

from vqzip.priors.pixelcnn import PixelCNN
from vqzip.priors.pixelcnn_config import PixelCNNConfig


def cuttable(full: PixelCNNConfig, cfg: PixelCNNConfig) -> bool:
    """Whether `cfg` is `full` with at most its channels and blocks, all else the same."""
    same = {**full.to_dict(), "channels": cfg.channels, "blocks": cfg.blocks} == cfg.to_dict()
    return same and 0 < cfg.channels <= full.channels and 0 < cfg.blocks <= full.blocks


def cut(full: PixelCNN, cfg: PixelCNNConfig, maps: list[tuple[torch.Tensor, list[torch.Tensor]]]) -> PixelCNN:
    """A prior of config `cfg` (fewer channels or blocks) from `full`'s weights, its residual
    channels ranked on `maps` ((codes (H, W), conditioning maps) of the map `full` codes);
    ValueError where cfg is not `full`'s config with at most its channels and blocks."""
    if not cuttable(full.cfg, cfg):
        raise ValueError(f"only fewer channels or blocks can be cut from a prior of {full.cfg.channels} channels and "
                         f"{full.cfg.blocks} blocks")
    channels, blocks = cfg.channels, cfg.blocks
    sd, c = full.state_dict(), full.cfg.channels
    acts = []
    hook = full.blocks[blocks - 1].register_forward_hook(lambda m, i, o: acts.append(o.abs().mean((0, 2, 3))))
    was_training = full.training
    full.eval()
    with torch.no_grad():
        for codes, conds in maps:
            full.nll_bits(codes[None], [m[None] for m in conds])
    hook.remove()
    full.train(was_training)
    reads = sd["head.1.weight"].flatten(1).norm(dim=0) + sum(sd[f"blocks.{b}.conv.weight"].flatten(2).norm(dim=(0, 2))
                                                          for b in range(blocks))
    keep = torch.argsort(torch.stack(acts).mean(0) * reads, descending=True)[:channels].sort().values
    out = {k: v for k, v in sd.items() if not k.startswith("blocks.") or int(k.split(".")[1]) < blocks}
    out["embed.weight"] = sd["embed.weight"][:, keep]
    out["first.weight"], out["first.bias"] = sd["first.weight"][keep][:, keep], sd["first.bias"][keep]
    for b in range(blocks):
        gates = torch.argsort(sd[f"blocks.{b}.out.weight"].flatten(1).norm(dim=0), descending=True)[:channels].sort().values
        rows = torch.cat([gates, gates + c])  # tanh half, sigmoid half
        out[f"blocks.{b}.conv.weight"] = sd[f"blocks.{b}.conv.weight"][rows][:, keep]
        out[f"blocks.{b}.conv.bias"] = sd[f"blocks.{b}.conv.bias"][rows]
        for g in range(len(full.cfg.groups)):
            for part in ("weight", "bias"):
                out[f"blocks.{b}.cond.{g}.{part}"] = sd[f"blocks.{b}.cond.{g}.{part}"][rows]
        out[f"blocks.{b}.out.weight"] = sd[f"blocks.{b}.out.weight"][keep][:, gates]
        out[f"blocks.{b}.out.bias"] = sd[f"blocks.{b}.out.bias"][keep]
    out["head.1.weight"], out["head.1.bias"] = sd["head.1.weight"][keep][:, keep], sd["head.1.bias"][keep]
    out["head.3.weight"] = sd["head.3.weight"][:, keep]
    prior = PixelCNN(cfg)
    prior.load_state_dict(out)
    return prior

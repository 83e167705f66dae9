"""Phase I: the network (an architecture of `vqzip.models`) on random image crops, MSE plus the
preview head's loss plus the quantizers' commitment loss."""
from __future__ import annotations

import re

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from vqzip import data, models
from vqzip.training import distributed
from vqzip.training.loop import TrainConfig, autocast, load_init, pick_device, run_loop


def load_images(root: str | Path) -> list[np.ndarray]:
    return [data.load_rgb(p) for p in data.split(data.list_images(root), "train")]


def _addable(key: str) -> bool:
    """Parameters a fine-tuning run may add: the preview head, a later residual stage."""
    return key.startswith("head.") or re.match(r"vq_\w+\.stages\.[1-9]", key) is not None


def train_vqvae(data_dir, out, arch: str, net_cfg: dict, cfg: TrainConfig, progress=None, init: Path | None = None,
                stop_after: int | None = None) -> dict:
    """Train the network of architecture `arch` and config `net_cfg` into run folder `out`. With
    `init` (a run folder), start from that run's weights: parts the new config adds start fresh
    (the preview head, and residual stages after a level's first: `--fine-stages 2` from a run
    with one grows its fine level), and the card keeps that run's record. `stop_after`: as
    `run_loop`'s."""
    device = pick_device()
    distributed.setup(device)
    torch.manual_seed(cfg.seed)
    model = models.build(arch, net_cfg)
    extra = {"arch": arch} if init is None else {"arch": arch, "init": load_init(model, Path(init), "vqvae", new=_addable)}
    torch.manual_seed(cfg.seed + 1000 * distributed.rank())  # training's own randomness (quantizer dropout) per rank
    model = model.to(device, memory_format=torch.channels_last)  # with bf16, 1.4x faster than without
    sampler = data.CropSampler(load_images(data_dir), cfg.crop, cfg.seed, cfg.colour)
    preview_weight = model.cfg.preview

    def step_fn(batch: np.ndarray):
        x = model.normalize(torch.from_numpy(batch).to(device).float()).contiguous(memory_format=torch.channels_last)
        with autocast(cfg, device):
            o = model(x)
        mse = F.mse_loss(o["x_hat"].float(), x)
        preview = F.mse_loss(o["preview"].float(), F.avg_pool2d(x, 4))
        stats = {"mse": mse.item(), "psnr": -10 * math.log10(max(mse.item(), 1e-10)),
                 "preview_psnr": -10 * math.log10(max(preview.item(), 1e-10)), "vq": o["vq_loss"].item()}
        stats.update({f"used_{m.name}": int(c.unique().numel()) for m, c in zip(model.maps, o["codes"])})
        return mse + preview_weight * preview + o["vq_loss"], stats

    return run_loop("vqvae", Path(out), model, cfg, sampler, step_fn, model.cfg.to_dict(), progress, extra, stop_after)


def load_net(run: Path) -> torch.nn.Module:
    """A run's trained network, in eval mode."""
    meta = json.loads((run / "vqvae.json").read_text())
    model = models.build(meta["arch"], meta["config"])
    model.load_state_dict(load_file(str(run / "vqvae.safetensors")))
    return model.eval()

"""Training a lattice fine latent (issue 35) on a trained VQ-VAE: `vqzip train lattice`.

    x -> the init model's coarse layers (top and bottom VQ; frozen unless train_coarse) -> m, h_h
    y = pre_f(h_h, m);  q = round(y g_k);  x_hat = dec_f(m, q / g_k)       (`vqzip.models.lattice`)
    bits: q under the discretized Gaussian of log2 sigma = prior(top codes, bottom codes)
    loss = lambda_k 255^2 MSE + ramp * bits / pixels,   anchor k drawn per batch

as bench/design35/lattice.py (the prototype) trains it: uniform noise for the rate and
straight-through rounding for the decoder; the fine parts start from the init model's (dec_f's
layers copied, its first convolution widened for y, y's part of the weights at 0.1 of their
random start: at zero the rate term empties y before the synthesis learns to use it); the rate
term ramps in over the first quarter of the steps (without the ramp the prototype's latent
collapsed: PSNR flat in k after 800 steps). The run is `vqzip.training.loop.run_loop`'s:
resumable with the same command, its state saved at least every 10 minutes.

Validation: every val_every steps and at the end, on the data folder's validation split (each
image cropped to a multiple of 8), at anchors 0, 3 and 6 (of the seven): the fine map's bits per pixel under
the float prior with the rounded q, and the PSNR of x_hat; in the run's log and in
validation.jsonl. The top and bottom maps' bits are not computed: frozen, they are the init
model's, the same at every anchor and step (the first row of validation.jsonl says so).

    python -m vqzip train lattice --init training-runs/L3 --data ../shared/data/train --out runs/lat8
"""
from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from vqzip import data
from vqzip.training import distributed
from vqzip.errors import VqzError
from vqzip.models.configs import LatticeConfig
from vqzip.models.vqvae2 import VQVAE2
from vqzip.priors.gaussian import GaussianConfig
from vqzip.priors.gaussian_float import GaussianPrior
from vqzip.training.loop import TrainConfig, autocast, pick_device, run_loop

NAME = "lattice"  # the run folder's lattice.safetensors, lattice.json, lattice-state.pt, lattice-log.jsonl
RAMP = 0.25  # share of the steps over which the rate term ramps in from zero
FINE = ("pre_f", "dec_f", "vq_f")  # the network's modules a lattice replaces
FINE_PARTS = tuple(f"{m}." for m in FINE)  # their state keys' prefixes


class LatticeModel(nn.Module):
    """The network with its lattice fine latent and the fine map's Gaussian prior, trained
    together (state keys net.*, prior.*). With the coarse layers frozen, they stay in eval mode
    (their EMA codebooks unmoved) whatever `train` is told."""

    def __init__(self, net: VQVAE2, prior: GaussianPrior, train_coarse: bool = False):
        super().__init__()
        self.net, self.prior, self.train_coarse = net, prior, train_coarse
        for key, p in net.named_parameters():
            p.requires_grad_(train_coarse or key.startswith(FINE_PARTS))

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.train_coarse:
            for name, child in self.net.named_children():
                if name not in FINE:
                    child.eval()
        return self


def prior_config(net: VQVAE2, cfg: LatticeConfig) -> GaussianConfig:
    """The fine map's Gaussian prior, conditioned on every map before it (top and bottom), each
    at its stride over the fine map's."""
    fine = net.maps[-1]
    return GaussianConfig(channels=cfg.channels, max_symbol=cfg.max_symbol,
                          conds=tuple((net.maps[j].num_codes, net.maps[j].stride // fine.stride) for j in fine.conds))


def lattice_net(base: VQVAE2, cfg: LatticeConfig) -> VQVAE2:
    """A network of base's config with a lattice fine latent of config cfg: base's weights but
    the fine latent's; dec_f as base's, its first convolution widened for y (the m part base's,
    the y part 0.1 of its random start); pre_f and the gains fresh. VqzError for a base without
    a fine latent (its decoder does not stop at 1/2 resolution)."""
    if not base.cfg.fine_stages:
        raise VqzError("the lattice replaces a fine latent: the init model has none (train one with --fine-stages 1)")
    net = VQVAE2(replace(base.cfg, fine_stages=1, fine_codes=cfg.num_codes, fine_quantizer=cfg))
    state = net.state_dict()
    old = base.state_dict()
    state.update({k: v for k, v in old.items() if not k.startswith(FINE_PARTS)})
    state.update({k: v for k, v in old.items() if k.startswith("dec_f.") and not k.startswith("dec_f.0.")})
    h = base.cfg.channels // 2
    first = state["dec_f.0.weight"].clone()
    first[:, h:] *= 0.1
    first[:, :h] = old["dec_f.0.weight"][:, :h]
    state["dec_f.0.weight"], state["dec_f.0.bias"] = first, old["dec_f.0.bias"].clone()
    net.load_state_dict(state)
    return net


def load_base(path: Path) -> tuple[VQVAE2, dict]:
    """A trained VQ-VAE from a run folder (vqvae.json, vqvae.safetensors) or a model folder
    (config.json, model.safetensors) -> (its network, the record the run's card keeps of it)."""
    from vqzip.training.autoencoder import load_net
    from vqzip.training.onnx_export import folder_net

    path = Path(path)
    if (path / "vqvae.json").is_file():
        meta = json.loads((path / "vqvae.json").read_text())
        return load_net(path), {"run": str(path), **{k: v for k, v in meta.items() if k != "config"}}
    if (path / "config.json").is_file():
        return folder_net(path), {"model": str(path)}
    raise VqzError(f"{path} is neither a run folder (vqvae.json) nor a model folder (config.json)")


def validation_images(data_dir: Path, limit: int = 0) -> list[np.ndarray]:
    """The validation split (its first `limit` images; 0: all), each cropped to a multiple of 8."""
    files = data.split(data.list_images(data_dir), "val")
    out = []
    for f in files[:limit] if limit else files:
        px = data.load_rgb(f)
        out.append(px[: px.shape[0] // 8 * 8, : px.shape[1] // 8 * 8])
    return out


@torch.no_grad()
def coarse(net: VQVAE2, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """(h_h, m, [top, bottom] codes) of normalized x as the codec computes them: the graphs in
    float32 (whatever the autocast), the nearest codes."""
    g = net.graphs()
    with torch.autocast(x.device.type, enabled=False):
        h_h, h_b = g["features"](x)
        top = net.vq_t.residual_indices(g["latent_top"](h_b)[0])
        q_t = net.vq_t.lookup(top)
        bottom = net.vq_b.residual_indices(g["latent_bottom"](h_b, q_t)[0])
        return h_h, g["coarse"](q_t, net.vq_b.lookup(bottom))[0], top + bottom


@torch.no_grad()
def validate(model: LatticeModel, images: list[np.ndarray], anchors: tuple[int, ...] | None = None) -> list[dict]:
    """Per anchor (default: the first, the middle and the last: 0, 3 and 6 of seven): {anchor,
    lambda, bpp (the fine map's, float prior, rounded q), psnr}, means over the images, each run
    as the codec runs it (graphs, nearest codes). Leaves model in eval mode."""
    model.eval()
    net, prior = model.net, model.prior
    last = len(net.cfg.fine_quantizer.anchors) - 1
    anchors = anchors or (0, last // 2, last)
    device = next(model.parameters()).device
    g = net.graphs()
    sums = {k: [0.0, 0.0] for k in anchors}
    for px in images:
        x = net.normalize(torch.from_numpy(px.transpose(2, 0, 1).copy()).float()[None].to(device))
        h_h, m, maps = coarse(net, x)
        y = g["latent_fine"](h_h, m)[0]
        log2_sigma = prior(maps)
        for k in anchors:
            codes = net.vq_f.residual_indices(y, anchor=k)
            x_hat = g["synthesis"](m, net.vq_f.lookup(codes, anchor=k))[0].clamp(-0.5, 0.5)
            bits = prior.bits((codes[0] - net.vq_f.max_symbol).float(), log2_sigma, net.vq_f.log2_gain_at(k))
            sums[k][0] += float(bits.sum()) / (px.shape[0] * px.shape[1])
            sums[k][1] += -10 * math.log10(max(F.mse_loss(x_hat, x).item(), 1e-10))
    anchor_lambdas = net.cfg.fine_quantizer.anchors
    return [{"anchor": k, "lambda": anchor_lambdas[k], "bpp": round(b / len(images), 4),
             "psnr": round(p / len(images), 3)} for k, (b, p) in sums.items()]


def train_lattice(data_dir, out, init: Path, lattice: LatticeConfig, cfg: TrainConfig, *, train_coarse: bool = False,
                  val_every: int = 500, val_images: int = 0, progress=None, stop_after: int | None = None) -> dict:
    """Train a lattice fine latent of config `lattice` on the VQ-VAE in `init` (a run or model
    folder, `load_base`) into run folder `out` (see the module's text). `stop_after`: as
    `run_loop`'s. Returns the run's record."""
    device = pick_device()
    torch.manual_seed(cfg.seed)
    base, init_record = load_base(init)
    net = lattice_net(base, lattice)
    model = LatticeModel(net, GaussianPrior(prior_config(net, lattice)), train_coarse).to(device)
    out = Path(out)
    sampler = data.CropSampler([data.load_rgb(p) for p in data.split(data.list_images(data_dir), "train")], cfg.crop,
                               cfg.seed)
    images = validation_images(data_dir, val_images)
    lambdas = lattice.anchors
    ramp = [0.0]
    val_path = out / "validation.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line).get("step") for line in val_path.read_text().splitlines()} if val_path.exists() else set()
    if not done and distributed.is_main():
        note = ("the top and bottom maps are the init model's, frozen: their bits are a constant added to every "
                "anchor's bpp, not computed here" if not train_coarse else
                "the top and bottom maps train (--train-coarse): their bits change, and are not computed here")
        _append(val_path, {"note": note, "init": str(init), "images": len(images)})

    def on_step(step: int) -> None:
        ramp[0] = min(1.0, step / max(1.0, RAMP * cfg.steps))
        # rank 0 alone validates and writes, as it alone saves (`run_loop`)
        if (step % val_every == 0 or step == cfg.steps) and step not in done and distributed.is_main():
            rows = validate(model, images)
            model.train()
            for row in rows:
                _append(val_path, {"step": step, **row})
                _append(out / f"{NAME}-log.jsonl", {"step": step, "validation": row})
            done.add(step)

    def step_fn(batch: np.ndarray):
        x = net.normalize(torch.from_numpy(batch).to(device).float())
        k = int(sampler.rng.integers(len(lambdas)))  # the sampler's generator: resumed with the run
        if train_coarse:
            with autocast(cfg, device):
                o = net(x, anchor=k)
                log2_sigma = model.prior(o["codes"][:2])
            x_hat, z_f = o["x_hat"], o["z_f"]
        else:  # frozen: as the codec computes it, in float32 (the prototype's choice too)
            h_h, m, maps = coarse(net, x)
            with autocast(cfg, device):
                x_hat, z_f, _, _ = net.fine(h_h, m, anchor=k)
                log2_sigma = model.prior(maps)
        bits = model.prior.bits(net.vq_f.noisy(z_f, anchor=k), log2_sigma, net.vq_f.log2_gain_at(k))
        bpp = bits.sum() / (x.shape[0] * x.shape[2] * x.shape[3])
        mse = F.mse_loss(x_hat.float(), x)
        loss = lambdas[k] * 255**2 * mse + ramp[0] * bpp
        if train_coarse:  # phase I's other terms, for the layers it trained
            loss = loss + net.cfg.preview * F.mse_loss(o["preview"].float(), F.avg_pool2d(x, 4)) + o["vq_loss"]
        stats = {"anchor": k, "psnr": -10 * math.log10(max(mse.item(), 1e-10)), "bpp": bpp.item(), "ramp": ramp[0]}
        return loss, stats

    config = {"arch": VQVAE2.ARCH, "net": net.cfg.to_dict(), "prior": model.prior.cfg.to_dict(),
              "train_coarse": train_coarse}
    extra = {"init": init_record, "val_every": val_every, "val_images": len(images), "rate_ramp": RAMP}
    return run_loop(NAME, out, model, cfg, sampler, step_fn, config, progress, extra, stop_after, on_step)


def load_lattice(run: Path) -> LatticeModel:
    """A finished lattice run's network and prior (lattice.json, lattice.safetensors), in eval mode."""
    from vqzip import models

    meta = json.loads((Path(run) / f"{NAME}.json").read_text())["config"]
    net = models.build(meta["arch"], meta["net"])
    model = LatticeModel(net, GaussianPrior(GaussianConfig(**meta["prior"])), meta["train_coarse"])
    model.load_state_dict(load_file(str(Path(run) / f"{NAME}.safetensors")))
    return model.eval()


def _append(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")

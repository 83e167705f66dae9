"""Issue 35 design run: the fine level as a scalar-quantized (lattice) latent instead of a 512-code VQ map.

    x -> L3's frozen encoder and top/bottom VQ (nearest codes) -> m, the decoder's 1/2-resolution features
    y = analysis(h_h, m)                       C channels at 1/2 resolution
    mu, sigma = entropy(m)                     the VQ maps act as the hyperprior: the decoder has m
    q = round((y - mu) * g_k)                  g_k: a learned per-channel gain of rate anchor k
    x_hat = synthesis(m, q / g_k + mu)         L3's dec_f, its first convolution widened (y part starts at 0)
    loss = lambda_k * 255^2 * MSE + bits(q) / pixels,   bits under a discretized Gaussian N(0, sigma g_k)
                                               (the rate term ramped in over the first quarter of the budget)

One model covers every rate: gains interpolated between anchors move the rate continuously. Training
uses uniform noise for the rate and straight-through rounding for the decoder. Only the new parts
train; the top and bottom maps are L3's exactly, so their bits are the shipped priors'.

    python bench/design35/lattice.py RUN [--channels 8] [--cpu-seconds 2550]    # resumes from RUN/state.pt
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vqzip import data
from vqzip.training.autoencoder import load_net

ANCHORS = (0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256)  # lambda of each gain vector


def shipped_net():
    """vqz-l3's network as a torch module (training-runs/L3: the shipped weights' network), frozen."""
    net = load_net(Path(__file__).resolve().parents[2] / "training-runs/L3")
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


@torch.no_grad()
def coarse(net, x):
    """h_h and m of L3 for normalized x, with the top and bottom maps' nearest codes."""
    g = net.graphs()
    h_h, h_b = g["features"](x)
    top = net.vq_t.residual_indices(g["latent_top"](h_b)[0])
    q_t = net.vq_t.lookup(top)
    bottom = net.vq_b.residual_indices(g["latent_bottom"](h_b, q_t)[0])
    return h_h, g["coarse"](q_t, net.vq_b.lookup(bottom))[0], top + bottom


class Lattice(nn.Module):
    def __init__(self, net, channels: int):
        super().__init__()
        h = net.cfg.channels // 2
        self.channels = channels
        self.analysis = nn.Sequential(nn.Conv2d(2 * h, h, 3, padding=1), nn.ReLU(), nn.Conv2d(h, h, 3, padding=1),
                                      nn.ReLU(), nn.Conv2d(h, channels, 3, padding=1))
        self.entropy = nn.Sequential(nn.Conv2d(h, h, 3, padding=1), nn.ReLU(), nn.Conv2d(h, h, 3, padding=1),
                                     nn.ReLU(), nn.Conv2d(h, 2 * channels, 1))
        first = net.dec_f[0]
        widened = nn.Conv2d(h + channels, h, 3, padding=1)
        with torch.no_grad():  # y's part starts small, not zero: a zero start lets the rate term empty y first
            widened.weight[:, h:] *= 0.1
            widened.weight[:, :h] = first.weight[:, :h]
            widened.bias.copy_(first.bias)
        import copy
        rest = copy.deepcopy(net.dec_f[1:])
        for p in rest.parameters():
            p.requires_grad_(True)
        self.synthesis = nn.Sequential(widened, *rest)
        # gains start apart, as sqrt(lambda): at high rate the step that balances lambda scales so
        self.log_gain = nn.Parameter(torch.tensor([[0.5 * math.log(a / ANCHORS[0]) + math.log(2.0)] * channels
                                                   for a in ANCHORS]))

    def gain(self, k: float) -> torch.Tensor:
        """The gain of anchor k, or between anchors for a fractional k (log-linear)."""
        lo = min(int(k), len(ANCHORS) - 2)
        a = k - lo
        return torch.exp((1 - a) * self.log_gain[lo] + a * self.log_gain[lo + 1])[None, :, None, None]

    def forward(self, h_h, m, k: float, noise: bool):
        y = self.analysis(torch.cat([h_h, m], 1)).float()
        mu, log_sigma = self.entropy(m).float().chunk(2, 1)
        g = self.gain(k)
        t = (y - mu) * g
        sigma = torch.exp(log_sigma.clamp(-7, 7)) * g
        q = t + torch.empty_like(t).uniform_(-0.5, 0.5) if noise else torch.round(t)
        bits = -torch.log2((_cdf((q + 0.5) / sigma) - _cdf((q - 0.5) / sigma)).clamp_min(1e-9))
        st = t + (torch.round(t) - t).detach()
        x_hat = self.synthesis(torch.cat([m, (st / g + mu).to(m.dtype)], 1))
        return x_hat, bits


def _cdf(v):
    return 0.5 * torch.erfc(-v / math.sqrt(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--cpu-seconds", type=float, default=2400)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/train")
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(35)
    args.run.mkdir(parents=True, exist_ok=True)
    net = shipped_net()
    model = Lattice(net, args.channels)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    sampler = data.CropSampler([data.load_rgb(p) for p in data.split(data.list_images(args.data), "train")], 128, 35)
    rng = np.random.default_rng(35)
    step, cpu = 0, 0.0
    state_path = args.run / "state.pt"
    if state_path.exists():
        s = torch.load(state_path, weights_only=False)
        model.load_state_dict(s["model"]), opt.load_state_dict(s["opt"])
        step, cpu = s["step"], s["cpu"]
        sampler.rng.bit_generator.state, rng.bit_generator.state = s["rng"]
    (args.run / "config.json").write_text(json.dumps({"channels": args.channels, "anchors": ANCHORS, "lr": args.lr,
                                                      "cpu_seconds": args.cpu_seconds}))
    c0, saved = time.process_time() - cpu, time.time()
    log = (args.run / "log.jsonl").open("a")
    while cpu < args.cpu_seconds:
        frac = cpu / args.cpu_seconds
        lr = args.lr * min(1.0, (step + 1) / 200) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = torch.from_numpy(sampler.batch(16)).float() / 255 - 0.5
        k = int(rng.integers(len(ANCHORS)))
        h_h, m, _ = coarse(net, x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            x_hat, bits = model(h_h, m, k, noise=True)
        mse = F.mse_loss(x_hat.float(), x)
        bpp = bits.sum() / (x.shape[0] * x.shape[2] * x.shape[3])
        # the rate term ramps in over the first quarter: with it from the start, y collapses to
        # the prior's mean before the synthesis learns to use it (seen: 800 steps, PSNR flat in k)
        loss = ANCHORS[k] * 255**2 * mse + min(1.0, frac / 0.25) * bpp
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        cpu = time.process_time() - c0
        if step % 25 == 0:
            log.write(json.dumps({"step": step, "cpu": round(cpu, 1), "k": k, "psnr": -10 * math.log10(mse.item()),
                                  "bpp": bpp.item()}) + "\n")
            log.flush()
        if time.time() - saved > 600 or cpu >= args.cpu_seconds:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "cpu": cpu,
                        "rng": (sampler.rng.bit_generator.state, rng.bit_generator.state)}, args.run / "state.tmp")
            (args.run / "state.tmp").replace(state_path)
            saved = time.time()
    torch.save(model.state_dict(), args.run / "lattice.pt")
    print(f"done: {step} steps, {cpu:.0f} CPU s")


if __name__ == "__main__":
    main()

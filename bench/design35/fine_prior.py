"""Issue 35: how many bits a stronger fine-map entropy model would save on the lattice's frozen symbols.

The lattice run's prior codes q = clip(round(y g_k), -L, L) under a zero-mean discretized Gaussian
whose scale comes from the top and bottom VQ codes alone. Here the network is frozen (a snapshot
of the run), its symbols computed once, and candidate priors are trained on them for an equal CPU
budget each (one thread), the loss their bits on the real rounded symbols:

    baseline  the snapshot's own prior, as it is
    a         the same architecture, retrained alone from the snapshot's weights ("more training")
    b         + a mean: the head gives mean and log2 sigma from the coarse codes
    c         + channel groups: channels 0-3 from the coarse codes; 4-7 also from channels 0-3's y_hat
    d         + a checkerboard: the anchor half as c, the other half also from the anchor half's y_hat
    e         b + a 3x3 convolution at the fine map's resolution over the coarse features

b to e are one module, `ContextPrior`, with different decoding schedules (`SCHEDULES`): a
schedule is a list of passes (positions x channels), each pass's parameters computed from the
coarse codes plus a 5x5 convolution over the dequantized values y_hat = q / g of what earlier
passes decoded (and their mask, so the net knows which pass it serves). Conditioning on y_hat,
not on symbols, lets one net serve every anchor. Every candidate starts from the snapshot's
prior (the mean, the context's and the refinement's last layers at zero), so at step 0 each is
the baseline.

Rates: the fine map's bits per pixel at anchors 0, 3 and 6 on the 31 validation images (each
cropped to a multiple of 8), the symbols exactly as `vqzip.training.lattice.validate` makes
them. PSNR does not change: the symbols are the same. Nothing here is the exact integer form;
it measures what one could gain.

    nice -n 5 python bench/design35/fine_prior.py results/design35/fine_prior.json \\
        --snapshot /work/brief/r5/lat-snap --data ../shared/data/train --cache /tmp/fine-prior-cache.pt
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vqzip import data
from vqzip.training.lattice import coarse, load_lattice, validation_images

MIN_PROB = 2.0**-30  # as GaussianPrior.bits: at most 30 bits a symbol
LOG2_SCALE_RANGE = 24  # as GaussianPrior.bits: |log2 s| beyond it changes no float32 probability
ANCHORS = (0, 3, 6)  # those `validate` reports
CROP, BATCH = 128, 16  # the run's training crops and batch


def gauss_bits(q: torch.Tensor, mu: torch.Tensor, log2_s: torch.Tensor, max_symbol: int) -> torch.Tensor:
    """Bits per element of integer symbols q under the discretized N(mu, s) in symbol units, the
    tails beyond +-L folded into the end symbols: GaussianPrior.bits with a mean (equal to it at
    mu = 0). The bin is mirrored to the mean's upper side, where erfc keeps its relative precision."""
    sign = torch.where(q < mu, -1.0, 1.0)
    q, mu = q * sign, mu * sign  # the clip is symmetric: -L maps to L, whose upper tail is folded
    scale = torch.exp2(-log2_s.clamp(-LOG2_SCALE_RANGE, LOG2_SCALE_RANGE)) / math.sqrt(2)
    near = torch.where(q <= -max_symbol + 0.5, torch.full_like(q, 2.0), torch.erfc((q - 0.5 - mu) * scale))
    far = torch.where(q >= max_symbol - 0.5, torch.zeros_like(q), torch.erfc((q + 0.5 - mu) * scale))
    return -torch.log2((0.5 * (near - far)).clamp_min(MIN_PROB))


class Retrained(nn.Module):
    """Candidate a: the snapshot's prior (zero mean, scale from the coarse codes), to be trained."""

    def __init__(self, prior):
        super().__init__()
        self.prior = copy.deepcopy(prior)

    def forward(self, maps: list[torch.Tensor], y_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log2 sigma), each (B, C, H, W) in units of y; y_hat unused (no context)."""
        log2_sigma = self.prior(maps)
        return torch.zeros_like(log2_sigma), log2_sigma


class ContextPrior(nn.Module):
    """Mean and log2 sigma per symbol from the coarse codes (the snapshot prior's CondNets) plus,
    pass by pass, a context net over what earlier passes decoded.

    passes: (a key of POSITIONS, the channels) per pass, in decoding order; a symbol's parameters
    come from the pass that decodes it. refine: a residual 3x3 convolution over the coarse
    features at the fine map's resolution, so that they can vary within a bottom code's 2x2 block."""

    def __init__(self, prior, passes: list[tuple[str, tuple[int, ...]]], ctx_hidden: int = 32, refine: bool = False):
        super().__init__()
        cfg = prior.cfg
        self.passes = passes
        self.prior = copy.deepcopy(prior)  # its CondNets and head; the head's last layer widened for the mean
        head, old = self.prior.head, prior.head[3]
        head[3] = nn.Conv2d(cfg.hidden, 2 * cfg.channels, 1)  # rows 0..C-1 log2 sigma, C..2C-1 mean
        with torch.no_grad():
            head[3].weight.zero_()
            head[3].bias.zero_()
            head[3].weight[: cfg.channels] = old.weight
            head[3].bias[: cfg.channels] = old.bias
        self.ctx = None
        if len(passes) > 1:  # one pass has nothing decoded before it: no context
            self.ctx = nn.Sequential(nn.Conv2d(2 * cfg.channels, ctx_hidden, 5, padding=2), nn.ReLU(),
                                     nn.Conv2d(ctx_hidden, cfg.cond_channels, 1))
            nn.init.zeros_(self.ctx[2].weight)
            nn.init.zeros_(self.ctx[2].bias)
        self.refine = None
        if refine:  # the CondNet features are repeated up from 1/4 and 1/8: constant over 2x2 blocks
            self.refine = nn.Sequential(nn.ReLU(), nn.Conv2d(cfg.cond_channels, cfg.cond_channels, 3, padding=1))
            nn.init.zeros_(self.refine[1].weight)
            nn.init.zeros_(self.refine[1].bias)

    def forward(self, maps: list[torch.Tensor], y_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log2 sigma), each (B, C, H, W) in units of y, every symbol's from its pass, which
        sees y_hat only where earlier passes decoded it (teacher forcing: one call for the map)."""
        feats = self.prior.features(maps)
        if self.refine is not None:
            feats = feats + self.refine(feats)
        b, c, h, w = y_hat.shape
        known = y_hat.new_zeros(1, c, h, w)
        mu, log2_sigma = torch.zeros_like(y_hat), torch.zeros_like(y_hat)
        for where, chans in self.passes:
            here = POSITIONS[where](h, w, y_hat.device) * _channels(chans, c, y_hat.device)
            x = feats
            if known.any():
                x = x + self.ctx(torch.cat([y_hat * known, known.expand(b, -1, -1, -1)], 1))
            out = self.prior.head(x)
            log2_sigma = log2_sigma + here * out[:, :c]
            mu = mu + here * out[:, c:]
            known = known + here
        return mu, log2_sigma


def _channels(chans: tuple[int, ...], c: int, device) -> torch.Tensor:
    mask = torch.zeros(1, c, 1, 1, device=device)
    mask[0, list(chans)] = 1.0
    return mask


def _checker(h: int, w: int, device, parity: int) -> torch.Tensor:
    ij = torch.arange(h, device=device)[:, None] + torch.arange(w, device=device)[None, :]
    return ((ij % 2) == parity).float()[None, None]


POSITIONS = {"all": lambda h, w, d: torch.ones(1, 1, h, w, device=d),
             "anchor": lambda h, w, d: _checker(h, w, d, 0),
             "rest": lambda h, w, d: _checker(h, w, d, 1)}
LOW, HIGH, ALL = (0, 1, 2, 3), (4, 5, 6, 7), tuple(range(8))
SCHEDULES = {"b": [("all", ALL)], "e": [("all", ALL)],
             "c": [("all", LOW), ("all", HIGH)],
             "d": [("anchor", LOW), ("anchor", HIGH), ("rest", LOW), ("rest", HIGH)]}
DESCRIPTIONS = {"baseline": "the snapshot's prior (step 3500), as it is",
                "a": "the snapshot's prior retrained alone on the rounded symbols",
                "b": "a + a mean (the head gives mean and log2 sigma from the coarse codes)",
                "c": "b + channel groups: channels 4-7 also from channels 0-3's y_hat (5x5 conv, 32 hidden)",
                "d": "c + checkerboard: the second half of positions also from the first half's y_hat (all channels)",
                "e": "b + a residual 3x3 conv over the coarse features at the fine map's resolution (no context)"}


def symbols(net, y: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q signed float, log2 g (B, C, 1, 1)) of y (B, C, H, W) at one anchor per sample, as
    `net.vq_f.residual_indices` computes them (the codec's gains from their integers)."""
    vq = net.vq_f
    gains = torch.cat([vq.gain(int(k)) for k in anchors])
    q = torch.round(y * gains).clamp(-vq.max_symbol, vq.max_symbol)
    return q, torch.cat([vq.log2_gain_at(int(k))[None, :, None, None] for k in anchors])


def bits_of(model, maps, q, log2_gain, max_symbol) -> torch.Tensor:
    """Bits (B, C, H, W) of q under a candidate (Retrained, ContextPrior)."""
    y_hat = q / torch.exp2(log2_gain)
    mu, log2_sigma = model(maps, y_hat)
    return gauss_bits(q, mu * torch.exp2(log2_gain), log2_sigma + log2_gain, max_symbol)


@torch.no_grad()
def build_cache(lattice, data_dir: Path, crops: int, seed: int) -> dict:
    """The frozen network's coarse codes and y: `crops` random training crops (CROP px, random
    flips, the run's sampler) and the validation images whole."""
    net = lattice.net
    g = net.graphs()

    def run(px: np.ndarray):
        x = net.normalize(torch.from_numpy(px).float())
        h_h, m, maps = coarse(net, x)
        return [c.short() for c in maps], g["latent_fine"](h_h, m)[0]

    sampler = data.CropSampler([data.load_rgb(p) for p in data.split(data.list_images(data_dir), "train")], CROP, seed)
    top, bottom, ys = [], [], []
    for _ in range(crops // BATCH):
        (t, b), y = run(sampler.batch(BATCH))
        top.append(t), bottom.append(b), ys.append(y)
    val = []
    for px in validation_images(data_dir):
        maps, y = run(px.transpose(2, 0, 1)[None].copy())
        val.append({"maps": maps, "y": y, "pixels": px.shape[0] * px.shape[1]})
    return {"train": {"maps": [torch.cat(top), torch.cat(bottom)], "y": torch.cat(ys)}, "val": val}


@torch.no_grad()
def evaluate(model, lattice, val: list[dict]) -> dict:
    """Mean fine-map bpp over the validation images at each of ANCHORS under a candidate (None:
    the snapshot's prior through its own `bits`, as `validate` computes it)."""
    net = lattice.net
    out = {}
    for k in ANCHORS:
        total = 0.0
        for im in val:
            maps = [c.long() for c in im["maps"]]
            q, log2_gain = symbols(net, im["y"], torch.tensor([k]))
            if model is None:
                bits = lattice.prior.bits(q, lattice.prior(maps), net.vq_f.log2_gain_at(k))
            else:
                bits = bits_of(model, maps, q, log2_gain, net.vq_f.max_symbol)
            total += float(bits.sum()) / im["pixels"]
        out[str(k)] = round(total / len(val), 4)
    return out


def train(model, lattice, cache: dict, cpu_seconds: float, lr: float, seed: int, log) -> dict:
    """Adam on the mean bits per pixel of random cached crops, each at a uniform random anchor,
    until `cpu_seconds` of this process's CPU time; the rate falls linearly to 0 over the budget."""
    net, train_set = lattice.net, cache["train"]
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    start, steps, recent = time.process_time(), 0, []
    while (spent := time.process_time() - start) < cpu_seconds:
        for group in opt.param_groups:
            group["lr"] = lr * (1 - spent / cpu_seconds)
        pick = torch.from_numpy(rng.integers(len(train_set["y"]), size=BATCH))
        maps = [m[pick].long() for m in train_set["maps"]]
        q, log2_gain = symbols(net, train_set["y"][pick], torch.from_numpy(rng.integers(7, size=BATCH)))
        bpp = bits_of(model, maps, q, log2_gain, net.vq_f.max_symbol).sum() / (BATCH * CROP * CROP)
        opt.zero_grad()
        bpp.backward()
        opt.step()
        steps += 1
        recent.append(bpp.item())
        if steps % 200 == 0:
            log(f"  step {steps}, {spent:.0f} CPU s, train bpp {np.mean(recent):.4f}")
            recent = []
    model.eval()
    return {"steps": steps, "cpu_seconds": round(time.process_time() - start, 1)}


@torch.no_grad()
def forward_seconds(model, lattice, repeats: int = 3) -> float:
    """Least CPU seconds (this thread) of the prior's parameters for a 768x512 image (fine map
    256x384, random codes and y_hat): the decoder's extra work beyond the symbol walk."""
    cfg = lattice.prior.cfg
    maps = [torch.randint(k, (1, 256 // f, 384 // f)) for k, f in cfg.conds]
    y_hat = torch.randn(1, cfg.channels, 256, 384)
    times = []
    for _ in range(repeats):
        t = time.process_time()
        lattice.prior(maps) if model is None else model(maps, y_hat)
        times.append(time.process_time() - t)
    return round(min(times), 3)


def make(name: str, prior) -> nn.Module:
    """Candidate `name` from the snapshot's (frozen) prior, every parameter trainable."""
    model = Retrained(prior) if name == "a" else ContextPrior(prior, SCHEDULES[name], refine=name == "e")
    return model.requires_grad_(True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, help="results JSON")
    p.add_argument("--snapshot", type=Path, required=True, help="a lattice run folder (lattice.json, .safetensors)")
    p.add_argument("--data", type=Path, required=True, help="the image folder (its train and val splits)")
    p.add_argument("--cache", type=Path, required=True, help="the frozen symbols' cache (made if absent)")
    p.add_argument("--candidates", default="a,b,c,d,e")
    p.add_argument("--cpu-seconds", type=float, default=300.0, help="training budget per candidate")
    p.add_argument("--crops", type=int, default=2400)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=35)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    lattice = load_lattice(args.snapshot)
    for q in lattice.parameters():
        q.requires_grad_(False)
    if args.cache.exists():
        cache = torch.load(args.cache)
    else:
        t = time.process_time()
        cache = build_cache(lattice, args.data, args.crops, args.seed)
        torch.save(cache, args.cache)
        log(f"cache: {len(cache['train']['y'])} crops, {len(cache['val'])} validation images, "
            f"{time.process_time() - t:.0f} CPU s")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.update({"snapshot": str(args.snapshot), "crops": len(cache["train"]["y"]), "crop": CROP, "batch": BATCH,
                    "validation_images": len(cache["val"]), "cpu_seconds_each": args.cpu_seconds, "lr": args.lr,
                    "candidates": results.get("candidates", {})})
    base = results["candidates"].get("baseline")
    if base is None:
        base = {"description": DESCRIPTIONS["baseline"], "params": sum(q.numel() for q in lattice.prior.parameters()),
                "bpp": evaluate(None, lattice, cache["val"]), "forward_s_768x512": forward_seconds(None, lattice)}
        results["candidates"]["baseline"] = base
        log(f"baseline: {base}")
    for name in args.candidates.split(","):
        torch.manual_seed(args.seed)
        model = make(name, lattice.prior)
        row = {"description": DESCRIPTIONS[name], "params": sum(q.numel() for q in model.parameters())}
        row["start_bpp"] = evaluate(model, lattice, cache["val"])
        log(f"{name}: start {row['start_bpp']}")
        row.update(train(model, lattice, cache, args.cpu_seconds, args.lr, args.seed, log))
        row["bpp"] = evaluate(model, lattice, cache["val"])
        row["saving_pct"] = {k: round(100 * (1 - v / base["bpp"][k]), 2) for k, v in row["bpp"].items()}
        row["forward_s_768x512"] = forward_seconds(model, lattice)
        results["candidates"][name] = row
        log(f"{name}: {row}")
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""What a smaller fine-level prior would cost in rate and buy in decode time (issue 11's bar:
every level decodes in at most 2x the default's time; the fine map's walk is most of the top
levels' decode).

Each variant CxB (C channels, B gated blocks) is cut from a run's trained float priors
(`vqzip.priors.cut`, channels ranked on six validation images' maps), then fine-tuned on the fine maps
of the training split's nearest codes for the same CPU time, the original architecture as the
control. Rate: the float prior's ideal bits per fine code on the validation split (nearest
codes). Time: the integer walk of one validation image's fine map, one thread, under an
untrained prior of that shape calibrated to integers (the walk's time depends on the shape
alone), against the run's own shape; best of 3, interleaved (`--speed-only` on an idle machine
times them again and keeps the rates).

    python bench/fine_prior_size.py --net training-runs/L3 --priors training-runs/L3-priors \\
        --data ../shared/data/train --variants 64x3 64x2 48x2 32x2 32x1 24x2 --minutes 20 \\
        --out results/fine-prior-size

One process per variant fits two cores (`--variants 32x2 --minutes 20` twice at once): the
budget is the process's CPU time, not the wall clock. `--speed-only` times the walks alone.
Writes OUT/VARIANT.json per variant and prints the table of what OUT holds.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from safetensors.torch import load_file

from vqzip import data, models
from vqzip.priors.calibration import calibrate
from vqzip.priors.cut import cut
from vqzip.priors.fixedpoint import FixedPointPrior
from vqzip.priors.pixelcnn import PixelCNN, PixelCNNConfig
from vqzip.training.autoencoder import load_net
from vqzip.training.priors import CodeCropSampler, cached_codes, crop_batch, extract_codes, summed_cross_entropy

FINE = -1  # the fine map is the last


@torch.no_grad()
def bits_per_code(prior: PixelCNN, maps: list[list[torch.Tensor]], conds: tuple[int, ...]) -> float:
    prior.eval()
    bits = sum(float(prior.nll_bits(m[FINE][None], [m[j][None] for j in conds]).sum()) for m in maps)
    prior.train()
    return bits / sum(m[FINE].numel() for m in maps)


def fine_tune(prior: PixelCNN, maps: list[list[np.ndarray]], spec, minutes: float, seed: int) -> int:
    """Adam at 3e-4, cosine to 1e-5 over `minutes` of this process's CPU time, bf16 autocast,
    batches of 16 crops of 128 image pixels; returns the steps taken."""
    tensors = [[torch.from_numpy(m.astype(np.int64)) for m in ms] for ms in maps]
    sampler, opt = CodeCropSampler(maps, 128, seed), torch.optim.Adam(prior.parameters(), lr=3e-4)
    budget = minutes * 60
    t0, steps = time.process_time(), 0
    while (spent := time.process_time() - t0) < budget:
        inputs, targets = crop_batch(prior, spec, FINE, tensors, sampler.batch(16), 128)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = prior(*inputs)
        loss = summed_cross_entropy(logits, targets) / targets.numel()
        for group in opt.param_groups:
            group["lr"] = max(3e-4 * 0.5 * (1 + math.cos(math.pi * spent / budget)), 1e-5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    return steps


def walk_seconds(net, shapes: list[tuple[int, int]], codes: list[torch.Tensor], tile: tuple[int, int],
                 cond_channels: int) -> dict:
    """Best-of-3 seconds of the fine map's walk over `codes` under untrained priors of each
    (channels, blocks), calibrated to integers; interleaved."""
    conds = [codes[j] for j in net.maps[FINE].conds]
    known = codes[FINE].numpy()
    priors = {}
    for c, b in shapes:
        torch.manual_seed(0)
        float_prior = PixelCNN(models.prior_config(net.maps, len(net.maps) - 1, channels=c, blocks=b, cond_channels=cond_channels)).eval()
        t = calibrate(float_prior, [(codes[FINE], conds)])
        t["walk.tile"] = torch.tensor(tile, dtype=torch.int32)
        priors[(c, b)] = FixedPointPrior(float_prior.cfg, t)
    best = {k: math.inf for k in priors}
    for _ in range(3):
        for k, p in priors.items():
            t0 = time.perf_counter()
            p.walk(*known.shape, lambda probs, i, j: known[i, j], conds)
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", type=Path, required=True, help="run folder with the trained network (vqvae.safetensors)")
    ap.add_argument("--priors", type=Path, required=True, help="run folder with its trained float priors (prior.safetensors)")
    ap.add_argument("--data", type=Path, required=True, help="the training images (the validation split is held out)")
    ap.add_argument("--variants", nargs="+", default=["64x3", "32x2"], metavar="CxB")
    ap.add_argument("--minutes", type=float, default=20.0, help="CPU minutes of fine-tuning per variant")
    ap.add_argument("--tile", default="32x0", help="walk tiles of the timed priors (ROWSxCOLS, 0: whole)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path.home() / "vqzip-runs" / "fine-prior-size",
                    help="folder for the training split's code maps (codes.npz, about 70 MB)")
    ap.add_argument("--speed-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    net = load_net(args.net)
    spec = net.maps[FINE]
    files = data.list_images(args.data)
    val = [[torch.from_numpy(m.astype(np.int64)) for m in ms] for ms in extract_codes(net, data.split(files, "val"))]
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.variants]
    priors_json = json.loads((args.priors / "prior.json").read_text())["config"]["priors"]
    full_cfg = PixelCNNConfig(**priors_json[len(net.maps) - 1])
    timed = max(val, key=lambda m: m[FINE].numel())  # the largest validation image's maps
    seconds = walk_seconds(net, [(full_cfg.channels, full_cfg.blocks), *shapes], timed,
                           tuple(int(v) for v in args.tile.split("x")), full_cfg.cond_channels)
    base = seconds[(full_cfg.channels, full_cfg.blocks)]
    if not args.speed_only:
        full = PixelCNN(full_cfg)
        prefix = f"priors.{len(net.maps) - 1}."
        full.load_state_dict({k[len(prefix):]: v for k, v in load_file(str(args.priors / "prior.safetensors")).items()
                              if k.startswith(prefix)})
        full.eval()
        args.cache.mkdir(parents=True, exist_ok=True)
        maps = cached_codes(args.cache, net, data.split(files, "train"))
    for c, b in shapes:
        path = args.out / f"{c}x{b}.json"
        record = json.loads(path.read_text()) if path.exists() else {}  # --speed-only keeps a variant's rate
        record.update({"variant": f"{c}x{b}", "walk_s": seconds[(c, b)], "walk_ratio": seconds[(c, b)] / base,
                       "timed_map": list(timed[FINE].shape)})
        if not args.speed_only:
            prior = cut(full, replace(full.cfg, channels=c, blocks=b), [(m[FINE], [m[j] for j in spec.conds]) for m in val[:6]])
            record["cut_bits_per_code"] = bits_per_code(prior, val, spec.conds)
            record["steps"] = fine_tune(prior, maps, spec, args.minutes, seed=7)
            record["minutes"] = args.minutes
            record["bits_per_code"] = bits_per_code(prior, val, spec.conds)
        path.write_text(json.dumps(record, indent=1))
    table = Table(title=f"fine prior size ({args.out})")
    for col in ("variant", "walk (x)", "CPU min", "steps", "val bits/code", "vs control"):
        table.add_column(col, justify="right")
    rows = [json.loads(p.read_text()) for p in sorted(args.out.glob("*.json"))]
    control = next((r.get("bits_per_code") for r in rows if r["variant"] == f"{full_cfg.channels}x{full_cfg.blocks}"), None)
    for r in sorted(rows, key=lambda r: -r["walk_ratio"]):
        bits = r.get("bits_per_code")
        table.add_row(r["variant"], f"{r['walk_ratio']:.2f}", f"{r.get('minutes', '-')}", f"{r.get('steps', '-')}",
                      "-" if bits is None else f"{bits:.4f}",
                      "-" if bits is None or control is None else f"{100 * (bits / control - 1):+.1f}%")
    Console().print(table)


if __name__ == "__main__":
    main()

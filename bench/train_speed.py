"""Training speed on this machine: crops per second of both phases' steps (forward, loss,
backward, Adam), by precision, memory format and torch.compile. Needs a quiet machine.

    python bench/train_speed.py                       # vqz-base's shapes: 16 crops of 128 px
    python bench/train_speed.py --stages 2 --crop 256 --batch 4

Phase I: the vqvae2 network (MSE + preview + VQ losses, quantizers in float32 as in training).
Phase II: one PixelCNN per code map on the code crops over the same pixels, each conditioned
as in the codec. The median of the steps after --warmup is reported.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from vqzip.priors.pixelcnn import PixelCNN
from vqzip import models

VARIANTS = {  # name: (autocast bf16, channels-last, compile)
    "fp32": (False, False, False),
    "fp32, channels-last": (False, True, False),
    "fp32, compiled": (False, False, True),
    "bf16": (True, False, False),
    "bf16, channels-last": (True, True, False),
    "bf16, channels-last, compiled": (True, True, True),
}


def timed_steps(step, n: int, warmup: int) -> float:
    times = []
    for _ in range(warmup + n):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return float(np.median(times[warmup:]))


def arch(args) -> dict:
    return {"bottom_stages": args.stages, "fine_stages": args.fine_stages}


def phase1(variant, args) -> float:
    bf16, cl, compiled = variant
    torch.manual_seed(0)
    net = models.build("vqvae2", arch(args))
    if cl:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    x = torch.rand(args.batch, 3, args.crop, args.crop) - 0.5
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    if compiled:  # the convolutional parts; the quantizers are data-dependent
        for name in ("enc_b", "enc_t", "dec_t", "dec", "head"):
            getattr(net, name).compile(dynamic=False)  # in place: the model indexes some of them

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            o = net(x)
        loss = F.mse_loss(o["x_hat"].float(), x) + 0.5 * F.mse_loss(o["preview"].float(), F.avg_pool2d(x, 4)) + o["vq_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timed_steps(step, args.steps, args.warmup + 3 * compiled)


def phase2(variant, args) -> float:
    bf16, cl, compiled = variant
    torch.manual_seed(0)
    maps = models.build("vqvae2", arch(args)).maps
    priors = [PixelCNN(models.prior_config(maps, k, channels=96, blocks=3)) for k in range(len(maps))]
    if cl:
        priors = [p.to(memory_format=torch.channels_last) for p in priors]
    opt = torch.optim.Adam([q for p in priors for q in p.parameters()], 1e-4)
    codes = [torch.randint(0, m.num_codes, (args.batch, args.crop // m.stride, args.crop // m.stride)) for m in maps]
    calls = [torch.compile(p, dynamic=False) if compiled else p for p in priors]

    def step():
        loss = 0
        for k, (m, p, call) in enumerate(zip(maps, priors, calls)):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = call(p.canvas(codes[k]), p.cond_canvas(p.condition([codes[j] for j in m.conds])))
            loss = loss + F.cross_entropy(logits.float(), codes[k])
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timed_steps(step, args.steps, args.warmup + 3 * compiled)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--stages", type=int, default=1, help="residual stages at the bottom level")
    ap.add_argument("--fine-stages", type=int, default=0, help="stages of a fine level (0: none)")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    table = Table("variant", "phase I s/step", "phase I crops/s", "phase II s/step", "phase II crops/s",
                  title=f"training speed: {args.batch} crops of {args.crop} px, {args.stages} bottom stage(s), "
                        f"{args.threads} threads")
    for name, variant in VARIANTS.items():
        a, b = phase1(variant, args), phase2(variant, args)
        table.add_row(name, f"{a:.3f}", f"{args.batch / a:.1f}", f"{b:.3f}", f"{args.batch / b:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()

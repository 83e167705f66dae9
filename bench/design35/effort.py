"""Issue 35 design direction: encoder effort. The decoder and the format stay as they are; the
encoder searches for fine codes that decode closer to the image than the nearest codes do.

    nearest:  fine = argmin_c |z_f - e_c|            (what the codec codes at λ = 0)
    refined:  z <- z_f;  repeat: fine = nearest(z);  x̂ = dec_f(m, e_fine) with a straight-through
              gradient to z;  z <- z - Adam step of |x̂ - x|²;  keep the codes of the best decode

The top and bottom codes are the nearest ones (their bits under vqz-l3's integer priors as in
`evalval.py`); the fine codes' bits under vqz-l3's fine prior. One thread, validation split.

    python bench/design35/effort.py OUT.json [--iters 0,10,30] [--lr 0.02] [--images N]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vqzip import codec, data, zoo

sys.path.insert(0, str(Path(__file__).parent))
import lattice  # noqa: E402
from evalval import score, tensor  # noqa: E402


def refine(net, x, iters: int, lr: float):
    """Nearest top and bottom codes of x, then fine codes after `iters` steps of the search
    (0: the nearest fine codes). Returns the code maps (1, h, w) and the seconds the fine search took."""
    with torch.no_grad():
        h_h, m, coarse = lattice.coarse(net, x)
        z0 = net.graphs()["latent_fine"](h_h, m)[0]
    t = time.process_time()
    best = net.vq_f.residual_indices(z0)
    if iters:
        with torch.no_grad():
            best_err = F.mse_loss(net.dec_f(torch.cat([m, net.vq_f.lookup(best)], 1)), x).item()
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(iters):
            codes = net.vq_f.residual_indices(z.detach())
            q = net.vq_f.lookup(codes)
            x_hat = net.dec_f(torch.cat([m, z + (q - z).detach()], 1))
            err = F.mse_loss(x_hat, x)
            if err.item() < best_err:
                best_err, best = err.item(), codes
            opt.zero_grad()
            err.backward()
            opt.step()
    return coarse + best, time.process_time() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--iters", default="0,10,30")
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--images", type=int, default=0)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/train")
    args = ap.parse_args()
    torch.set_num_threads(1)
    files = data.split(data.list_images(args.data), "val")
    files = files[: args.images] if args.images else files
    model = zoo.load("vqz-l3")
    net = lattice.shipped_net()
    rows = {n: [] for n in map(int, args.iters.split(","))}
    for f in files:
        px = data.load_rgb(f)
        h, w = px.shape[:2]
        x = tensor(px)
        for n in rows:
            codes, secs = refine(net, x, n, args.lr)
            maps = [c[0].numpy() for c in codes]
            bits = sum(codec.ideal_bits(model.priors[k], maps[k], [maps[j] for j in mp.conds])
                       for k, mp in enumerate(model.maps))
            out = codec.decode_pixels(model.net, maps, w, h)
            rows[n].append([bits / (h * w), *score(px, out), secs])
    res = []
    for n, r in rows.items():
        r = np.array(r)
        res.append({"iters": n, "bpp": float(r[:, 0].mean()), "psnr": float(r[:, 1].mean()),
                    "ms_ssim_db": float(r[:, 2].mean()), "search_cpu_s": float(r[:, 3].mean())})
        print(f"iters {n:3d}  {res[-1]['bpp']:.4f} bpp  {res[-1]['psnr']:.3f} dB  {res[-1]['ms_ssim_db']:.3f} MS-SSIM dB"
              f"  search {res[-1]['search_cpu_s']:.2f} CPU s/image")
    args.out.write_text(json.dumps({"lr": args.lr, "images": len(files), "points": res}, indent=1))


if __name__ == "__main__":
    main()

"""Issue 35 design evaluation on the validation split (31 images), nearest codes, one thread.

    python bench/design35/evalval.py OUT.json CANDIDATE... [--images N] [--data DIR]
      vq:RUN       a vqvae run folder: points at 2, 3 (, 4) maps; top, bottom and fine bits under the shipped
                   vqz-l3 integer priors (ideal bits, what a file codes to within ~0.1%); a map without a
                   shipped prior (fine.1) is counted at its empirical entropy over the split (an upper bound)
      l3           the shipped vqz-l3 network the same way (the anchor)
      lat:RUN      a lattice run: top and bottom bits as l3 (the same codes), lattice bits under its
                   discretized Gaussian at gains k = 0, --step, ..., 6
Prints bpp, PSNR, MS-SSIM dB per point and writes OUT.json.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vqzip import codec, data, metrics, zoo
from vqzip.inference.torch_graphs import torch_network
from vqzip.training.autoencoder import load_net

sys.path.insert(0, str(Path(__file__).parent))
import lattice  # noqa: E402



def tensor(px):
    x = torch.from_numpy(np.ascontiguousarray(px.transpose(2, 0, 1), dtype=np.float32))[None] / 255 - 0.5
    h, w = x.shape[2:]
    return F.pad(x, (0, -w % 8, 0, -h % 8), mode="replicate")


def pixels(x, h, w):
    return ((x[0, :, :h, :w].float() + 0.5) * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def tb_bits(model, codes):
    codes = [c[0].numpy() for c in codes]  # (1, h, w) maps of one image
    return sum(codec.ideal_bits(model.priors[k], codes[k], [codes[j] for j in m.conds])
               for k, m in enumerate(model.maps[:2]))


def score(px, out):
    return metrics.psnr(px, out), metrics.db(metrics.ms_ssim(px, out))


def eval_vq(net, model, images):
    """net: the codec's numpy network (`vqzip.inference`)."""
    rows = {}
    extra = []  # fine.1 codes, for its empirical entropy
    for px in images:
        h, w = px.shape[:2]
        codes = codec.encode_codes(net, px)
        bits = [codec.ideal_bits(model.priors[k], codes[k], [codes[j] for j in m.conds]) if k < 3 else None
                for k, m in enumerate(net.maps)]
        if len(codes) > 3:
            extra.append(codes[3].ravel())
        for n in range(2, len(codes) + 1):
            out = codec.decode_pixels(net, codes[:n], w, h)
            rows.setdefault(n, []).append([sum(b for b in bits[:n] if b is not None), h * w, *score(px, out),
                                           codes[3].size if n > 3 else 0])
    if extra:
        counts = np.bincount(np.concatenate(extra), minlength=net.maps[3].num_codes)
        p = counts[counts > 0] / counts.sum()
        h1 = float(-(p * np.log2(p)).sum())
    res = []
    for n, r in rows.items():
        r = np.array(r, dtype=np.float64)
        bits = r[:, 0] + (h1 * r[:, 4] if n > 3 else 0)
        res.append({"point": f"{n} maps", "bpp": float(np.mean(bits / r[:, 1])), "psnr": float(r[:, 2].mean()),
                    "ms_ssim_db": float(r[:, 3].mean())})
    return res


@torch.no_grad()
def eval_lat(run, model, images, step: float):
    net = lattice.shipped_net()
    cfg = json.loads((run / "config.json").read_text())
    lat = lattice.Lattice(net, cfg["channels"])
    final = run / "lattice.pt"
    lat.load_state_dict(torch.load(final) if final.exists() else torch.load(run / "state.pt", weights_only=False)["model"])
    lat.eval()
    ks = np.arange(0, len(lattice.ANCHORS) - 1 + 1e-9, step)
    rows = {k: [] for k in ks}
    dec_s = []
    for px in images:
        h, w = px.shape[:2]
        x = tensor(px)
        h_h, m, codes = lattice.coarse(net, x)
        tb = tb_bits(model, codes)
        for k in ks:
            t = time.perf_counter()
            x_hat, bits = lat(h_h, m, float(k), noise=False)
            dec_s.append(time.perf_counter() - t)
            rows[k].append([tb + float(bits.sum()), h * w, *score(px, pixels(x_hat, h, w))])
    res = []
    for k, r in rows.items():
        r = np.array(r)
        res.append({"point": f"k {k:g}", "bpp": float(np.mean(r[:, 0] / r[:, 1])), "psnr": float(r[:, 2].mean()),
                    "ms_ssim_db": float(r[:, 3].mean())})
    print(f"lattice forward (entropy + synthesis + bits) {np.median(dec_s):.3f} s median per image")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("candidates", nargs="+")
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/train")
    ap.add_argument("--images", type=int, default=0, help="the first N validation images (0: all)")
    ap.add_argument("--step", type=float, default=1.0, help="a lattice run's gains from anchor 0 to the last, this far apart")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out, cands = args.out, args.candidates
    files = data.split(data.list_images(args.data), "val")
    images = [data.load_rgb(f) for f in (files[: args.images] if args.images else files)]
    model = zoo.load("vqz-l3")
    results = json.loads(out.read_text()) if out.exists() else {}
    for c in cands:
        kind, _, run = c.partition(":")
        t = time.time()
        if kind == "l3":
            results[c] = eval_vq(model.net, model, images)
        elif kind == "vq":
            results[c] = eval_vq(torch_network(load_net(Path(run))), model, images)
        elif kind == "lat":
            results[c] = eval_lat(Path(run), model, images, args.step)
        print(f"{c}: {time.time() - t:.0f} s")
        for r in results[c]:
            print(f"  {r['point']:8s} {r['bpp']:.4f} bpp  {r['psnr']:.3f} dB  {r['ms_ssim_db']:.3f} MS-SSIM dB")
        out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

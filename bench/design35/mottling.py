"""Issue 35: where the colour mottling and the MS-SSIM dip of levels 7 and 8 come from.

Each validation image is coded at the levels given (real files through `vqzip.api`), decoded, and
its 8x8 blocks (the fine map's skip blocks, `vqzip.fine_skip`) sorted by two things: whether the
file skipped the fine map there, and whether the original is flat there (luma standard deviation
under 2 levels of 255, the smooth areas where mottling shows). Per class: its share of the blocks,
the mean squared error of luma (Y) and of chroma (Cb, Cr together) in BT.601 YCbCr, and its share
of the image's chroma error.

    python bench/design35/mottling.py OUT.json [--levels 7,8,9] [--images N]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from vqzip import api, codec, data, fine_skip

PX = 8  # pixels per skip block side (fine_skip.BLOCK positions at stride 2)
FLAT = 2.0


def ycc(px: np.ndarray) -> np.ndarray:
    r, g, b = (px[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return np.stack([y, 0.564 * (b - y), 0.713 * (r - y)], -1)


def blocks(a: np.ndarray) -> np.ndarray:
    """(H, W, ...) -> (H//PX, W//PX, PX*PX, ...) whole blocks."""
    h, w = a.shape[0] // PX * PX, a.shape[1] // PX * PX
    a = a[:h, :w]
    return a.reshape(h // PX, PX, w // PX, PX, *a.shape[2:]).swapaxes(1, 2).reshape(h // PX, w // PX, PX * PX, *a.shape[2:])


def classify(px: np.ndarray, out: np.ndarray, fine: np.ndarray | None, out_token: int):
    """Per whole block: skipped (bool), flat (bool), luma and chroma squared error sums."""
    a, b = ycc(px), ycc(out)
    err = blocks((a - b) ** 2)  # (bh, bw, 64, 3)
    flat = blocks(a[..., 0]).std(-1) < FLAT
    if fine is None:
        skipped = np.zeros(flat.shape, bool)
    else:
        sk = fine == out_token  # positions at stride 2: blocks of fine_skip.BLOCK
        sk = sk[: sk.shape[0] // fine_skip.BLOCK * fine_skip.BLOCK, : sk.shape[1] // fine_skip.BLOCK * fine_skip.BLOCK]
        sk = sk.reshape(sk.shape[0] // fine_skip.BLOCK, fine_skip.BLOCK, -1, fine_skip.BLOCK).all((1, 3))
        skipped = sk[: flat.shape[0], : flat.shape[1]]
        flat = flat[: skipped.shape[0], : skipped.shape[1]]
        err = err[: skipped.shape[0], : skipped.shape[1]]
    return skipped, flat, err[..., 0].sum(-1), err[..., 1:].sum((-1, -2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--levels", default="7,8,9")
    ap.add_argument("--images", type=int, default=0)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared/data/train")
    args = ap.parse_args()
    files = data.split(data.list_images(args.data), "val")
    files = files[: args.images] if args.images else files
    result = {}
    for level in map(int, args.levels.split(",")):
        acc = {}  # class -> [blocks, luma sse, chroma sse]
        bpp = []
        for f in files:
            px = data.load_rgb(f)
            blob = api.compress(Image.fromarray(px), quality=level)
            dec = codec.decompress(blob)
            out = np.asarray(dec.image.convert("RGB"))
            fine = dec.codes[2] if len(dec.codes) > 2 else None
            fine = None if fine is None else np.asarray(fine)
            model = codec.model_for(dec.header)
            skipped, flat, y, c = classify(px, out, fine, model.maps[-1].num_codes)
            bpp.append(len(blob) * 8 / (px.shape[0] * px.shape[1]))
            for name, mask in (("coded, textured", ~skipped & ~flat), ("coded, flat", ~skipped & flat),
                               ("skipped, textured", skipped & ~flat), ("skipped, flat", skipped & flat)):
                a = acc.setdefault(name, [0, 0.0, 0.0])
                a[0] += int(mask.sum())
                a[1] += float(y[mask].sum())
                a[2] += float(c[mask].sum())
        total_blocks = sum(a[0] for a in acc.values())
        total_c = sum(a[2] for a in acc.values())
        rows = {name: {"share_of_blocks": a[0] / total_blocks,
                       "luma_mse": a[1] / max(a[0] * PX * PX, 1), "chroma_mse": a[2] / max(a[0] * PX * PX * 2, 1),
                       "share_of_chroma_error": a[2] / total_c} for name, a in acc.items()}
        result[str(level)] = {"bpp": float(np.mean(bpp)), "classes": rows}
        print(f"level {level}: {np.mean(bpp):.3f} bpp")
        for name, r in rows.items():
            print(f"  {name:18s} blocks {r['share_of_blocks']:6.1%}  luma MSE {r['luma_mse']:7.2f}  "
                  f"chroma MSE {r['chroma_mse']:6.2f}  share of chroma error {r['share_of_chroma_error']:6.1%}")
    args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

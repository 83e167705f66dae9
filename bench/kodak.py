"""Evaluate a model on a folder of images through the real codec: bytes out, pixels back.

    python bench/kodak.py ../shared/data/kodak --json results/kodak-vqz-base.json

Per image: compress to .vqz bytes and decompress those bytes (model loaded once, not timed);
rate = 8 * file bytes / pixels; PSNR on the decoded 8-bit RGB pixels; the priors' ideal
(teacher-forced) rate beside it, so the coding overhead shows; and the preview (the top level
decoded alone): its time, and its PSNR against the image reduced 4x (box filter, whole 4x4
blocks). Prints a table and the means; --json writes them with what ran them (threads, and the
engine of the networks: VQZIP_BACKEND, default onnx).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from vqzip import api, codec, container, data, metrics, runtime, zoo


def evaluate(path: Path, model: zoo.CodecModel) -> dict:
    """One image coded at `api.model_point` (scale 1; a lattice model at its middle anchor)."""
    with Image.open(path) as im:
        im.load()
        original = np.asarray(im.convert("RGB"))
        t = time.perf_counter()
        coded = codec.compress(im, model, api.model_point(model))
        enc_s = time.perf_counter() - t
        t = time.perf_counter()
        result = codec.decompress(coded, model)
        decoded = result.image
        dec_s = time.perf_counter() - t
        t = time.perf_counter()
        preview = codec.preview(coded, model).image
        preview_s = time.perf_counter() - t
        estimate = sum(codec.estimated_bits(model, result.codes, container.anchor_of(result.header)).values())
    pixels = im.width * im.height
    return {"image": path.name, "width": im.width, "height": im.height, "bytes": len(coded),
            "bpp": 8 * len(coded) / pixels, "estimated_bpp": estimate / pixels,
            "psnr": metrics.psnr(np.asarray(decoded.convert("RGB")), original),
            "preview_psnr": metrics.preview_psnr(np.asarray(preview.convert("RGB")), original),
            "encode_s": enc_s, "decode_s": dec_s, "preview_s": preview_s}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", type=Path, help="folder of images")
    ap.add_argument("-m", "--model", help="shipped model name, at scale 1 (a lattice model at its middle anchor) [default: the default level's model]")
    ap.add_argument("--threads", type=int, default=2,
                    help="the process's threads: tiles of the network at once, each on one thread of its engine")
    ap.add_argument("--limit", type=int, help="only the first N images")
    ap.add_argument("--json", type=Path, help="write per-image rows and means here")
    args = ap.parse_args(argv)
    runtime.set_threads(args.threads)
    name = args.model or zoo.level(None).point.model
    model = zoo.load(name)
    codec.compress(Image.new("RGB", (64, 64)), model, api.model_point(model))  # first calls at new shapes are slow: warm up
    rows = []
    table = Table("image", "size", "bytes", "bpp", "est. bpp", "PSNR", "enc s", "dec s", "preview s", "preview PSNR",
                  title=f"{name} on {args.images}")
    for path in data.list_images(args.images)[: args.limit]:
        r = evaluate(path, model)
        rows.append(r)
        table.add_row(r["image"], f"{r['width']}x{r['height']}", f"{r['bytes']:,}", f"{r['bpp']:.4f}",
                      f"{r['estimated_bpp']:.4f}", f"{r['psnr']:.2f}", f"{r['encode_s']:.2f}", f"{r['decode_s']:.2f}",
                      f"{r['preview_s']:.3f}", f"{r['preview_psnr']:.2f}")
        print(f"{r['image']}: {r['bpp']:.4f} bpp {r['psnr']:.2f} dB enc {r['encode_s']:.2f}s dec {r['decode_s']:.2f}s "
              f"preview {r['preview_s']:.3f}s {r['preview_psnr']:.2f} dB", flush=True)
    keys = ("bpp", "estimated_bpp", "psnr", "encode_s", "decode_s", "preview_s", "preview_psnr")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    table.add_section()
    table.add_row("mean", "", "", f"{mean['bpp']:.4f}", f"{mean['estimated_bpp']:.4f}", f"{mean['psnr']:.2f}",
                  f"{mean['encode_s']:.2f}", f"{mean['decode_s']:.2f}", f"{mean['preview_s']:.3f}", f"{mean['preview_psnr']:.2f}")
    Console().print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": name, "sha256": model.sha256, "images": str(args.images), "json": str(args.json),
                                         "threads": args.threads,
                                         "backend": model.backend, "mean": mean, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Speed and memory of the codec, as a table (issue 3's targets are judged here, not in tests).

    python bench/speed.py ../shared/data/kodak            # 4 Kodak images and a 3840x2160 case
    python bench/speed.py ../shared/data/kodak --images 24 --no-4k
    python bench/speed.py ../shared/data/kodak --levels --no-4k   # and every quality level

Rows, per Kodak image (mean over --images), 2 torch threads, model loaded once and warmed up:
compress, decompress and preview (`--preview`, the top level alone) seconds; the same as whole
processes (`python -m vqzip`, imports and model load included) with their peak RSS; prior decoding alone (both walks, range decoder
included) against one teacher-forced pass of both priors (the walk over known codes: what the
encoder runs); the naive loop, one whole-map network call per code, timed on a crop and scaled per
symbol; and a 3840x2160 image (Kodak's kodim01 resized), compressed and decompressed as whole
processes. With `--levels`, every quality level of the manifest too: its mean bpp, compress and
decompress seconds with its model loaded (the issue's bar: every level decodes in at most 3 s).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table

from vqzip.priors.decode import teacher_forced, wavefronts
from vqzip import codec, data, zoo


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def process(args: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of `python -m vqzip ARGS` in a fresh process."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip())
    return seconds, float(proc.stdout.strip().splitlines()[-1]) / 1024


# runs the CLI's entry point in-process (as `vqzip` does) and prints its peak RSS in kB (Linux's ru_maxrss unit)
_RSS = """
import resource, sys
from vqzip.cli import run
sys.argv = ["vqzip", *sys.argv[1:]]
try:
    run()
except SystemExit as e:
    code = e.code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def teacher_forced_pass(model: zoo.CodecModel, codes: list[torch.Tensor]) -> float:
    """Seconds for one parallel pass of every prior over its whole map (all probability rows)."""
    def every():
        for k, m in enumerate(model.maps):
            for _ in teacher_forced(model.priors[k], codes[k], [codes[j] for j in m.conds]):
                pass
    return timed(every)[1]


def naive_per_symbol(model: zoo.CodecModel, codes: list[torch.Tensor], size: int = 16) -> float:
    """Seconds per code of the obvious decoder: the second map's prior re-run over the whole size
    x size crop for every code (the map up to that code known, later codes unknown)."""
    prior, spec = model.priors[1], model.maps[1]
    b = codes[1][:size, :size]
    t = [codes[j][: size * spec.stride // model.maps[j].stride, : size * spec.stride // model.maps[j].stride]
         for j in spec.conds]
    known = torch.zeros_like(b)  # not yet decoded: any code (the prior is causal; OUT would mean skipped)
    row = np.empty(size * size, dtype=int)  # each position's row in the pass's (wavefront) order
    row[np.concatenate([i * size + j for i, j in wavefronts(size, size, 3)])] = np.arange(size * size)
    start = time.perf_counter()
    for i in range(size):
        for j in range(size):
            probs = np.concatenate([p for p, _ in teacher_forced(prior, known, t)])
            assert probs[row[i * size + j]].sum() > 0  # the one row this call was for
            known[i, j] = b[i, j]
    return (time.perf_counter() - start) / size**2


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kodak", type=Path, help="folder of Kodak images")
    ap.add_argument("--images", type=int, default=4, help="how many Kodak images to average over")
    ap.add_argument("--no-4k", action="store_true", help="skip the 3840x2160 case")
    ap.add_argument("--levels", action="store_true", help="also time every quality level (model loaded)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    model = zoo.load(zoo.level(None).point.model)
    codec.compress(Image.new("RGB", (64, 64)), model)  # first calls at new shapes are slow
    rows: dict[str, list[float]] = {}

    def add(name, value):
        rows.setdefault(name, []).append(value)

    paths = data.list_images(args.kodak)[: args.images]
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            with Image.open(path) as im:
                im.load()
            coded, enc = timed(codec.compress, im, model)
            _, dec = timed(codec.decompress, coded, model)
            _, prev = timed(codec.preview, coded, model)
            (_, _, codes, _), walk = timed(codec.decode_codes, coded, model)
            symbols = sum(c.numel() for c in codes)
            parallel = teacher_forced_pass(model, codes)
            add("compress, model loaded (s)", enc)
            add("decompress, model loaded (s)", dec)
            add("preview (top level only), model loaded (s)", prev)
            add("preview speed-up over decompress (x)", dec / prev)
            add("prior decoding: every walk + range decoder (s)", walk)
            add("one teacher-forced pass of every prior (s)", parallel)
            add("walk / teacher-forced pass (x)", walk / parallel)
            add("symbols per second (walk)", symbols / walk)
            vqz, png = Path(tmp) / "x.vqz", Path(tmp) / "x.png"
            s, rss = process(["compress", str(path), "-o", str(vqz), "-f"])
            add("compress, whole process (s)", s)
            add("compress, whole process peak RSS (MB)", rss)
            s, rss = process(["decompress", str(vqz), "-o", str(png), "-f"])
            add("decompress, whole process (s)", s)
            add("decompress, whole process peak RSS (MB)", rss)
            s, _ = process(["decompress", "--preview", str(vqz), "-o", str(png), "-f"])
            add("decompress --preview, whole process (s)", s)
        naive = naive_per_symbol(model, codes)
        add("naive loop, one network call per code (s per code, 16x16 crop)", naive)
        add("naive loop scaled to the last image (s)", naive * symbols)
        add("walk speed-up over the naive loop (x)", naive * symbols / walk)
        if not args.no_4k:
            with Image.open(paths[0]) as im:
                im.convert("RGB").resize((3840, 2160), Image.LANCZOS).save(Path(tmp) / "4k.png")
            s, rss = process(["compress", str(Path(tmp) / "4k.png"), "-o", str(Path(tmp) / "4k.vqz"), "-f"])
            add("3840x2160 compress, whole process (s)", s)
            add("3840x2160 compress, peak RSS (MB)", rss)
            s, rss = process(["decompress", str(Path(tmp) / "4k.vqz"), "-o", str(Path(tmp) / "4k-out.png"), "-f"])
            add("3840x2160 decompress, whole process (s)", s)
            add("3840x2160 decompress, peak RSS (MB)", rss)

    table = Table("measure", "value", title=f"vqzip speed: {model.name}, {len(paths)} Kodak image(s), 2 threads")
    for name, values in rows.items():
        v = float(np.mean(values))
        table.add_row(name, f"{v:.4f}" if v < 0.01 else f"{v:,.2f}")
    Console().print(table)
    if args.levels:
        Console().print(level_table(paths))


def level_table(paths: list[Path]) -> Table:
    """Every quality level on the images: mean bpp (file size), compress and decompress seconds,
    each level's model loaded and warmed up first."""
    table = Table("level", "model", "scale", "maps", "lambda", "skip", "bpp", "compress s", "decompress s",
                  title=f"every quality level, {len(paths)} Kodak image(s), 2 threads, model loaded")
    images = []
    for path in paths:
        with Image.open(path) as im:
            im.load()
            images.append(im)
    for lv in zoo.levels():
        p = lv.point
        model = zoo.load(p.model)
        codec.compress(Image.new("RGB", (64, 64)), model, p, quality=lv.quality)
        bpp, enc, dec = [], [], []
        for im in images:
            coded, t = timed(lambda: codec.compress(im, model, p, quality=lv.quality))
            enc.append(t)
            dec.append(timed(codec.decompress, coded, model)[1])
            bpp.append(8 * len(coded) / (im.width * im.height))
        table.add_row(str(lv.quality), p.model, str(p.scale), "all" if p.maps is None else str(p.maps), f"{p.lam:g}",
                      f"{p.skip:g}", f"{np.mean(bpp):.4f}",
                      f"{np.mean(enc):.2f}", f"{np.mean(dec):.2f}")
    return table


if __name__ == "__main__":
    main()

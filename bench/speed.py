"""Speed of the codec, per backend of the VQ-VAE's networks, as tables (issue 3's and issue 37's
targets are judged here, not in tests).

    python bench/speed.py                                    # kodim01, default and top levels, onnx and torch
    python bench/speed.py ../shared/data/kodak --images 4 --quality all --runs 5
    python bench/speed.py a.png b.png --backends onnx --no-processes

Images: files, or folders whose first --images images are taken (default: Kodak's kodim01 from
../shared/data/kodak if there, else tests/assets/photo.png). Backends (`--backends`, default
onnx,torch): `zoo.load(name, backend=...)`, each model loaded once and warmed up on a small
image first; torch is measured only where it is importable. Runs alternate the backends (their
order rotating) so a drift of the machine's load weighs on each alike.

1. In process, model loaded, per quality level (`--quality 5,9`, `all`; default: the default
   level and the top one): compress, decompress and preview (the top map alone) seconds, the
   mean over the images of one run; best and median of --runs; the file's bpp; with two
   backends, the ratio of their medians (the second over the first: above 1, the first is faster).
2. The priors, which are the same integer arithmetic whatever the backend (top level, first
   image): prior decoding (every walk and the range decoder) against one teacher-forced pass of
   every prior (the walk over known codes: what the encoder runs), symbols per second, and the
   naive loop, one whole-map prior call per code, timed on a 16x16 crop and scaled per symbol.
3. Whole processes (`python -m vqzip`, VQZIP_BACKEND set; imports and model load included) at
   the default level, the mean over the images, with peak RSS: compress, decompress, decompress
   --preview, and a 3840x2160 image (the first resized) unless --no-4k; all skipped with
   --no-processes.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from vqzip import api, codec, data, zoo
from vqzip.backends import BACKENDS
from vqzip.priors.decode import teacher_forced, wavefronts
from vqzip.runtime import one_thread

ROOT = Path(__file__).resolve().parent.parent
KODIM01 = ROOT.parent / "shared" / "data" / "kodak" / "kodim01.png"
DEFAULT_IMAGE = KODIM01 if KODIM01.exists() else ROOT / "tests" / "assets" / "photo.png"


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def backends_here(asked: list[str]) -> tuple[list[str], list[str]]:
    """The asked backends this tree and environment can run, and a note for each left out."""
    takes_backend = "backend" in inspect.signature(zoo.load).parameters
    runs, notes = [], []
    for b in asked:
        if b == "torch" and importlib.util.find_spec("torch") is None:
            notes.append("torch: not installed here (the `train` extra)")
        elif not takes_backend and b != "torch":
            notes.append(f"{b}: this tree's zoo.load takes no backend (before issue 37: the torch runtime only)")
        else:
            runs.append(b)
    return runs, notes


def load(name: str, backend: str) -> zoo.CodecModel:
    """A model for a backend; a tree whose zoo.load takes no backend is the torch runtime."""
    if "backend" in inspect.signature(zoo.load).parameters:
        return zoo.load(name, backend=backend)
    return zoo.load(name)


def process(args: list[str], backend: str | None = None) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of `python -m vqzip ARGS` in a fresh process, with VQZIP_BACKEND
    set to `backend` (None: as this process has it)."""
    env = dict(os.environ) if backend is None else {**os.environ, "VQZIP_BACKEND": backend}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{backend or 'default backend'}: vqzip {' '.join(args)}: {proc.stderr.strip()}")
    return seconds, float(proc.stdout.strip().splitlines()[-1]) / 1024


# runs the CLI's entry point in-process (as `vqzip` does) and prints its peak RSS in kB: VmHWM,
# the high-water mark of this process's own memory (Linux). Not getrusage's ru_maxrss: a process
# forked from this bench and exec'ed inherits the bench's peak into it (Linux keeps the larger).
_RSS = """
import sys
from vqzip.cli import run
sys.argv = ["vqzip", *sys.argv[1:]]
try:
    run()
except SystemExit as e:
    code = e.code
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
sys.exit(code)
"""


def rotated(items: list, r: int) -> list:
    return items[r % len(items):] + items[: r % len(items)]


def in_process(images: list[Image.Image], levels: list[zoo.Level], backends: list[str], runs: int
               ) -> tuple[dict, dict]:
    """Seconds of compress, decompress and preview: {(quality, backend, op): [the images' mean, per run]},
    and each level's mean bpp."""
    models = {(lv.point.model, b): load(lv.point.model, b) for lv in levels for b in backends}
    for (_, b), model in models.items():  # first calls at new shapes are slow
        codec.compress(Image.new("RGB", (64, 64)), model, api.model_point(model))
    times: dict[tuple, list[float]] = {}
    bpp = {}
    for r in range(runs):
        for lv in levels:
            for b in rotated(backends, r):
                model, per = models[lv.point.model, b], {"compress": [], "decompress": [], "preview": []}
                for i, im in enumerate(images):
                    coded, t = timed(codec.compress, im, model, lv.point, quality=lv.quality)
                    per["compress"].append(t)
                    per["decompress"].append(timed(codec.decompress, coded, model)[1])
                    per["preview"].append(timed(codec.preview, coded, model)[1])
                    bpp.setdefault(lv.quality, {})[i] = 8 * len(coded) / (im.width * im.height)
                for op, ts in per.items():
                    times.setdefault((lv.quality, b, op), []).append(float(np.mean(ts)))
    return times, {q: float(np.mean(list(v.values()))) for q, v in bpp.items()}


def teacher_forced_pass(model: zoo.CodecModel, codes: list[np.ndarray]) -> float:
    """Seconds for one parallel pass of each coded map's prior over its whole map (all probability rows)."""
    def every():
        for k, m in enumerate(model.maps[: len(codes)]):  # a level may code the first maps only
            for _ in teacher_forced(model.priors[k], codes[k], [codes[j] for j in m.conds]):
                pass
    return timed(every)[1]


def naive_per_symbol(model: zoo.CodecModel, codes: list[np.ndarray], size: int = 16) -> float:
    """Seconds per code of the obvious decoder: the second map's prior re-run over the whole size
    x size crop for every code (the map up to that code known, later codes unknown)."""
    prior, spec = model.priors[1], model.maps[1]
    b = codes[1][:size, :size]
    t = [codes[j][: size * spec.stride // model.maps[j].stride, : size * spec.stride // model.maps[j].stride]
         for j in spec.conds]
    known = np.zeros_like(b)  # not yet decoded: any code (the prior is causal; OUT would mean skipped)
    row = np.empty(size * size, dtype=int)  # each position's row in the pass's (wavefront) order
    row[np.concatenate([i * size + j for i, j in wavefronts(size, size, 3)])] = np.arange(size * size)
    start = time.perf_counter()
    for i in range(size):
        for j in range(size):
            probs = np.concatenate([p for p, _ in teacher_forced(prior, known, t)])
            assert probs[row[i * size + j]].sum() > 0  # the one row this call was for
            known[i, j] = b[i, j]
    return (time.perf_counter() - start) / size**2


def priors_rows(im: Image.Image, level: zoo.Level, backend: str) -> list[tuple[str, float]]:
    """Section 2's measures on one image at one level."""
    model = load(level.point.model, backend)
    coded = codec.compress(im, model, level.point, quality=level.quality)
    (_, _, codes, _), walk = timed(codec.decode_codes, coded, model)
    codes = [np.asarray(c) for c in codes]  # whichever array type this tree's codec returns
    symbols = sum(c.size for c in codes)
    with one_thread():  # as the codec runs the priors: a second BLAS thread only waits
        parallel = teacher_forced_pass(model, codes)
        naive = naive_per_symbol(model, codes)
    return [("prior decoding: every walk + range decoder (s)", walk),
            ("one teacher-forced pass of every prior (s)", parallel),
            ("walk / teacher-forced pass (x)", walk / parallel),
            ("symbols per second (walk)", symbols / walk),
            ("naive loop, one prior call per code (s per code, 16x16 crop)", naive),
            ("naive loop scaled to this image (s)", naive * symbols),
            ("walk speed-up over the naive loop (x)", naive * symbols / walk)]


def process_rows(paths: list[Path], backends: list[str], four_k: bool) -> dict[str, dict[str, list[float]]]:
    """Section 3's measures: {measure: {backend: [per image]}}."""
    rows: dict[str, dict[str, list[float]]] = {}

    def add(name, backend, value):
        rows.setdefault(name, {}).setdefault(backend, []).append(value)

    with tempfile.TemporaryDirectory() as tmp:
        vqz, png = Path(tmp) / "x.vqz", Path(tmp) / "x.png"
        for r, path in enumerate(paths):
            for b in rotated(backends, r):
                s, rss = process(["compress", str(path), "-o", str(vqz), "-f"], b)
                add("compress (s)", b, s)
                add("compress peak RSS (MB)", b, rss)
                s, rss = process(["decompress", str(vqz), "-o", str(png), "-f"], b)
                add("decompress (s)", b, s)
                add("decompress peak RSS (MB)", b, rss)
                add("decompress --preview (s)", b, process(["decompress", "--preview", str(vqz), "-o", str(png), "-f"], b)[0])
        if four_k:
            with Image.open(paths[0]) as im:
                im.convert("RGB").resize((3840, 2160), Image.LANCZOS).save(Path(tmp) / "4k.png")
            for b in backends:
                s, rss = process(["compress", str(Path(tmp) / "4k.png"), "-o", str(Path(tmp) / "4k.vqz"), "-f"], b)
                add("3840x2160 compress (s)", b, s)
                add("3840x2160 compress peak RSS (MB)", b, rss)
                s, rss = process(["decompress", str(Path(tmp) / "4k.vqz"), "-o", str(Path(tmp) / "4k-out.png"), "-f"], b)
                add("3840x2160 decompress (s)", b, s)
                add("3840x2160 decompress peak RSS (MB)", b, rss)
    return rows


def image_paths(given: list[Path], count: int) -> list[Path]:
    paths = []
    for p in given or [DEFAULT_IMAGE]:
        paths += data.list_images(p)[:count] if p.is_dir() else [p]
    return paths


def chosen_levels(text: str | None) -> list[zoo.Level]:
    """`--quality`: levels by number, `all`, or (None) the default level and the top one."""
    every = zoo.levels()
    if text == "all":
        return every
    if text is None:
        default = zoo.level(None)
        return [default] + [lv for lv in every[-1:] if lv.quality != default.quality]
    return [zoo.level(int(q)) for q in text.split(",")]


def fmt(v: float) -> str:
    return f"{v:.4f}" if v < 0.01 else f"{v:,.2f}" if v >= 100 else f"{v:.3f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", type=Path, nargs="*", help="images or folders [default: kodim01]")
    ap.add_argument("--images", type=int, default=4, dest="count", help="images taken from each folder [default: 4]")
    ap.add_argument("--quality", help="levels: 5,9 or all [default: the default level and the top one]")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="[default: %(default)s]")
    ap.add_argument("--runs", type=int, default=3, help="in-process runs of each level and backend [default: 3]")
    ap.add_argument("--no-processes", action="store_true", help="skip the whole processes (section 3)")
    ap.add_argument("--no-4k", action="store_true", help="skip the 3840x2160 case")
    args = ap.parse_args(argv)
    asked = args.backends.split(",")
    if unknown := set(asked) - set(BACKENDS):
        ap.error(f"--backends: unknown {', '.join(sorted(unknown))}; choose from {', '.join(BACKENDS)}")
    backends, notes = backends_here(asked)
    if not backends:
        ap.error("--backends: none of them runs here: " + "; ".join(notes))
    paths = image_paths(args.images, args.count)
    levels = chosen_levels(args.quality)
    images = []
    for path in paths:
        with Image.open(path) as im:
            im.load()
            images.append(im)
    console = Console(width=160)
    load_start = os.getloadavg()[0]

    times, bpp = in_process(images, levels, backends, args.runs)
    ratio_of = backends[1:2] and (backends[1], backends[0])  # (numerator, denominator) with two backends
    table = Table("level", "bpp", "", *backends, *([f"{ratio_of[0]} / {ratio_of[1]}"] if ratio_of else []),
                  title=f"in process, model loaded: seconds per image, best / median of {args.runs} run(s), "
                        f"{len(paths)} image(s)")
    for lv in levels:
        for op in ("compress", "decompress", "preview"):
            values = {b: times[lv.quality, b, op] for b in backends}
            ratio = ([f"{statistics.median(values[ratio_of[0]]) / statistics.median(values[ratio_of[1]]):.2f}"]
                     if ratio_of else [])
            table.add_row(f"{lv.quality} ({lv.point.model})" if op == "compress" else "",
                          f"{bpp[lv.quality]:.4f}" if op == "compress" else "", op,
                          *(f"{fmt(min(v))} / {fmt(statistics.median(v))}" for v in values.values()), *ratio)
    console.print(table)

    priors = Table("measure", "value", title=f"the priors (any backend): {paths[0].name}, level {levels[-1].quality}")
    for name, v in priors_rows(images[0], levels[-1], backends[0]):
        priors.add_row(name, fmt(v))
    console.print(priors)

    if not args.no_processes:
        rows = process_rows(paths, backends, not args.no_4k)
        whole = Table("measure", *backends, title=f"whole processes at the default level, mean of {len(paths)} image(s)")
        for name, per in rows.items():
            whole.add_row(name, *(fmt(float(np.mean(per[b]))) for b in backends))
        console.print(whole)
    console.print(f"{os.cpu_count()} cores, load average {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
                  + "".join(f"\nleft out: {n}" for n in notes))


if __name__ == "__main__":
    main()

"""Phase III: the training images' code maps as the encoder chooses them, for the priors to learn.

Phase II fits each prior to the nearest codes. The shipped levels code with RDO (`vqzip.rdo`),
which picks, among a position's near codes, the ones the priors make cheap: maps the priors
never saw. Coding the training images with RDO under phase II's priors and fine-tuning the
priors on those maps is entropy-constrained VQ's design loop (Chou, Lookabaugh & Gray 1989):
with the codes' lengths refitted to the choices, the same choices cost fewer bits, and each
round lowers distortion + λ·rate on the training maps.

    vqzip train rdo-codes --run RUN2 --out RUN3 --data DIR --lambdas 0,0.01,0.02,0.04
    vqzip train prior --data DIR --out RUN3 --init RUN2 --steps 2000

RUN3 gets RUN2's network, the integer model that chose the codes (RUN3/chooser), and
codes.npz with every training image's maps once per λ (λ = 0: the nearest codes, as phase II
had them), which `train prior` and `train export` then read as they read phase II's. The
coding is resumable (one file per image in RUN3/rdo-parts) and runs in worker processes
(`vqzip.runtime.pool_map`).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from vqzip import data, rdo, runtime, tiles, zoo
from vqzip.codec import EdgePadded, encode_codes
from vqzip.training.export import export

_model = None  # a worker's model, loaded once


def rdo_codes(run, out, data_dir, lambdas: list[float], jobs: int = 1, progress=None) -> dict:
    """Code the training split of `data_dir` with RUN's network and priors at each multiplier in
    `lambdas`; write OUT as the module says. progress(done, total) after each image. Returns
    the record also written to OUT/rdo-codes.json."""
    run, out = Path(run), Path(out)
    if run.resolve() == out.resolve():
        raise ValueError("the codes go into a run folder of their own, not the run whose priors choose them")
    if not lambdas or any(not lam >= 0 for lam in lambdas):
        raise ValueError(f"lambdas must be one or more multipliers >= 0, not {lambdas}")
    out.mkdir(parents=True, exist_ok=True)
    for part in ("vqvae.safetensors", "vqvae.json"):
        shutil.copyfile(run / part, out / part)
    chooser = out / "chooser"
    if not (chooser / "model.safetensors").exists():
        export(run, chooser)
    files = data.split(data.list_images(data_dir), "train")
    parts = out / "rdo-parts"
    parts.mkdir(exist_ok=True)
    todo = [(i, f) for i, f in enumerate(files) if not (parts / f"{i}.npz").exists()]
    start = time.perf_counter()
    done = len(files) - len(todo)
    if todo:
        _load(chooser)  # once, here: forked workers inherit it, and run one torch thread each (the workers are the parallelism)
        for _ in runtime.pool_map(_code_one, [(i, f, lambdas, parts) for i, f in todo], jobs, threads=1):
            done += 1
            if progress:
                progress(done, len(files))
    maps = {}
    for i in range(len(files)):
        with np.load(parts / f"{i}.npz") as z:
            n = len(z.files) // len(lambdas)
            for j in range(len(lambdas)):
                for k in range(n):
                    maps[f"m{k}_{i * len(lambdas) + j}"] = z[f"l{j}_m{k}"]
    tmp = out / "codes.tmp.npz"
    np.savez(tmp, **maps)
    tmp.replace(out / "codes.npz")
    record = {"source_run": str(run), "chooser_sha256": zoo.sha256_file(chooser / "model.safetensors"),
              "lambdas": list(lambdas), "images": len(files), "maps_per_image": n,
              "seconds_this_session": round(time.perf_counter() - start, 1)}
    (out / "rdo-codes.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _load(chooser: Path) -> None:
    global _model
    _model = zoo.load_folder(chooser)


def _code_one(job: tuple[int, Path, list[float], Path]) -> None:
    """One image's maps at every multiplier -> parts/<i>.npz (keys l<lambda index>_m<map>), atomically."""
    i, f, lambdas, parts = job
    pixels = data.load_rgb(f)
    n = len(_model.maps)
    found = {}
    for j, lam in enumerate(lambdas):
        if lam == 0:
            codes = encode_codes(_model.net, pixels)
        else:
            padded = EdgePadded(pixels, _model.net.STRIDE)
            codes, _ = rdo.encode(_model, padded, lam, n, tiles.tiles(*padded.shape[:2]))
        found.update({f"l{j}_m{k}": c.astype(np.int16) for k, c in enumerate(codes)})
    tmp = parts / f".{i}.{os.getpid()}.npz"
    np.savez(tmp, **found)
    tmp.replace(parts / f"{i}.npz")

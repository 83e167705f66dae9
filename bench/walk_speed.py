"""Speed of the priors' exact integer walk: this tree's against another commit's (by default the
last one whose walk ran in torch), in interleaved runs, as a table.

    python bench/walk_speed.py                       # tiger.png at 768x512, 5 rounds
    python bench/walk_speed.py --rounds 9 --baseline main

The maps: samples/tiger.png resized to Kodak's 768x512 and coded by the shipped vqz-l3 (nearest
codes, all three maps: top 32x48, bottom 64x96, fine 128x192). Timed per map, with the model
loaded and warmed up: the decoder's walk (`prior.walk`, its step a lookup of the known codes, no
range decoder) and the encoder's walk over known codes (`prior.teacher_forced`, every row
consumed), each inside `vqzip.runtime.one_thread`, as the codec runs them.

Each side runs in its own fresh process per round (the baseline's from `git archive` of its
commit, laid out as the installed package), the two alternating which goes first, so both see
the same machine load; a process reports the best of --reps timings, the table the best over the
rounds. Ratios are baseline / this tree: above 1, this tree is faster.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TORCH_WALK = "2bdf2d1"  # the last commit whose priors walked in torch (issue 37 moved them to numpy)
MAPS = ("top", "bottom", "fine")


def worker(codes_file: str, reps: int) -> dict[str, float]:
    """Best-of-reps seconds of each map's walk and teacher-forced pass, in this process's vqzip.
    The maps are given as that vqzip's walk takes them: torch tensors where loading the model
    imported torch (a tree before issue 37, whose priors walked in torch), else numpy arrays (no
    torch needed)."""
    from vqzip import zoo
    from vqzip.runtime import one_thread

    model = zoo.load("vqz-l3")
    as_walked = sys.modules["torch"].from_numpy if "torch" in sys.modules else np.asarray
    with np.load(codes_file) as f:
        codes = [as_walked(f[name]) for name in MAPS]
    best: dict[str, float] = {}
    for rep in range(reps + 1):  # the first warms up (caches, lazy imports) and is not kept
        for k, m in enumerate(model.maps):
            known, conds = np.asarray(codes[k]), [codes[j] for j in m.conds]
            with one_thread():
                t = time.perf_counter()
                model.priors[k].walk(*known.shape, lambda p, i, j: known[i, j], conds)
                walk = time.perf_counter() - t
                t = time.perf_counter()
                for _ in model.priors[k].teacher_forced(codes[k], conds):
                    pass
                forced = time.perf_counter() - t
            if rep:
                for key, s in ((f"walk {m.name}", walk), (f"teacher-forced {m.name}", forced)):
                    best[key] = min(best.get(key, s), s)
    return best


def baseline_tree(ref: str, into: Path) -> Path:
    """The package of commit `ref` under `into`, laid out as installed (vqzip/priors,
    vqzip/checkpoints) so that PYTHONPATH=into imports it instead of this tree."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "vqzip", "priors", "checkpoints"],
                          capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    for part in ("priors", "checkpoints"):
        (into / part).rename(into / "vqzip" / part)
    return into


def run_worker(codes_file: Path, reps: int, pythonpath: Path | None) -> dict[str, float]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run([sys.executable, __file__, "--worker", str(codes_file), "--reps", str(reps)],
                         capture_output=True, text=True, env=env, cwd=codes_file.parent)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return json.loads(out.stdout.strip().splitlines()[-1])


def tiger_codes(path: Path) -> None:
    """tiger.png at 768x512, coded by vqz-l3 (nearest codes, every map), saved to path."""
    from PIL import Image

    from vqzip import codec, zoo

    pixels = np.asarray(Image.open(ROOT / "samples" / "tiger.png").convert("RGB").resize((768, 512), Image.LANCZOS))
    codes = codec.encode_codes(zoo.load("vqz-l3").net, pixels)
    np.savez(path, **dict(zip(MAPS, codes)))  # code maps are numpy int64 arrays


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=TORCH_WALK, help="commit to compare against (default: the torch walk's last)")
    ap.add_argument("--rounds", type=int, default=5, help="fresh processes per side, interleaved")
    ap.add_argument("--reps", type=int, default=2, help="timings per process (after one warm-up)")
    ap.add_argument("--worker", metavar="CODES", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.reps)))
        return
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        codes_file = tmp / "codes.npz"
        tiger_codes(codes_file)
        sides = {"baseline": baseline_tree(args.baseline, tmp / "baseline"), "this tree": None}
        runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        for r in range(args.rounds):
            for side in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                runs[side].append(run_worker(codes_file, args.reps, sides[side]))
                print(f"round {r + 1}/{args.rounds}: {side} done", file=sys.stderr)
    keys = list(runs["this tree"][0])
    best = {side: {k: min(run[k] for run in rs) for k in keys} for side, rs in runs.items()}
    for side in best:
        for part, names in (("2 maps", MAPS[:2]), ("3 maps", MAPS)):
            for what in ("walk", "teacher-forced"):
                best[side][f"{what}, {part}"] = sum(best[side][f"{what} {n}"] for n in names)
    ratios = {k: [b[k] / t[k] for b, t in zip(runs["baseline"], runs["this tree"])] for k in keys}
    table = Table(title=f"Priors' walk, tiger.png at 768x512, vqz-l3: best of {args.rounds} interleaved rounds x "
                        f"{args.reps} reps, load average {os.getloadavg()[0]:.1f} at the end")
    for col in ("part", f"baseline {args.baseline} (s)", "this tree (s)", "ratio of bests", "ratios per round"):
        table.add_column(col, justify="left" if col == "part" else "right")
    for k in best["this tree"]:
        per_round = " ".join(f"{x:.2f}" for x in ratios[k]) if k in ratios else ""
        table.add_row(k, f"{best['baseline'][k]:.3f}", f"{best['this tree'][k]:.3f}",
                      f"{best['baseline'][k] / best['this tree'][k]:.2f}", per_round)
    Console(width=140).print(table)  # a log or a pipe gets the whole table, not columns wrapped at 80


if __name__ == "__main__":
    main()

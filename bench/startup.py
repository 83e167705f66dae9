"""Startup: how long a fresh process takes to import vqzip and to decode its first pixel.

Each measure is the median over --runs fresh Python processes (with the quartiles):

    python -c pass                 the interpreter alone (the floor under everything else)
    import vqzip                   in-process seconds of the import (registers the Pillow plugin)
    import vqzip.cli               in-process seconds of the command line's import
    vqzip --version                a whole process
    decompress: to decoding        launch -> codec.decode_codes entered: imports, arguments, reading
    decompress: model load         the model named by the file, loaded and checked
    decompress: first pixel        launch -> the decoded image (samples/tiger.png coded at the default level)
    decompress: whole process      launch -> exit, the PNG written

    python bench/startup.py                    # this source tree
    python bench/startup.py --against main     # and a git revision, in the same run, with ratios
    python bench/startup.py --threads 1        # decompress --threads 1: steadier beside other work

With --against, the revision's vqzip/ and priors/ are exported (git archive) to a temporary
folder and run from there with the same interpreter, models and .vqz file; the runs alternate
between the trees, so a machine whose load drifts weighs on both alike. The load average is
printed at the start and the end: on a busy machine compare the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run in the child: wrap codec.decode_codes, codec.model_for and codec.decompress as vqzip.codec
# is imported (so nothing is imported earlier than the command line imports it), write the
# wall-clock time of each event to $STARTUP_TIMES at exit, and run `python -m vqzip ARGS`.
CHILD = r"""
import atexit, importlib.abc, importlib.util, json, os, runpy, sys, time
times = {}
atexit.register(lambda: open(os.environ["STARTUP_TIMES"], "w").write(json.dumps(times)))

class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "vqzip.codec":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            decode_codes, model_for, decompress = module.decode_codes, module.model_for, module.decompress

            def decode_codes_(*a, **k):
                times.setdefault("decoding", time.time())
                return decode_codes(*a, **k)

            def model_for_(*a, **k):
                out = model_for(*a, **k)
                times.setdefault("model", time.time())
                return out

            def decompress_(*a, **k):
                out = decompress(*a, **k)
                times.setdefault("pixels", time.time())
                return out

            module.decode_codes, module.model_for, module.decompress = decode_codes_, model_for_, decompress_

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Hook())
sys.argv = ["vqzip", *sys.argv[1:]]
runpy.run_module("vqzip", run_name="__main__", alter_sys=True)
"""

IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def export(rev: str, into: Path) -> Path:
    """vqzip/ and priors/ of a git revision in `into`, laid out as the installed package is
    (vqzip/priors), with this tree's models (vqzip/checkpoints)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "vqzip", "priors"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "vqzip" / "priors").symlink_to(into / "priors", target_is_directory=True)
    (into / "vqzip" / "checkpoints").symlink_to(ROOT / "checkpoints", target_is_directory=True)
    return into


def env_for(tree: Path | None) -> dict:
    env = dict(os.environ)
    if tree is not None:  # ahead of the installed (editable) vqzip
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def once(tree: Path | None, vqz: Path, work: Path, threads: int | None = None) -> dict[str, float]:
    """One of each measure in fresh processes: seconds."""
    env, out = env_for(tree), {}
    for name, cmd in (("python -c pass", [sys.executable, "-c", "pass"]),
                      ("vqzip --version", [sys.executable, "-m", "vqzip", "--version"])):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=work, check=True, capture_output=True)
        out[name] = time.perf_counter() - t
    for module in ("vqzip", "vqzip.cli"):
        r = subprocess.run([sys.executable, "-c", IMPORT.format(module=module)], env=env, cwd=work, check=True,
                           capture_output=True, text=True)
        out[f"import {module}"] = float(r.stdout)
    env["STARTUP_TIMES"] = str(work / "times.json")
    start = time.time()
    extra = [] if threads is None else ["--threads", str(threads)]
    subprocess.run([sys.executable, "-c", CHILD, "decompress", "-q", "-f", *extra, str(vqz), "-o", str(work / "out.png")],
                   env=env, cwd=work, check=True, capture_output=True)
    end = time.time()
    t = json.loads((work / "times.json").read_text())
    out["decompress: to decoding"] = t["decoding"] - start
    out["decompress: model load"] = t["model"] - t["decoding"]
    out["decompress: first pixel"] = t["pixels"] - start
    out["decompress: whole process"] = end - start
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--against", metavar="REV", help="also measure this git revision (e.g. main), runs alternating")
    ap.add_argument("--image", type=Path, default=ROOT / "samples" / "tiger.png", help="the image decoded")
    ap.add_argument("--threads", type=int, help="decompress with --threads N [default: torch's]")
    args = ap.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory(prefix="vqzip-startup-") as tmp:
        tmp = Path(tmp)
        vqz = tmp / "image.vqz"
        subprocess.run([sys.executable, "-m", "vqzip", "compress", "-q", str(args.image), "-o", str(vqz)], check=True)
        trees = {"this tree": None}
        if args.against:
            (tmp / "rev").mkdir()
            trees = {args.against: export(args.against, tmp / "rev"), **trees}
        load = [os.getloadavg()[0]]
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for name, tree in trees.items():  # a first run of each, not counted: caches warm
            once(tree, vqz, tmp, args.threads)
        for _ in range(args.runs):
            for name, tree in trees.items():
                runs[name].append(once(tree, vqz, tmp, args.threads))
        load.append(os.getloadavg()[0])

    table = Table("seconds: median (quartiles)", *trees, *(["ratio"] if len(trees) == 2 else []),
                  title=f"vqzip startup: {args.runs} runs each, {os.cpu_count()} cores, "
                        f"load average {load[0]:.2f} at the start, {load[1]:.2f} at the end"
                        + (f", decompress --threads {args.threads}" if args.threads else ""))
    for measure in runs["this tree"][0]:
        values = [[r[measure] for r in runs[name]] for name in trees]
        medians = [statistics.median(v) for v in values]
        ratio = [f"{medians[1] / medians[0]:.2f}"] if len(medians) == 2 else []
        table.add_row(measure, *(f"{m:.3f} ({q[0]:.3f}-{q[2]:.3f})" if len(v) > 1 else f"{m:.3f}"
                                 for m, v, q in ((m, v, statistics.quantiles(v, n=4) if len(v) > 1 else None)
                                                 for m, v in zip(medians, values))), *ratio)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()

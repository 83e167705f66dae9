"""A rate-distortion sweep from start to finish: vqzip's quality levels and the classical
baselines on the same images, through each codec's real bytes (`vqzip rd-curve`).

    no_curves_among(inputs); images_of(inputs), levels_of("1,4,9"), baselines_of("webp,avif" or None, note)
    metrics = measures.metrics_of("psnr,ms-ssim" or None, note)
    refs = references.read_all(files, taken=set(CODECS) | {VQZIP})    # published curves, checked
    sweep = start(inputs, images, levels, baselines, threads, jobs, metrics, refs)  # the units, the record, the load
    points = workers.measure(sweep.units, progress, jobs, threads)
    summary, bds = finish(sweep, points)                               # means per setting, BD-rates
    results.write(out, points, summary, bds, sweep.run, sweep.references)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vqzip import zoo
from vqzip.errors import UsageError, VqzError
from vqzip.eval import machine
from vqzip.eval.baselines import CODECS, Baseline
from vqzip.eval.bdrate import bd_rates
from vqzip.eval.measures import Metric
from vqzip.eval.points import VQZIP, Point, Unit, plan
from vqzip.eval.record import Run, record
from vqzip.eval.references import Reference
from vqzip.eval.results import summarize


def images_of(inputs: list[Path]) -> list[Path]:
    """The images the inputs name: files as they are, folders' images (`vqzip.data.list_images`)."""
    from vqzip import data
    from vqzip.fileio import check_input

    images = []
    for p in inputs:
        if not p.is_dir():
            check_input(p)
        images += data.list_images(p) if p.is_dir() else [p]
    return images


def no_curves_among(inputs: list[Path]) -> None:
    """A UsageError for a .json file among the images: a published curve that lost its
    --reference, as a shell's wildcard after it leaves all files but the first."""
    for p in inputs:
        if p.suffix.lower() == ".json":
            raise UsageError(f"{p}: a .json file among the images; give each published curve its own --reference, "
                             "or the folder that holds them", "--reference")


def levels_of(quality: str | None) -> list[zoo.Level]:
    """The levels of a comma-separated list ("1,4,9"), or every shipped one for None."""
    if not quality:
        return zoo.levels()
    try:
        return [zoo.level(int(q)) for q in quality.split(",")]
    except ValueError:
        raise VqzError(f"--quality takes comma-separated integers, not {quality!r}") from None


def baselines_of(codecs: str | None, note: Callable[[str], None] = lambda line: None) -> list[Baseline]:
    """The baselines of a comma-separated list of names ("none": no baseline), or for None every
    one installed, note(line) telling of each skipped. An unknown or missing one is a VqzError."""
    def install_hint(name: str) -> str:
        return " (pip install pillow-jxl-plugin)" if name == "jxl" else ""

    if codecs is None:
        names = [c for c in CODECS if CODECS[c].available()]
        for c in CODECS:
            if c not in names:
                note(f"vqzip: note: skipping {c}, not installed" + install_hint(c))
    else:
        names = [] if codecs == "none" else [c.strip() for c in codecs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CODECS]
    if unknown:
        raise VqzError(f"unknown codec {unknown[0]!r}; known: {', '.join(CODECS)}")
    missing = [c for c in names if not CODECS[c].available()]
    if missing:
        raise VqzError(f"codec {missing[0]!r} is not available here" + install_hint(missing[0]))
    return [CODECS[c] for c in names]


def dataset_name(inputs: list[Path]) -> str:
    """What the images are called in titles: each input's folder name (or file stem)."""
    return ", ".join(p.resolve().name if p.is_dir() else p.stem for p in inputs)


@dataclass
class Sweep:
    """A sweep under way: its units, its record, the baselines' descriptions, the published
    curves beside it, and the machine's CPU time and the clock at its start."""

    units: list[Unit]
    run: Run
    baselines: list[Baseline]
    levels: list[zoo.Level]
    references: list[Reference]
    cpu_start: tuple[float, float] | None
    wall_start: float


def start(inputs: list[Path], images: list[Path], levels: list[zoo.Level], baselines: list[Baseline],
          threads: int | None, jobs: int, metrics: tuple[Metric, ...], references: list[Reference] = ()) -> Sweep:
    """The units to code, each measured by `metrics` (every image's header read: a bad one fails
    here, before any coding), and the record of the run, with the load average at its start and
    the published curves (`vqzip.eval.references.read_all`, read already) beside it."""
    load = machine.load_average()
    cpu, wall = machine.cpu_seconds(), time.perf_counter()
    names = [m.name for m in metrics]
    units = plan(images, levels, baselines, tuple(names))
    run = record(dataset_name(inputs), len(images), levels, baselines, threads, jobs, names,
                 [r.record() for r in references])
    run.load_average = {"start": load}
    return Sweep(units, run, baselines, levels, list(references), cpu, wall)


def finish(sweep: Sweep, points: list[Point]) -> tuple[dict, dict]:
    """(summary, BD-rates) of the measured points: the summary per codec run, every curve (vqzip,
    the baselines, the published ones) against every other (`bd_rates`); the run's record gets
    the cores other processes kept busy meanwhile."""
    sweep.run.others_busy = machine.others_busy(sweep.cpu_start, machine.cpu_seconds(),
                                                time.perf_counter() - sweep.wall_start)
    descriptions = {b.name: f"{b.description}; {b.library()}" for b in sweep.baselines}
    descriptions[VQZIP] = (f"vqzip {sweep.run.vqzip} quality levels "
                           + ", ".join(f"{lv.quality} ({lv.point.model} at scale {lv.point.scale}"
                                     + ("" if lv.point.anchor is None else f", anchor {lv.point.anchor}") + ")"
                                     for lv in sweep.levels))
    summary = summarize(points, descriptions)
    curves = {name: s["results"] for name, s in summary.items()} | {r.key: r.results for r in sweep.references}
    return summary, bd_rates(curves, sweep.run.metrics)

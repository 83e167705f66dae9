"""A rate-distortion sweep from start to finish: vqzip's quality levels and the classical
baselines on the same images, through each codec's real bytes (`vqzip rd-curve`).

    images_of(inputs), levels_of("1,4,9"), baselines_of("webp,avif" or None, note)
    sweep = start(inputs, images, levels, baselines, threads, jobs)   # the units, what runs, the load
    points = workers.measure(sweep.units, progress, jobs, threads)
    summary, bds = finish(sweep, points)                               # means per setting, BD-rates
    results.write(out, points, summary, bds, sweep.run)
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vqzip import zoo
from vqzip.errors import VqzError
from vqzip.eval import machine
from vqzip.eval.baselines import CODECS, Baseline
from vqzip.eval.bdrate import bd_rates
from vqzip.eval.points import VQZIP, Point, Unit, plan
from vqzip.eval.record import Run, record
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
    """A sweep under way: its units, its record, the baselines' descriptions, and the machine's
    CPU time and the clock at its start."""

    units: list[Unit]
    run: Run
    baselines: list[Baseline]
    levels: list[zoo.Level]
    cpu_start: tuple[float, float] | None
    wall_start: float


def start(inputs: list[Path], images: list[Path], levels: list[zoo.Level], baselines: list[Baseline],
          threads: int | None, jobs: int) -> Sweep:
    """The units to code (every image's header read: a bad one fails here, before any coding) and
    the record of the run, with the load average at its start."""
    load = machine.load_average()
    cpu, wall = machine.cpu_seconds(), time.perf_counter()
    units = plan(images, levels, baselines)
    run = record(dataset_name(inputs), len(images), levels, baselines, threads, jobs)
    run.load_average = {"start": load}
    return Sweep(units, run, baselines, levels, cpu, wall)


def finish(sweep: Sweep, points: list[Point]) -> tuple[dict, dict]:
    """(summary, BD-rates) of the measured points; the run's record gets the cores other
    processes kept busy meanwhile."""
    sweep.run.others_busy = machine.others_busy(sweep.cpu_start, machine.cpu_seconds(),
                                                time.perf_counter() - sweep.wall_start)
    descriptions = {b.name: f"{b.description}; {b.library()}" for b in sweep.baselines}
    descriptions[VQZIP] = (f"vqzip {sweep.run.vqzip} quality levels "
                           + ", ".join(f"{lv.quality} ({lv.point.model} at scale {lv.point.scale})" for lv in sweep.levels))
    summary = summarize(points, descriptions)
    return summary, bd_rates(summary)

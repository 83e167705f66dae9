"""What a sweep ran on and with (dataset, versions, settings, model hashes, threads, jobs, load):
for the figure's caption, the tables' titles and run.json."""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata

from vqzip import zoo
from vqzip.eval.baselines import Baseline
from vqzip.eval.machine import OTHERS_BUSY, busy, cores


@dataclass
class Run:
    """What a sweep ran on and with: for the figure's caption and run.json."""

    dataset: str
    images: int
    vqzip: str
    levels: list[dict]  # quality, model, scale, maps, lambda, skip, anchor (a lattice level's, "5/2"; else None), model sha256
    codecs: dict[str, dict]  # baseline name -> label, library, settings, description
    libraries: dict[str, str]
    cores: int
    threads: int | None  # --threads asked for (None: one per core, shared out among the jobs)
    jobs: int
    load_average: dict[str, float | None] = field(default_factory=dict)  # at "start"
    others_busy: float | None = None  # cores other processes kept busy during the run, on average
    date: str = ""
    machine: str = ""
    metrics: list[str] = field(default_factory=lambda: ["psnr", "ms-ssim"])  # names (`vqzip.eval.measures`)
    references: list[dict] = field(default_factory=list)  # published curves beside the run (`Reference.record`)

    @property
    def disturbed(self) -> bool:
        return any(busy(v) for v in self.load_average.values()) or (self.others_busy or 0) > OTHERS_BUSY


def record(dataset: str, images: int, levels: list[zoo.Level], baselines: list[Baseline], threads: int | None,
           jobs: int, metrics: list[str] = ("psnr", "ms-ssim"), references: list[dict] = ()) -> Run:
    """The record of a sweep about to run: the levels with their models' sha256, the baselines
    with their libraries, the library versions, the cores, threads and jobs, the date and machine,
    the metrics measured and the published curves beside it (the load is filled in as it is
    measured)."""
    from vqzip import __version__

    models = zoo.manifest()["models"]
    libs = {}
    for dist in ("Pillow", "numpy", "constriction", "onnxruntime", "torch", "matplotlib", "ssimulacra2", "scipy"):  # those installed
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return Run(dataset, images, __version__,
               [{"quality": lv.quality, "model": lv.point.model, "scale": str(lv.point.scale), "maps": lv.point.maps,
                 "lambda": lv.point.lam, "skip": lv.point.skip,
                 "anchor": None if lv.point.anchor is None else str(lv.point.anchor), "sha256": models[lv.point.model]["sha256"]} for lv in levels],
               {b.name: {"label": b.label or b.name, "library": b.library(), "setting": b.setting_name,
                         "settings": list(b.settings), "description": b.description} for b in baselines},
               libs, cores(), threads, jobs,
               date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               machine=f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
               metrics=list(metrics), references=list(references))


def title(run: Run) -> str:
    """The dataset and its size, as the figure's title and the tables name them."""
    return f"{run.dataset} ({run.images} image{'s' * (run.images != 1)})"




def label(run: Run, key: str) -> str:
    """A curve's name in tables: a baseline's label, a published curve's, else its key (vqzip)."""
    if key in run.codecs:
        return run.codecs[key]["label"]
    return next((r["label"] for r in run.references if r["key"] == key), key)

"""Rate-distortion measurement: vqzip's quality levels and the classical baselines, on the same
images, through each codec's real bytes.

    plan(images, levels, baselines) -> list of Unit (one per image and setting, image by image)
    measure(units, progress, jobs, threads) -> list of Point (in the units' order, however many jobs)
    summarize(points) -> {codec: CompressAI-layout results, one entry per setting}
    bd_rates(summary) -> {baseline: {"psnr": %, "ms-ssim": %}} for vqzip against each baseline
    record(...) -> what ran: dataset, versions, settings, model hashes, threads, jobs, load
    write(out, points, summary, bds, run) -> rd.csv, <codec>.json, bd-rate.json, bd-rate.md,
        run.json, rd.png, rd.pdf, rd.svg and rd.caption.txt

Rate is the coded file's size in bits over the image's pixels (vqzip's header included);
distortion is measured on the decoded 8-bit RGB pixels. With jobs > 1 the units are coded in
worker processes (a spawn pool: each worker imports torch and loads the models once); every
unit codes its image from the file, so the bytes, and so the rates and distortions, are those
of a serial run. Times are then measured beside the other workers.
"""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from vqzip import zoo
from vqzip.baselines import CODECS, Baseline
from vqzip.bdrate import bd_rate
from vqzip.errors import VqzError

VQZIP = "vqzip"
METRICS = (("psnr-rgb", "PSNR-RGB (dB)", "PSNR"), ("ms-ssim-rgb-db", "MS-SSIM (dB)", "MS-SSIM"))


@dataclass
class Point:
    codec: str
    setting: str  # quality level, or the baseline's knob
    image: str
    pixels: int
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    ms_ssim_db: float
    encode_s: float
    decode_s: float
    estimated_bpp: float | None = None  # vqzip only: the priors' ideal rate, to show the overhead


@dataclass(frozen=True)
class Unit:
    """One coding to measure: an image through one vqzip level or one baseline setting."""

    index: int  # position in the sweep: points come back in this order
    image: Path
    pixels: int
    codec: str  # VQZIP or a baseline's name (a key of CODECS)
    setting: object  # a zoo.Level (a number and an operating point) for vqzip, else the baseline's setting

    @property
    def key(self) -> str:
        """The setting as rd.csv writes it: the quality level, or the baseline's knob."""
        return str(self.setting.quality if self.codec == VQZIP else self.setting)


def plan(images: list[Path], levels: list[zoo.Level], baselines: list[Baseline]) -> list[Unit]:
    """Every image through every level and every baseline setting, image by image. Each image's
    header is read here (its size, for the time estimate), so an unreadable or too small one
    fails before any coding."""
    from vqzip.metrics import MS_SSIM_MIN_SIDE

    units = []
    for path in images:
        with Image.open(path) as im:
            pixels = im.width * im.height
            if min(im.size) < MS_SSIM_MIN_SIDE:
                raise VqzError(f"{path}: {im.width}x{im.height} is too small for MS-SSIM, which needs at least "
                               f"{MS_SSIM_MIN_SIDE} pixels a side")
        for setting in [(VQZIP, lv) for lv in levels] + [(b.name, s) for b in baselines for s in b.settings]:
            units.append(Unit(len(units), Path(path), pixels, *setting))
    return units


def measure(units: list[Unit], progress: Callable[[Unit, float], None] = lambda unit, seconds: None,
            jobs: int = 1, threads: int | None = None) -> list[Point]:
    """Code and decode every unit; progress(unit, seconds) after each, in the order they finish.
    jobs > 1: in that many spawned worker processes, each with `threads` torch threads (default:
    the cores shared out). Points come back in the units' order either way."""
    if jobs <= 1 or len(units) <= 1:
        points = []
        for unit in units:
            t = time.perf_counter()
            points.append(code(unit))
            progress(unit, time.perf_counter() - t)
        return points
    import multiprocessing

    threads = threads or max(1, cores() // jobs)
    done: dict[int, Point] = {}
    with multiprocessing.get_context("spawn").Pool(jobs, initializer=_worker, initargs=(threads,)) as pool:
        for index, point, seconds in pool.imap_unordered(_timed_code, units):
            done[index] = point
            progress(units[index], seconds)
    return [done[u.index] for u in units]


def _worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _timed_code(unit: Unit) -> tuple[int, Point, float]:
    t = time.perf_counter()
    point = code(unit)
    return unit.index, point, time.perf_counter() - t


_last_image: list = [None, None]  # (path, RGB image): a unit's image is usually the last one's


def _rgb(path: Path) -> Image.Image:
    if _last_image[0] != path:
        with Image.open(path) as im:
            _last_image[:] = [path, im.convert("RGB")]
    return _last_image[1]


def code(unit: Unit) -> Point:
    """One unit: the image coded to real bytes, decoded, and measured."""
    from vqzip import codec

    image = _rgb(unit.image)
    pixels = np.asarray(image)
    if unit.codec == VQZIP:
        lv = unit.setting
        model = zoo.load(lv.point.model)
        data, enc = _timed(lambda: codec.compress(image, model, lv.point, quality=lv.quality))
        decoded, dec = _timed(codec.decompress, data, model)
        est = sum(codec.estimated_bits(model, decoded.codes).values())
        return _point(unit, pixels, data, np.asarray(decoded.image.convert("RGB")), enc, dec, est)
    baseline = CODECS[unit.codec]
    baseline.available()  # registers a plugin codec (JPEG XL) in a fresh worker
    data, enc = _timed(baseline.encode, image, unit.setting)
    decoded, dec = _timed(baseline.decode, data)
    return _point(unit, pixels, data, np.asarray(decoded), enc, dec)


def _point(unit: Unit, pixels: np.ndarray, data: bytes, decoded: np.ndarray, enc: float, dec: float, est=None) -> Point:
    from vqzip import metrics

    s = metrics.ms_ssim(pixels, decoded)
    n = pixels.shape[0] * pixels.shape[1]
    return Point(unit.codec, unit.key, unit.image.name, n, len(data), 8 * len(data) / n, metrics.psnr(pixels, decoded),
                 s, metrics.db(s), enc, dec, None if est is None else est / n)


def _timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


class Eta:
    """Seconds left in a sweep whose units take very different times (a vqzip level codes for
    seconds, JPEG for milliseconds): each unit left is costed at the seconds per pixel measured
    so far for its codec and setting, else for its codec, else for all units; None until
    something has been measured. With several workers, the work left is shared among them."""

    def __init__(self, units: list[Unit], workers: int = 1):
        self.left = {u.index: u for u in units}
        self.total = len(units)
        self.workers = max(1, workers)
        self.spent: dict = defaultdict(lambda: [0.0, 0])  # key -> [seconds, pixels]

    def done(self, unit: Unit, seconds: float) -> None:
        self.left.pop(unit.index, None)
        for key in ((unit.codec, unit.key), unit.codec, None):
            self.spent[key][0] += seconds
            self.spent[key][1] += unit.pixels

    def seconds_left(self) -> float | None:
        total = 0.0
        for u in self.left.values():
            for key in ((u.codec, u.key), u.codec, None):
                if key in self.spent:
                    seconds, pixels = self.spent[key]
                    total += u.pixels * seconds / pixels
                    break
            else:
                return None
        return total / min(self.workers, max(1, len(self.left)))

    def line(self, elapsed: float) -> str:
        """'37/1200 codings, 3m02s elapsed, about 14m10s left'."""
        n = self.done_count + len(self.left)
        left = self.seconds_left()
        return (f"{self.done_count}/{n} codings, {clock(elapsed)} elapsed, "
                + ("time left not known yet" if left is None else f"about {clock(left)} left"))

    @property
    def done_count(self) -> int:
        return self.total - len(self.left)


def clock(seconds: float) -> str:
    """1h02m, 3m05s, 12s."""
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def load_average() -> float | None:
    """The 1-minute load average (None where the system has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def cores() -> int:
    return os.cpu_count() or 1


def busy(load: float | None) -> bool:
    """Whether a load average means the timings are disturbed: more runnable processes than cores."""
    return load is not None and load > cores()


# Cores other processes may keep busy, on average over a run, before its timings count as
# disturbed. A load average at the end cannot tell: it counts the run's own --jobs workers.
OTHERS_BUSY = 0.25


def cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine since boot, from /proc/stat; CPU seconds of this
    process and its finished children), or None where there is no /proc/stat. Between two
    readings, the first grows by what every process used, the second by what this run did."""
    import resource

    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal guest guest_nice; guests are in user and nice already
    machine = sum(ticks[:8]) - ticks[3] - ticks[4]
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    return machine / os.sysconf("SC_CLK_TCK"), own


def others_busy(start: tuple[float, float] | None, end: tuple[float, float] | None, seconds: float) -> float | None:
    """Cores that other processes kept busy, on average, between two `cpu_seconds` readings
    `seconds` apart (None if either is missing)."""
    if start is None or end is None or seconds <= 0:
        return None
    return max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / seconds)


def dataset_name(inputs: list[Path]) -> str:
    """What the images are called in titles: each input's folder name (or file stem)."""
    return ", ".join(p.resolve().name if p.is_dir() else p.stem for p in inputs)


def summarize(points: list[Point], descriptions: dict[str, str]) -> dict[str, dict]:
    """Per codec, CompressAI's results layout: one entry per setting, means over the images,
    settings in increasing rate."""
    out = {}
    for name in dict.fromkeys(p.codec for p in points):
        rows = {}
        for p in points:
            if p.codec == name:
                rows.setdefault(p.setting, []).append(p)
        means = sorted(({k: float(np.mean([getattr(p, k) for p in ps])) for k in
                         ("bpp", "psnr", "ms_ssim", "ms_ssim_db", "encode_s", "decode_s")} | {"setting": s}
                        for s, ps in rows.items()), key=lambda m: m["bpp"])
        out[name] = {"name": name, "description": descriptions.get(name, name), "results": {
            "setting": [m["setting"] for m in means], "bpp": [m["bpp"] for m in means],
            "psnr-rgb": [m["psnr"] for m in means], "ms-ssim-rgb": [m["ms_ssim"] for m in means],
            "ms-ssim-rgb-db": [m["ms_ssim_db"] for m in means],
            "encoding_time": [m["encode_s"] for m in means], "decoding_time": [m["decode_s"] for m in means]}}
        if name == VQZIP:
            est = [np.mean([p.estimated_bpp for p in rows[m["setting"]]]) for m in means]
            out[name]["results"]["estimated_bpp"] = [float(e) for e in est]
    return out


def bd_rates(summary: dict[str, dict]) -> dict[str, dict[str, float | None]]:
    """BD-rate (%) of vqzip against each baseline, on PSNR and on MS-SSIM (dB); None where it is
    undefined (fewer than two vqzip levels, or no common quality range)."""
    ours = summary[VQZIP]["results"]
    out = {}
    for name, s in summary.items():
        if name == VQZIP:
            continue
        out[name] = {}
        for metric, _, _ in METRICS:
            try:
                out[name][metric] = bd_rate(s["results"]["bpp"], s["results"][metric], ours["bpp"], ours[metric])
            except ValueError:
                out[name][metric] = None
    return out


@dataclass
class Run:
    """What a sweep ran on and with: for the figure's caption and run.json."""

    dataset: str
    images: int
    vqzip: str
    levels: list[dict]  # quality, model, scale, maps, lambda, skip, model sha256
    codecs: dict[str, dict]  # baseline name -> label, library, settings, description
    libraries: dict[str, str]
    cores: int
    threads: int | None  # torch threads asked for (None: torch's default)
    jobs: int
    load_average: dict[str, float | None] = field(default_factory=dict)  # at "start"
    others_busy: float | None = None  # cores other processes kept busy during the run, on average
    date: str = ""
    machine: str = ""

    @property
    def disturbed(self) -> bool:
        return any(busy(v) for v in self.load_average.values()) or (self.others_busy or 0) > OTHERS_BUSY


def record(dataset: str, images: int, levels: list[zoo.Level], baselines: list[Baseline], threads: int | None,
           jobs: int) -> Run:
    from vqzip import __version__

    models = zoo.manifest()["models"]
    libs = {}
    for dist in ("Pillow", "torch", "numpy", "constriction", "pytorch-msssim", "matplotlib"):
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return Run(dataset, images, __version__,
               [{"quality": lv.quality, "model": lv.point.model, "scale": str(lv.point.scale), "maps": lv.point.maps,
                 "lambda": lv.point.lam, "skip": lv.point.skip, "sha256": models[lv.point.model]["sha256"]} for lv in levels],
               {b.name: {"label": b.label or b.name, "library": b.library(), "setting": b.setting_name,
                         "settings": list(b.settings), "description": b.description} for b in baselines},
               libs, cores(), threads, jobs,
               date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               machine=f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}")


def title(run: Run) -> str:
    """The dataset and its size, as the figure's title and the tables name them."""
    return f"{run.dataset} ({run.images} image{'s' * (run.images != 1)})"


def write(out: Path, points: list[Point], summary: dict, bds: dict, run: Run) -> list[Path]:
    """rd.csv (every image and setting), <codec>.json, bd-rate.json and bd-rate.md, run.json,
    the figure as rd.png, rd.pdf and rd.svg, and its caption, rd.caption.txt, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "rd.csv"]
    with open(files[0], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(points[0])))
        w.writeheader()
        w.writerows(asdict(p) for p in points)
    for name, s in summary.items():
        files.append(out / f"{name}.json")
        files[-1].write_text(json.dumps(s, indent=2) + "\n")
    files.append(out / "bd-rate.json")
    files[-1].write_text(json.dumps({"anchor_is_baseline": True, "test": VQZIP, "bd_rate_percent": bds}, indent=2) + "\n")
    files.append(out / "bd-rate.md")
    files[-1].write_text(bd_table(bds, run))
    files.append(out / "run.json")
    files[-1].write_text(json.dumps(asdict(run) | {"timings_disturbed": run.disturbed}, indent=2) + "\n")
    files += plot(summary, run, out / "rd")
    files.append(out / "rd.caption.txt")
    files[-1].write_text(caption(summary, run))
    return files


def bd_table(bds: dict, run: Run) -> str:
    """BD-rate of vqzip against each baseline as a Markdown table (n/a where undefined)."""
    names = list(bds)
    lines = [f"BD-rate of vqzip {run.vqzip} against each baseline on {title(run)} (negative: vqzip needs fewer bits "
             "for the same quality; Bjøntegaard's cubic fit of log-rate over the quality range both curves cover).", "",
             "| | " + " | ".join(run.codecs[n]["label"] if n in run.codecs else n for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for metric, _, short in METRICS:
        cells = ["n/a" if bds[n][metric] is None else f"{bds[n][metric]:+.1f}%".replace("-", "−") for n in names]
        lines.append(f"| {short} | " + " | ".join(cells) + " |")
    if any(v is None for b in bds.values() for v in b.values()):
        lines += ["", "n/a: fewer than two vqzip levels, or no common quality range."]
    return "\n".join(lines) + "\n"


def caption(summary: dict, run: Run) -> str:
    """The figure's caption, then everything needed to reproduce it: versions, settings, models."""
    models = {lv["model"]: lv["sha256"] for lv in run.levels}
    codecs = ", ".join(f"{c['label']} ({c['library']}; {c['setting']} {', '.join(map(str, c['settings']))})"
                       for c in run.codecs.values())
    load = ", ".join(f"{k} {v:.2f}" for k, v in run.load_average.items() if v is not None) or "not available"
    others = "not measured" if run.others_busy is None else f"{run.others_busy:.2f} cores"
    text = [
        f"Rate-distortion on {title(run)}: PSNR-RGB and MS-SSIM (in dB, -10 log10(1 - MS-SSIM)) of the decoded "
        f"8-bit RGB pixels against bits per pixel of the coded files, averaged over the images at each setting. "
        f"vqzip {run.vqzip} at quality levels "
        + ", ".join(f"q{lv['quality']} (scale {lv['scale']}" + (f", lambda {lv['lambda']:g}" if lv["lambda"] else "") + ")"
                    for lv in run.levels)
        + f" of model{'s' * (len(models) > 1)} " + ", ".join(models) + (f"; {codecs}." if codecs else "."),
        "",
        f"vqzip {run.vqzip}; models (sha256): " + "; ".join(f"{m} {h}" for m, h in models.items()),
        "Libraries: " + ", ".join(f"{k} {v}" for k, v in run.libraries.items()),
        *(f"{c['label']}: {c['library']}; {c['description']}; {c['setting']} {', '.join(map(str, c['settings']))}"
          for c in run.codecs.values()),
        f"Run: {run.date}, {run.machine}, {run.cores} cores, torch threads {run.threads or 'default'}, "
        f"{run.jobs} job{'s' * (run.jobs != 1)}; 1-minute load average {load}; other processes kept {others} busy "
        "during the run" + ("; timings disturbed" if run.disturbed else ""),
    ]
    return "\n".join(text) + "\n"


MARKERS = {VQZIP: "o", "jpeg": "s", "webp": "^", "avif": "D", "jp2": "v", "jxl": "P"}


def figure(summary: dict, run: Run):
    """PSNR and MS-SSIM (dB) against bpp for every codec, side by side: vqzip's points labelled
    with their quality levels, each codec's library in the legend, axes around every point."""
    from matplotlib.figure import Figure  # no pyplot: no backend or global figure state

    fig = Figure(figsize=(7.2, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (metric, label, _) in zip(axes, METRICS):
        xs, ys = [], []
        for k, (name, s) in enumerate(summary.items()):
            r = s["results"]
            x, y = r["bpp"], r[metric]
            ours = name == VQZIP
            legend = (f"vqzip {run.vqzip} ({', '.join(dict.fromkeys(lv['model'] for lv in run.levels))})" if ours else
                      f"{run.codecs[name]['label']} ({run.codecs[name]['library'].split(' (')[0]})" if name in run.codecs else name)
            ax.plot(x, y, marker=MARKERS.get(name, "o"), ms=4 if ours else 3, lw=1.6 if ours else 0.9,
                    ls="-" if ours else "--", color=f"C{k}", label=legend, zorder=3 if ours else 2)
            if ours:
                for xi, yi, q in zip(x, y, r["setting"]):
                    ax.annotate(f"q{q}", (xi, yi), xytext=(3, -9), textcoords="offset points", fontsize=6.5, color=f"C{k}")
            xs += [v for v in x if math.isfinite(v)]
            ys += [v for v in y if math.isfinite(v)]
        if xs:  # every point inside, with a margin (and room for the level labels)
            ax.set_xlim(0, max(xs) * 1.06)
            pad = 0.06 * (max(ys) - min(ys) or 1)
            ax.set_ylim(min(ys) - pad, max(ys) + pad)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, lw=0.5)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Rate-distortion on {title(run)}", fontsize=10)
    return fig


def plot(summary: dict, run: Run, stem: Path) -> list[Path]:
    """The figure as stem.png (200 dpi), stem.pdf and stem.svg (text kept as text, TrueType
    fonts in the PDF, no dates inside, so reruns give the same files)."""
    import matplotlib

    paths = [stem.with_suffix(s) for s in (".png", ".pdf", ".svg")]
    with matplotlib.rc_context({"pdf.fonttype": 42, "svg.fonttype": "none", "font.size": 8, "svg.hashsalt": "vqzip"}):
        fig = figure(summary, run)
        fig.savefig(paths[0], dpi=200)
        fig.savefig(paths[1], metadata={"CreationDate": None})
        fig.savefig(paths[2], metadata={"Date": None})
    return paths

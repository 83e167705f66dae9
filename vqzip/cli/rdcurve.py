"""`vqzip rd-curve`: a rate-distortion sweep (`vqzip.eval.rdcurve`) with its progress on stderr,
its tables on stdout and its files in --out."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from vqzip import runtime
from vqzip.cli.app import USAGE, Command, app, err, reported, say
from vqzip.errors import UsageError
from vqzip.extras import require


@app.command("rd-curve", cls=Command)
def rd_curve(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT", help="Images, or folders of images."),
    quality: Optional[str] = typer.Option(None, "--quality", metavar="LIST", show_default="every shipped level",
                                          help="Comma-separated levels."),
    codecs: Optional[str] = typer.Option(None, "--codecs", metavar="LIST", show_default="every one installed",
                                         help="Comma-separated baselines (jpeg,webp,avif,jp2,jxl), or 'none'."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="FOLDER", help="Folder for rd.csv, <codec>.json, bd-rate.json/.md, run.json, rd.png/.pdf/.svg and rd.caption.txt."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", show_default="one per core; with --jobs, the cores shared out",
                                          help="Threads of vqzip's coding."),
    jobs: int = typer.Option(1, "--jobs", "-j", metavar="N", help="Code in N worker processes: the same rates and distortions as one, times measured side by side."),
    metrics: Optional[str] = typer.Option(None, "--metrics", metavar="LIST", show_default="psnr,ms-ssim, and ssimulacra2 where installed",
                                          help="Comma-separated qualities to measure: psnr, ms-ssim, ssimulacra2 (SSIMULACRA 2: about half a second of CPU a Kodak image and setting)."),
    reference: Optional[list[Path]] = typer.Option(None, "--reference", metavar="FILE",
                                                   help="A published curve in CompressAI's results layout (or a folder of them), plotted and in the BD-rate tables beside the codecs run; repeatable."),
):
    """Rate-distortion of vqzip's quality levels and classical codecs on the same images, beside published curves.

    Progress and the time left go to stderr; a warning if the machine is busy, as timings are then disturbed: a 1-minute load average above the core count at the start, or other processes keeping more than a quarter of a core busy during the run."""
    from vqzip.eval import machine, measures, rdcurve, references, results, workers
    from vqzip.eval.baselines import CODECS
    from vqzip.eval.points import VQZIP
    from vqzip.eval.progress import Eta, clock
    from vqzip.eval.record import title

    with reported():
        if jobs < 1:
            raise typer.BadParameter(f"must be at least 1, not {jobs}", param_hint="--jobs")
        try:  # every option and published file checked before any coding, each refusal one line
            chosen = measures.metrics_of(metrics, lambda line: err().print(line, markup=False))
            refs = references.read_all(reference, taken=set(CODECS) | {VQZIP}) if reference else []
            rdcurve.no_curves_among(inputs)
        except UsageError as e:
            say(f"vqzip: error: {e.option}: {e}")
            raise typer.Exit(USAGE) from None
        if out:  # before the sweep, not after it
            require("matplotlib", "eval", "rd-curve's plots (--out)")
        images = rdcurve.images_of(inputs)
        levels = rdcurve.levels_of(quality)
        baselines = rdcurve.baselines_of(codecs, lambda line: err().print(line))
        runtime.set_threads(threads)
        sweep = rdcurve.start(inputs, images, levels, baselines, threads, jobs, chosen, refs)
        load = sweep.run.load_average["start"]
        if machine.busy(load):
            _disturbed(f"load average {load:.2f} at the start is above the {machine.cores()} cores")
        units, eta, t0 = sweep.units, Eta(sweep.units, jobs), time.perf_counter()
        err().print(f"rd-curve: {title(sweep.run)}, {len(units)} codings ({len(levels)} vqzip levels, "
                    f"{len(units) // max(1, len(images)) - len(levels)} baseline settings each)"
                    + (f", {jobs} jobs" if jobs > 1 else ""), markup=False)
        bar, progress = _progress(eta, len(units), t0)
        with bar:
            points = workers.measure(units, progress, jobs, threads)
        summary, bds = rdcurve.finish(sweep, points)
        if (sweep.run.others_busy or 0) > machine.OTHERS_BUSY:
            _disturbed(f"other processes kept {sweep.run.others_busy:.2f} cores busy during the run")
        console = Console(highlight=False, soft_wrap=True)
        console.print(_summary_table(summary, chosen, f"rate-distortion on {title(sweep.run)} (means), {clock(time.perf_counter() - t0)}"))
        if bds[VQZIP]:
            console.print(_bd_table(bds[VQZIP], chosen, sweep.run))
        if out:
            for f in results.write(out, points, summary, bds, sweep.run, refs):
                err().print(f"wrote {f}", markup=False)


def _disturbed(why: str) -> None:
    err().print(f"vqzip: warning: {why}: timings are disturbed (recorded in run.json and rd.caption.txt)", markup=False)


def _progress(eta, total: int, t0: float):
    """(a progress bar for a terminal, progress(unit, seconds) advancing it); where stderr is not
    a terminal (a log), a line every 10 s instead."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    from vqzip.eval.progress import clock

    class Left(ProgressColumn):  # the estimate at the last finished coding, counted down since
        def render(self, task):
            left = eta.seconds_left()
            if left is None:
                return Text("time left: measuring")
            return Text(f"about {clock(max(0.0, left - (time.perf_counter() - task.fields['at'])))} left")

    bar = Progress(TextColumn("rate-distortion"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), Left(),
                   TextColumn("{task.fields[last]}"), console=err(), transient=True, disable=not err().is_terminal)
    task = bar.add_task("rd-curve", total=total, at=t0, last="")
    printed = [t0]

    def progress(unit, seconds: float) -> None:
        eta.done(unit, seconds)
        now = time.perf_counter()
        bar.update(task, advance=1, at=now, last=f"{unit.image.name} {unit.codec} {unit.key}")
        if not err().is_terminal and (now - printed[0] >= 10 or not eta.left):  # logs: a line every 10 s
            printed[0] = now
            err().print(f"rd-curve: {eta.line(now - t0)}", markup=False)

    return bar, progress


def _summary_table(summary: dict, metrics, caption: str) -> Table:
    table = Table("codec", "setting", "bpp", "est. bpp", *(f"{m.short} {m.unit}".strip() for m in metrics), "enc s", "dec s",
                  title=caption)
    for name, s in summary.items():
        r = s["results"]
        est = r.get("estimated_bpp")
        for k in range(len(r["bpp"])):
            table.add_row(name, r["setting"][k], f"{r['bpp'][k]:.4f}", f"{est[k]:.4f}" if est else "",
                          *(f"{r[m.key][k]:.2f}" for m in metrics),
                          f"{r['encoding_time'][k]:.2f}", f"{r['decoding_time'][k]:.2f}")
    return table


def _bd_table(row: dict, metrics, run) -> Table:
    """vqzip's row of the BD-rates: one line per anchor (baseline or published curve)."""
    from vqzip.eval.record import label

    undefined = any(x is None for v in row.values() for x in v.values())
    table = Table("anchor", *(m.short for m in metrics), title="BD-rate of vqzip against each curve (negative: vqzip needs fewer bits)",
                  caption="n/a: a curve without that quality, fewer than two points, or no common quality range" if undefined else None)
    for name, v in row.items():
        table.add_row(label(run, name), *("n/a" if v[m.key] is None else f"{v[m.key]:+.1f}%" for m in metrics))
    return table

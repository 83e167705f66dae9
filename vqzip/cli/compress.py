"""`vqzip compress`: images to .vqz files, through `vqzip.api`."""
from __future__ import annotations

import io
from fractions import Fraction
from typing import Optional

import typer

from vqzip import runtime
from vqzip.cli import batch
from vqzip.cli.app import MODELS, Command, app, reported
from vqzip.errors import VqzError


@app.command(cls=Command)
def compress(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help="Images (any format Pillow reads), folders with -r, or - for stdin."),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="PATH", show_default="each INPUT with .vqz",
                                         help="Output file, or folder for several inputs."),
    stdout: bool = typer.Option(False, "-c", "--stdout", help="Write to standard output (one input)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Take the images in folders, and in their folders."),
    quality: Optional[int] = typer.Option(None, "--quality", metavar="Q", show_default="the default level",
                                          help="Quality level; `vqzip levels` lists them."),
    model: Optional[str] = typer.Option(None, "-m", "--model", metavar="NAME", help="Shipped model by name, at scale 1 (a lattice model at --anchor)."),
    anchor: Optional[str] = typer.Option(None, "--anchor", metavar="A", show_default="the model's middle anchor",
                                         help="With -m, a lattice model's rate anchor: 0 (coarsest) to its anchors - 1, in 1/256 steps (\"5/2\")."),
    target_bpp: Optional[float] = typer.Option(None, "--target-bpp", metavar="X", help="Per image, at most X bits per pixel and within 5% of it (levels, then a lattice level's anchor or the RDO multiplier)."),
    target_psnr: Optional[float] = typer.Option(None, "--target-psnr", metavar="Y", help="Per image, the lowest level of at least Y dB PSNR (a lattice level at its lowest anchor that reaches it)."),
    strip: bool = typer.Option(False, "--strip", help="Drop the image's EXIF, ICC profile and XMP (kept by default, and given back on decoding)."),
    strict: bool = typer.Option(False, "--strict", help="A target not met is an error (exit 1, no file), not a note."),
    force: bool = batch.FORCE,
    quiet: bool = batch.QUIET,
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also the level, model and scale of each file."),
    threads: Optional[int] = batch.THREADS,
    max_pixels: int = batch.MAX_PIXELS,
    jobs_n: Optional[int] = batch.JOBS,
    model_dirs: list[str] = MODELS,
):
    """Compress images to .vqz files (inputs are always kept)."""
    from vqzip import backends, jobs, manifest  # nothing heavy: the options and paths are checked before the codec is imported

    targets = target_bpp is not None or target_psnr is not None
    if sum(x is not None for x in (quality, model, target_bpp, target_psnr)) > 1:
        raise typer.BadParameter("give at most one of --quality, --model, --target-bpp, --target-psnr")
    for name, value in (("--target-bpp", target_bpp), ("--target-psnr", target_psnr)):
        if value is not None and not 0 < value < float("inf"):
            raise typer.BadParameter(f"must be a positive number, not {value}", param_hint=name)
    if anchor is not None and model is None:
        raise typer.BadParameter("goes with -m/--model (a level has its own anchor)", param_hint="--anchor")
    try:
        rate_anchor = None if anchor is None else Fraction(anchor)
    except (ValueError, ZeroDivisionError):
        raise typer.BadParameter(f"{anchor!r} is not a fraction such as 5/2", param_hint="--anchor") from None
    with reported():  # options first, then the files, then the model: all before any coding
        if quality is not None and quality not in [lv.quality for lv in manifest.levels()]:
            raise typer.BadParameter(f"no quality level {quality}; `vqzip levels` lists them "
                                     f"({', '.join(str(lv.quality) for lv in manifest.levels())})", param_hint="--quality")
        models = sorted(manifest.manifest()["models"])
        if model is not None and model not in models:
            raise typer.BadParameter(f"no model {model!r}; installed: {', '.join(models)}", param_hint="-m/--model")
        runtime.set_threads(threads)
        backends.backend()  # a bad VQZIP_BACKEND (or the torch backend without torch) before any file
        plan = jobs.plan(inputs, ".vqz", output=output, stdout=stdout, recursive=recursive)
        batch.no_terminal(plan, force, "compressed data", "an image")

    def check(job):
        with batch.pixel_limit():
            batch.check_paths(job, force)
            if job.src is not None:
                from vqzip import api

                with api.open_image(job.src, load=False, max_pixels=max_pixels or None):  # the header: an image Pillow reads, not too large
                    pass

    def ready():  # the models this command codes with, loaded (and their sha256 checked) once
        from vqzip import api, zoo

        for name in [model] if model is not None else [lv.point.model for lv in (zoo.levels() if targets else [zoo.level(quality)])]:
            zoo.load(name)
        if model is not None:
            api.model_point(zoo.load(model), rate_anchor)  # a bad --anchor before any file

    def work(job):
        from vqzip import api, zoo

        with batch.pixel_limit():
            batch.check_paths(job, force)
            raw = batch.read(job)
            with api.open_image(io.BytesIO(raw), job.name, max_pixels=max_pixels or None) as im:
                pixels, size = im.width * im.height, f"{im.width}x{im.height} {im.mode}"
                runtime.for_image(pixels)
                if targets:
                    choice = api.compress_to_target(im, bpp=target_bpp, psnr=target_psnr, max_pixels=max_pixels or None,
                                                    strip=strip)
                    data, point, note = choice.data, choice.point, _target_note(choice, target_bpp, target_psnr)
                    if strict and _missed(choice, target_bpp):
                        raise VqzError(f"{_goal(target_bpp, target_psnr)} not met ({choice.bpp:.4f} bpp"
                                       + (f", {choice.psnr:.2f} dB" if choice.psnr is not None else "")
                                       + f": {_missed(choice, target_bpp)}); no file written (--strict)")
                else:
                    data, note = api.compress(im, quality, model=model, anchor=rate_anchor, max_pixels=max_pixels or None,
                                              strip=strip), ""
                    point = api.model_point(zoo.load(model), rate_anchor) if model is not None else zoo.level(quality).point
            batch.write(job, data, force)
        message = f"{len(data):,} bytes, {8 * len(data) / pixels:.4f} bpp{note}"
        if verbose:
            anchored = "" if point.anchor is None else f", anchor {point.anchor}"
            message += f" [{point.model} at scale {point.scale}{anchored}, {size}]"
        return len(raw), len(data), pixels, message

    batch.run(plan, check, work, quiet, "compress", ready, jobs_n, threads)


def _goal(bpp: float | None, psnr: float | None) -> str:
    return f"{bpp} bpp" if bpp is not None else f"{psnr} dB"


def _missed(choice, bpp: float | None) -> str:
    """How a target's choice misses it ("": it does not): over a bpp target, under a PSNR one,
    or further under a bpp target than `api.TARGET_BPP_WITHIN` (the closest the ladder reaches)."""
    from vqzip import api

    if not choice.met:
        return "over it: the lowest level" if bpp is not None else "under it: the highest level"
    if bpp is not None and choice.bpp < (1 - api.TARGET_BPP_WITHIN) * bpp:
        return f"more than {api.TARGET_BPP_WITHIN:.0%} under it: the highest rate the levels reach under it"
    return ""


def _target_note(choice, bpp: float | None, psnr: float | None) -> str:
    """What --target-bpp or --target-psnr chose, for the file's line; "(not met: how)" whenever
    it misses the target (`_missed`)."""
    p = choice.point
    how = (f"quality {choice.quality} (scale {p.scale}" + (f", anchor {p.anchor}" if p.anchor is not None else "")
           + (f", lambda {p.lam:.3g}" if p.lam else "")
           + (f", skip {p.skip:.4g}" if p.skip else "") + ")")
    reached = f", {choice.psnr:.2f} dB" if choice.psnr is not None else ""
    missed = _missed(choice, bpp)
    return f"{reached}, {how} chosen for {_goal(bpp, psnr)}" + (f" (not met: {missed})" if missed else "")

"""Command line: argument parsing, paths, messages and exit codes. No model or bitstream logic:
compress and decompress go through `vqzip.api`, the same functions a script calls.

Exit codes (also in `vqzip --help`): 0 success; 1 an error (damaged or foreign file, missing
model, unreadable or unsupported image, existing output), reported in one line on stderr, the
other files of a batch still done; 2 bad usage; 130 interrupted; 143 terminated (SIGTERM).
"""
from __future__ import annotations

import io
import os
import signal
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperCommand
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.table import Table

from vqzip import __version__, allocator
from vqzip.container import DEFAULT_MAX_PIXELS
from vqzip.errors import UsageError, VqzError
from vqzip.fileio import check_input, check_output, write_atomic

EXIT_CODES = ("Exit codes: 0 success; 1 an error (damaged or foreign file, missing model, unreadable or "
              "unsupported image, existing output), one line each on stderr, the other files still done; "
              "2 bad usage; 130 interrupted; 143 terminated.")


class _Command(TyperCommand):
    """Help as gzip and click print it: `INPUT...` in the usage line (typer writes `{INPUT}...`),
    and arguments listed by name and help, without typer's type labels (`<list[str]>`)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if p.param_type_name == "argument":
                name = _argument_name(p)
                pieces.append(name if p.required else f"[{name}]")
        return pieces

    def format_options(self, ctx, formatter) -> None:
        params = [p for p in self.get_params(ctx) if not getattr(p, "hidden", False)]
        arguments = [(_argument_name(p), p.help or "") for p in params if p.param_type_name == "argument"]
        options = [r for p in params if p.param_type_name == "option" and (r := p.get_help_record(ctx))]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _argument_name(p) -> str:
    return (p.metavar or p.name.upper()) + ("..." if p.nargs != 1 else "")


# Plain help (rich_markup_mode=None): rich markup ate bracketed text in help strings
# ("[default: ...]" left "inputs ."); defaults are shown by show_default instead.
app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, epilog=EXIT_CODES, rich_markup_mode=None,
                  help="vqzip: a learned image codec (hierarchical VQ-VAE + PixelCNN priors + range coding).")
train_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Train models (seeded, resumable).")
app.add_typer(train_app, name="train")
err = Console(stderr=True, highlight=False, soft_wrap=True)


@contextmanager
def _reported(job=None):
    """Turn expected failures into one line on stderr and exit code 1, and warnings (vqzip's
    and Pillow's) into one line each; both name the job's file unless they name it already."""
    def named(message: str) -> str:
        if job is None or message.startswith((job.name, *([str(job.dst)] if job.dst else []))):
            return message
        return f"{job.name}: {message}"

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = lambda message, *_, **__: err.print(f"vqzip: warning: {named(str(message))}",
                                                                        markup=False)
            yield
    except UsageError as e:
        raise typer.BadParameter(str(e), param_hint=e.option) from None
    except (VqzError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        msg = f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename else str(e)
        err.print(f"vqzip: error: {named(msg)}", markup=False)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        err.print("vqzip: interrupted")
        raise typer.Exit(130)


def _attempt(job, work):
    """(job, work(job) or the exit code of its one-line error, seconds)."""
    t = time.perf_counter()
    try:
        with _reported(job):
            return job, work(job), time.perf_counter() - t
    except typer.Exit as e:
        return job, e.exit_code, time.perf_counter() - t


_FORKED: tuple = ()  # (jobs, work) for the worker processes of `_results`, which inherit it by fork


def _attempt_forked(k: int):
    return _attempt(_FORKED[0][k], _FORKED[1])


def _worker_threads(n: int | None) -> None:
    if n is not None:  # else the one thread vqzip.codec's fork handler set
        import torch

        torch.set_num_threads(n)


def _results(todo, work, workers: int, threads: int | None):
    """_attempt of every job: in this process, or in `workers` forked ones, which inherit the
    loaded models and run torch on `threads` threads (default 1); results come back as they
    finish. Where fork is unavailable, one process does all."""
    import multiprocessing

    stdio = any(job.src is None or job.dst is None for job in todo)
    if workers < 2 or len(todo) < 2 or stdio or "fork" not in multiprocessing.get_all_start_methods():
        yield from (_attempt(job, work) for job in todo)
        return
    global _FORKED
    _FORKED = (todo, work)
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(todo)), _worker_threads, (threads,)) as pool:
            yield from pool.imap_unordered(_attempt_forked, range(len(todo)))
            # Done: the workers leave on their own. Leaving the block terminates live ones with
            # SIGTERM, which the worker takes as `run`'s handler (SystemExit), and a signal that
            # lands just before a worker blocks on the task queue's lock left it there for good
            # (and the batch waiting on it). Only an interrupted batch terminates them now.
            pool.close()
            pool.join()
    finally:
        _FORKED = ()


def default_jobs() -> int:
    """Worker processes for a batch: one per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _version(value: bool):
    if value:
        print(f"vqzip {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    pass


MAX_PIXELS_HELP = "Refuse images above N pixels, a decompression-bomb guard; 0 for no limit."


@contextmanager
def _pixel_limit(n: int):
    """Pillow's pixel limit for its reading of the input, as --max-pixels sets vqzip's (passed to
    the api as max_pixels), for the length of one command (main() may run several in one process)."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = n or None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def _check(job, force: bool) -> None:
    """Refuse an output that cannot be written before any coding (checked again at the write)."""
    if job.src is not None:
        check_input(job.src)
    if job.dst is not None and not (job.into_folder and not job.dst.parent.exists()):
        check_output(job.dst, [job.src] if job.src else [], force)


def _terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def _no_terminal(jobs, force: bool, writes: str, reads: str) -> None:
    """As gzip does: no binary data written to a terminal, nor read from one, unless -f."""
    if force:
        return
    if any(j.dst is None for j in jobs) and _terminal(sys.stdout):
        raise VqzError(f"<stdout>: is a terminal; not writing {writes} to it (redirect it, or use -o; -f to force)")
    if any(j.src is None for j in jobs) and _terminal(sys.stdin):
        raise VqzError(f"<stdin>: is a terminal; not reading {reads} from it (redirect it; -f to force)")


def _write(job, data: bytes, force: bool) -> None:
    if job.dst is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    if job.into_folder:
        job.dst.parent.mkdir(parents=True, exist_ok=True)
    check_output(job.dst, [job.src] if job.src else [], force)
    write_atomic(job.dst, data, force)


def _read(job) -> bytes:
    if job.src is None:
        return sys.stdin.buffer.read()
    check_input(job.src)
    return job.src.read_bytes()


def _threads(n: Optional[int]) -> None:
    if n is not None:
        import torch

        torch.set_num_threads(n)


def _batch(jobs, check, work, quiet: bool, what: str, ready=None, workers: int = 1, threads: int | None = None) -> None:
    """Run check(job) for every job (the cheap checks: inputs, outputs, formats), then ready()
    once if any job passed (loading a model: its failure ends the command), then work(job) ->
    (bytes in, bytes out, pixels, message) for each job that passed, in `workers` processes:
    one line each (unless quiet), a progress bar and a summary table for several. An error on
    one file is reported in one line and the rest go on; exit code 1 if any failed. Workers run
    torch on `threads` threads (default 1)."""
    from rich.progress import Progress

    failed, todo, done, t0 = 0, [], [], time.perf_counter()
    for job in jobs:  # every cheap check before any coding
        try:
            with _reported(job):
                check(job)
            todo.append(job)
        except typer.Exit as e:
            if e.exit_code == 130:
                raise
            failed += 1
    if todo and ready is not None:
        with _reported():
            ready()
    with Progress(console=err, transient=True, disable=quiet or len(todo) < 2) as bar:
        task = bar.add_task(what, total=len(todo))
        try:
            for job, result, seconds in _results(todo, work, workers, threads):
                if result == 130:
                    raise KeyboardInterrupt
                if isinstance(result, tuple):
                    n_in, n_out, pixels, message = result
                    done.append((n_in, n_out, pixels))
                    if not quiet:
                        out = "<stdout>" if job.dst is None else job.dst
                        err.print(f"{job.name} -> {out}: {message}, {seconds:.2f} s", markup=False)
                else:
                    failed += 1
                bar.advance(task)
        except KeyboardInterrupt:
            err.print("vqzip: interrupted")
            raise typer.Exit(130) from None
    if len(jobs) > 1 and not quiet:
        # bits per pixel over the whole batch: all the .vqz bits over all the pixels (a mean of
        # per-file bpp would let a 1x1 image's header outweigh a photo)
        table = Table("files", "failed", "total in", "total out", "bpp (total)", "time", title=f"vqzip {what}")
        vqz_bytes = sum(o if what == "compress" else i for i, o, _ in done)
        pixels = sum(p for _, _, p in done)
        table.add_row(str(len(done)), str(failed), f"{sum(d[0] for d in done):,} B", f"{sum(d[1] for d in done):,} B",
                      f"{8 * vqz_bytes / pixels:.4f}" if pixels else "-", f"{time.perf_counter() - t0:.1f} s")
        err.print(table)
    if failed:
        raise typer.Exit(1)


@app.command(cls=_Command)
def compress(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help="Images (any format Pillow reads), folders with -r, or - for stdin."),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="PATH", show_default="each INPUT with .vqz",
                                         help="Output file, or folder for several inputs."),
    stdout: bool = typer.Option(False, "-c", "--stdout", help="Write to standard output (one input)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Take the images in folders, and in their folders."),
    quality: Optional[int] = typer.Option(None, "--quality", metavar="Q", show_default="the default level",
                                          help="Quality level; `vqzip levels` lists them."),
    model: Optional[str] = typer.Option(None, "-m", "--model", metavar="NAME", help="Shipped model by name, at scale 1."),
    target_bpp: Optional[float] = typer.Option(None, "--target-bpp", metavar="X", help="Per image, at most X bits per pixel and within 5% of it (levels, then the RDO multiplier)."),
    target_psnr: Optional[float] = typer.Option(None, "--target-psnr", metavar="Y", help="Per image, the lowest level of at least Y dB PSNR."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite existing outputs (never an input)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Only errors and warnings."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also the level, model and scale of each file."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", min=1, show_default="torch's choice",
                                          help="Torch threads."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=0, help=MAX_PIXELS_HELP),
    jobs_n: Optional[int] = typer.Option(None, "--jobs", "-j", metavar="N", min=1, show_default="one per core",
                                         help="Code several files in N worker processes (one torch thread each unless --threads), with the bytes of a serial run."),
):
    """Compress images to .vqz files (inputs are always kept)."""
    from vqzip import api, jobs, zoo

    if sum(x is not None for x in (quality, model, target_bpp, target_psnr)) > 1:
        raise typer.BadParameter("give at most one of --quality, --model, --target-bpp, --target-psnr")
    for name, value in (("--target-bpp", target_bpp), ("--target-psnr", target_psnr)):
        if value is not None and not 0 < value < float("inf"):
            raise typer.BadParameter(f"must be a positive number, not {value}", param_hint=name)
    with _reported():  # options first, then the files, then the model: all before any coding
        if quality is not None and quality not in [lv.quality for lv in zoo.levels()]:
            raise typer.BadParameter(f"no quality level {quality}; `vqzip levels` lists them "
                                     f"({', '.join(str(lv.quality) for lv in zoo.levels())})", param_hint="--quality")
        models = sorted(zoo.manifest()["models"])
        if model is not None and model not in models:
            raise typer.BadParameter(f"no model {model!r}; installed: {', '.join(models)}", param_hint="-m/--model")
        _threads(threads)
        plan = jobs.plan(inputs, ".vqz", output=output, stdout=stdout, recursive=recursive)
        _no_terminal(plan, force, "compressed data", "an image")

    def check(job):
        with _pixel_limit(max_pixels):
            _check(job, force)
            if job.src is not None:
                with api.open_image(job.src, load=False, max_pixels=max_pixels or None):  # the header: an image Pillow reads, not too large
                    pass

    def ready():  # the models this command codes with, loaded (and their sha256 checked) once
        if model is not None:
            zoo.load(model)
        else:
            targets = target_bpp is not None or target_psnr is not None
            for lv in zoo.levels() if targets else [zoo.level(quality)]:
                zoo.load(lv.point.model)

    def work(job):
        with _pixel_limit(max_pixels):
            _check(job, force)
            raw = _read(job)
            with api.open_image(io.BytesIO(raw), job.name, max_pixels=max_pixels or None) as im:
                allocator.for_image(im.width * im.height)
                note = ""
                if target_bpp is not None or target_psnr is not None:
                    choice = api.compress_to_target(im, bpp=target_bpp, psnr=target_psnr, max_pixels=max_pixels or None)
                    data, q, scale = choice.data, choice.quality, choice.point.scale
                    goal = f"{target_bpp} bpp" if target_bpp is not None else f"{target_psnr} dB"
                    how = (f"quality {q} (scale {scale}" + (f", lambda {choice.point.lam:.3g}" if choice.point.lam else "")
                           + (f", skip {choice.point.skip:.4g}" if choice.point.skip else "") + ")")
                    reached = f", {choice.psnr:.2f} dB" if choice.psnr is not None else ""
                    note = f"{reached}, {how} chosen for {goal}" + ("" if choice.met else " (nothing meets it: nearest)")
                else:
                    data, q = api.compress(im, quality, model=model, max_pixels=max_pixels or None), quality
                    scale = 1 if model is not None else zoo.level(q).point.scale
                pixels = im.width * im.height
            _write(job, data, force)
        message = f"{len(data):,} bytes, {8 * len(data) / pixels:.4f} bpp{note}"
        if verbose:
            message += f" [{model or zoo.level(q).point.model} at scale {scale}, {im.width}x{im.height} {im.mode}]"
        return len(raw), len(data), pixels, message

    _batch(plan, check, work, quiet, "compress", ready, jobs_n or default_jobs(), threads)


@app.command(cls=_Command)
def decompress(
    inputs: list[str] = typer.Argument(..., metavar="INPUT", help=".vqz files, folders with -r, or - for stdin."),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="PATH", show_default="each INPUT as .png",
                                         help="Output image (its suffix picks the format), or folder for several inputs."),
    stdout: bool = typer.Option(False, "-c", "--stdout", help="Write a PNG to standard output (one input)."),
    recursive: bool = typer.Option(False, "-r", "--recursive", help="Take the .vqz files in folders, and in their folders."),
    force: bool = typer.Option(False, "-f", "--force", help="Overwrite existing outputs (never an input)."),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Only errors and warnings."),
    verbose: bool = typer.Option(False, "-v", "--verbose", help="Also the model and coding scale of each file."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", min=1, show_default="torch's choice",
                                          help="Torch threads."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=0, help=MAX_PIXELS_HELP),
    preview: bool = typer.Option(False, "-p", "--preview", help="Decode the top level only: a quarter-size image, several "
                                 "times faster, written as INPUT.preview.png unless -o says otherwise."),
    jobs_n: Optional[int] = typer.Option(None, "--jobs", "-j", metavar="N", min=1, show_default="one per core",
                                         help="Code several files in N worker processes (one torch thread each unless --threads), with the bytes of a serial run."),
):
    """Decompress .vqz files to images (PNG unless -o names another format; inputs are kept)."""
    from vqzip import api, container, jobs, zoo

    with _reported():  # options first, then the files: all before any decoding
        _threads(threads)
        suffix = api.PREVIEW_SUFFIX if preview else ".png"
        plan = jobs.plan(inputs, suffix, output=output, stdout=stdout, recursive=recursive, decompressing=True)
        for job in plan:
            if job.dst is not None and not job.into_folder:  # -o FILE: its suffix must name a format
                try:
                    api.output_format(job.dst)
                except VqzError as e:
                    raise typer.BadParameter(str(e), param_hint="-o/--output") from None
        _no_terminal(plan, force, "a PNG image", "compressed data")

    models = set()

    def check(job):
        with _pixel_limit(max_pixels):
            _check(job, force)
            if job.src is not None:  # the header (its CRC, its size): before anything is decoded
                header = container.unpack(_read(job))[0]
                models.add(header.model_hash)
                if job.dst is not None:
                    api.check_writable(header.mode, job.dst)

    def ready():  # the models the files name, loaded once (worker processes inherit them)
        for name in filter(None, map(zoo.name_for_hash, models)):
            zoo.load(name)

    def work(job):
        with _pixel_limit(max_pixels):
            _check(job, force)
            data = _read(job)
            h = container.unpack(data)[0]
            allocator.for_image(h.width * h.height)
            image = api.decompress(data, preview=preview, max_pixels=max_pixels or None)
            out = api.encode_image(image, ".png" if job.dst is None else job.dst.suffix,
                                   "<stdout>" if job.dst is None else str(job.dst))
            _write(job, out, force)
        message = f"{image.width}x{image.height} {image.mode}"
        if verbose:
            message += f" [{h.model_name} at scale {h.scale}, {8 * len(data) / (h.width * h.height):.4f} bpp]"
        return len(data), len(out), h.width * h.height, message  # bpp of the file, preview or not

    _batch(plan, check, work, quiet, "decompress", ready, jobs_n or default_jobs(), threads)


@app.command(cls=_Command)
def info(inputs: list[str] = typer.Argument(..., metavar="INPUT", help=".vqz files, or - for stdin.")):
    """Print each .vqz file's header (sizes as width x height)."""
    from vqzip import container, fine_skip, jobs, zoo

    if jobs.STDIO in inputs and _terminal(sys.stdin):
        with _reported():
            raise VqzError("<stdin>: is a terminal; not reading .vqz data from it (redirect it)")
    failed = 0
    for name in inputs:
        job = jobs.Job(None if name == jobs.STDIO else Path(name), None)
        try:
            with _reported(job):
                data = _read(job)
                header, payloads, _ = container.unpack(data)
                installed = zoo.name_for_hash(header.model_hash)
                names = [m.name for m in zoo.load(installed).maps] if installed else []
                table = Table(show_header=False)
                rows = [
                    ("format version", str(data[len(container.MAGIC)])),
                    ("size", f"{header.width} x {header.height}"),
                    ("coded at", f"scale {header.scale}: {header.coded_size[0]} x {header.coded_size[1]}"),
                    ("operating point", (f"quality {header.quality}, " if header.quality else "")
                     + (f"RDO lambda {header.lam:.4g}" if header.lam else "nearest codes")
                     + (f", fine level skipped where it saves under {fine_skip.unpack(skip)[1]:.4g} per bit"
                        if (skip := dict(header.extensions).get(container.TAG_FINE_SKIP)) else "")),
                    ("mode", header.mode),
                    ("model", f"{header.model_name} ({header.model_hash.hex()})"
                              + ("" if installed else " — not installed")),
                    *((f"map {k}" + (f" ({names[k]})" if k < len(names) else ""), f"{c} x {r} codes, {len(p):,} bytes")
                      for k, ((r, c), p) in enumerate(zip(header.maps, payloads))),
                    ("file size", f"{len(data):,} bytes"),
                    ("bits per pixel", f"{8 * len(data) / (header.width * header.height):.4f}"),
                ]
                for k, v in rows:
                    table.add_row(k, v)
                console = Console(highlight=False, soft_wrap=True)
                console.print(f"{job.name}:", markup=False)  # a line of its own, unwrapped
                console.print(table)
        except typer.Exit as e:
            if e.exit_code == 130:
                raise
            failed += 1
    if failed:
        raise typer.Exit(1)


def _main_rank() -> bool:
    """False in torchrun's ranks other than 0, which train silently (see vqzip.training.distributed)."""
    return os.environ.get("RANK", "0") == "0"


def _progress(title: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(title), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[stats]}"), console=err, disable=not _main_rank())
    task = bar.add_task(title, total=None, stats="")

    def update(step: int, total: int, stats: dict):
        shown = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in stats.items())
        bar.update(task, completed=step, total=total, stats=shown)

    return bar, update


WARMUP_HELP = ("Steps of linear learning-rate warm-up from the first step trained (a run continued from landed weights "
               "starts without Adam's moments: give it more).")
PRECISION_HELP = ("bf16 (autocast), fp32, or auto: bf16 where it is native (a CPU with AVX-512 BF16 or AMX, "
                  "a GPU with bf16), else fp32, which is 27x faster than emulated bf16.")
START_STEP_HELP = ("Begin at step N of the schedule: with --init from weights landed at step N (its folder lost), "
                   "the run goes on where they stopped, with a new warm-up; give it another --seed for new crops.")


@train_app.command("vqvae", cls=_Command)
def train_vqvae(
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="Folder of training images (every 20th is held out)."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="Run folder; rerunning the command resumes from it."),
    steps: int = typer.Option(4000, metavar="N", help="Training steps."),
    batch: int = typer.Option(16, metavar="N", help="Crops per step."),
    crop: int = typer.Option(128, metavar="PIXELS", help="Side of the square training crops."),
    lr: float = typer.Option(1e-3, metavar="X", help="Learning rate."),
    seed: int = typer.Option(0, metavar="N", help="Random seed."),
    arch: str = typer.Option("vqvae2", metavar="NAME", help="Architecture (vqzip.models)."),
    channels: int = typer.Option(128, metavar="N", help="Channels of the network."),
    codes: int = typer.Option(512, metavar="N", help="Codebook size of each level."),
    code_dim: int = typer.Option(64, metavar="N", help="Dimension of the code vectors (every level and stage)."),
    bottom_stages: int = typer.Option(1, metavar="S", help="Residual VQ stages at the bottom level."),
    fine_stages: int = typer.Option(0, metavar="S", help="Residual VQ stages of a fine level at 1/2 resolution (0: none; needs one bottom stage)."),
    padding: str = typer.Option("zeros", metavar="MODE", help="Padding of the convolutions: zeros or replicate."),
    colour: float = typer.Option(0.0, metavar="F", help="Fraction of crops painted with flat colours (saturated colours, flat areas)."),
    rate: float = typer.Option(0.0, metavar="W", help="Entropy-constrained code assignment in training: what one bit weighs against a typical quantization error."),
    preview: float = typer.Option(0.5, metavar="W", help="Weight of the preview head's loss (top level alone -> 1/4-size image)."),
    precision: str = typer.Option("auto", metavar="P", help=PRECISION_HELP),
    init: Optional[Path] = typer.Option(None, "--init", metavar="RUN", help="Start from this run's network (fine-tuning); a preview head or residual stages it lacks start fresh."),
    start_step: int = typer.Option(0, "--start-step", metavar="N", help=START_STEP_HELP),
    warmup: int = typer.Option(100, "--warmup", metavar="N", min=1, help=WARMUP_HELP),
):
    """Phase I: the network (a hierarchical VQ-VAE)."""
    from vqzip import training

    with _reported():
        net_cfg = dict(channels=channels, code_dim=code_dim, top_codes=codes, bottom_codes=codes, bottom_stages=bottom_stages, preview=preview,
                       padding=padding, rate=rate, fine_stages=fine_stages, fine_codes=codes)
        cfg = training.TrainConfig(steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, precision=precision, colour=colour,
                                   start=start_step, warmup=warmup)
        bar, update = _progress("vqvae")
        with bar:
            meta = training.train_vqvae(data, out, arch, net_cfg, cfg, update, init)
        if _main_rank():
            err.print(f"done: {meta['steps_done']} steps in {meta['wall_seconds']:.0f} s -> {out / 'vqvae.safetensors'}")


@train_app.command("prior", cls=_Command)
def train_prior(
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="The training images the network was trained on."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="Run folder holding vqvae.safetensors."),
    steps: int = typer.Option(3000, metavar="N", help="Training steps."),
    batch: int = typer.Option(16, metavar="N", help="Crops per step."),
    crop: int = typer.Option(128, metavar="PIXELS", help="Side of the square training crops."),
    lr: float = typer.Option(1e-3, metavar="X", help="Learning rate."),
    seed: int = typer.Option(0, metavar="N", help="Random seed."),
    channels: int = typer.Option(96, metavar="N", help="Channels of each prior."),
    fine_channels: Optional[int] = typer.Option(None, metavar="N", show_default="--channels",
                                                help="Channels of the fine level's priors (a quarter of the image's pixels: 4x the bottom's walk)."),
    blocks: int = typer.Option(3, metavar="N", help="Gated blocks of each prior."),
    fine_blocks: Optional[int] = typer.Option(None, metavar="N", min=1, show_default="--blocks",
                                              help="Gated blocks of the fine level's priors."),
    maps_trained: Optional[str] = typer.Option(None, "--maps", metavar="LIST", show_default="every map",
                                               help="Comma-separated map names (top, bottom, fine, ...) whose priors train; "
                                                    "the others stay as --init left them."),
    free_stages: bool = typer.Option(False, "--context-free-stages",
                                     help="Residual stages after a level's first get priors without code context (a 1x1 first kernel): "
                                          "conditioned on the earlier maps alone, each such map is computed at once, in parallel."),
    precision: str = typer.Option("auto", metavar="P", help=PRECISION_HELP),
    init: Optional[Path] = typer.Option(None, "--init", metavar="RUN", help="Start from this run's priors (fine-tuning); a prior given fewer channels or blocks than its own starts cut from it."),
    start_step: int = typer.Option(0, "--start-step", metavar="N", help=START_STEP_HELP),
    warmup: int = typer.Option(100, "--warmup", metavar="N", min=1, help=WARMUP_HELP),
):
    """Phase II: one PixelCNN prior per code map of the run's network."""
    from vqzip import models, training

    with _reported():
        maps = training.load_net(out).maps
        fine = [m.stride == 2 for m in maps]  # the fine latent's maps: a code per 2x2 pixels, a quarter of the image's
        cfgs = [models.prior_config(maps, k, channels=(fine_channels or channels) if fine[k] else channels,
                                    blocks=(fine_blocks or blocks) if fine[k] else blocks,
                                    **({"first_kernel": 1} if free_stages and m.stage else {}))
                for k, m in enumerate(maps)]
        cfg = training.TrainConfig(steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, precision=precision, start=start_step,
                                   warmup=warmup)
        bar, update = _progress("prior")
        with bar:
            meta = training.train_prior(data, out, cfgs, cfg, update, init,
                                        None if maps_trained is None else [n.strip() for n in maps_trained.split(",") if n.strip()])
        if _main_rank():
            err.print(f"done: {meta['steps_done']} steps in {meta['wall_seconds']:.0f} s -> {out / 'prior.safetensors'}")


@train_app.command("rdo-codes", cls=_Command)
def train_rdo_codes(
    run: Path = typer.Option(..., "--run", metavar="FOLDER", help="Run folder with both phases done: its priors choose the codes."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="New run folder: the network, the codes, then `train prior --init RUN`."),
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="The training images the network was trained on."),
    lambdas: str = typer.Option("0,0.01,0.02,0.04", metavar="LIST", help="Comma-separated RDO multipliers; 0: the nearest codes."),
    jobs: int = typer.Option(1, "--jobs", "-j", metavar="N", min=1, help="Worker processes (one torch thread each)."),
):
    """Phase III: the training images coded with RDO under the run's priors, for fine-tuning them on what the encoder chooses."""
    from vqzip.training.rdo_codes import rdo_codes

    with _reported():
        try:
            lams = [float(x) for x in lambdas.split(",")]
        except ValueError:
            raise typer.BadParameter(f"{lambdas!r} is not a comma-separated list of numbers", param_hint="--lambdas") from None
        bar, update = _progress("rdo-codes")
        with bar:
            record = rdo_codes(run, out, data, lams, jobs, lambda done, total: update(done, total, {}))
        err.print(f"done: {record['images']} images x {len(lams)} multipliers -> {out / 'codes.npz'}")


@train_app.command("snapshot", cls=_Command)
def train_snapshot(
    run: Path = typer.Option(..., "--run", metavar="FOLDER", help="Run folder of a phase under way (or stopped)."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="New run folder for the weights as they stand."),
    phase: str = typer.Option("vqvae", metavar="PHASE", help="vqvae or prior."),
):
    """The weights of a phase as of its last saved state, as a run folder of their own (then `train prior`, `train export`)."""
    from vqzip import training

    with _reported():
        if phase not in ("vqvae", "prior"):
            raise typer.BadParameter(f"{phase!r} is not vqvae or prior", param_hint="--phase")
        if not (run / f"{phase}-state.pt").exists():
            raise VqzError(f"{run}: no {phase}-state.pt (nothing trained yet)")
        meta = training.snapshot(run, phase, out)
        err.print(f"{out / (phase + '.safetensors')}: {meta['snapshot']}")


@train_app.command("export", cls=_Command)
def train_export(
    run: Path = typer.Option(..., "--run", metavar="FOLDER", help="Run folder with both phases done."),
    name: str = typer.Option(..., "--name", metavar="NAME", help="Model name, e.g. vqz-base."),
    scales: Optional[str] = typer.Option(None, "--scales", metavar="LIST", show_default="1",
                                         help="Comma-separated scales (e.g. 1/2,3/4,1), one quality level each; 'none' for no level (the model is then used with -m NAME)."),
    default_scale: Optional[str] = typer.Option(None, "--default-scale", metavar="S", help="Make this scale's level the default."),
    ladder: Optional[Path] = typer.Option(None, "--levels", metavar="FILE",
                                          help="A family's ladder instead of --scales: the JSON bench/choose_levels.py prints; it replaces every quality level of the manifest."),
    default_level: Optional[int] = typer.Option(None, "--default-level", metavar="Q", help="With --levels: the default level's number."),
    data: Optional[Path] = typer.Option(None, "--data", metavar="FOLDER", help="Training images, to report validation PSNR/bpp."),
    checkpoints: Optional[Path] = typer.Option(None, "--checkpoints", metavar="FOLDER", show_default="the shipped checkpoints/",
                                               help="Checkpoints folder to export into."),
    kodak: Optional[Path] = typer.Option(None, "--kodak", metavar="FILE", help="bench/kodak.py JSON result for the model card."),
    rd: Optional[Path] = typer.Option(None, "--rd", metavar="FILE", help="`vqzip rd-curve` vqzip.json for the card's level table."),
    tile: str = typer.Option("0x0", "--tile", metavar="ROWSxCOLS",
                             help="Decode each code map in independent tiles of ROWSxCOLS codes (0: the whole height or width): fewer, larger steps of the priors' walk, for a little rate."),
    keep: Optional[str] = typer.Option(None, "--keep-priors", metavar="MODEL",
                                       help="For a run that trained only some maps' priors (`train prior --maps`): the model (a name in the "
                                            "checkpoints folder, or a folder) whose priors of the other maps ship as they are."),
):
    """Pack a run into checkpoints/NAME, record it and its quality levels in the manifest with its
    sha256, write its card."""
    import json
    from fractions import Fraction

    from vqzip import training, zoo

    with _reported():
        if ladder is not None and (scales is not None or default_scale is not None):
            raise typer.BadParameter("give --levels or --scales, not both", param_hint="--levels")
        if (ladder is None) != (default_level is None):
            raise typer.BadParameter("--levels and --default-level go together", param_hint="--default-level")
        family = _ladder_file(ladder) if ladder else None
        scales = "none" if ladder else scales or "1"
        try:
            levels = [] if scales == "none" else [Fraction(x) for x in scales.split(",")]
            default = Fraction(default_scale) if default_scale else None
        except (ValueError, ZeroDivisionError):
            raise VqzError(f"--scales takes fractions such as 1/2,3/4,1, not {scales!r}") from None
        if default is not None and default not in levels:
            raise VqzError(f"--default-scale {default_scale} is not one of --scales {scales}")
        root = checkpoints or zoo.checkpoints_dir()
        if family is not None:
            training.check_ladder(root, family, default_level, name)
        kept = None if keep is None else Path(keep) if Path(keep).is_dir() else root / keep
        folder = training.export(run, root / name, _tile(tile), kept)
        val = training.validate(folder, data) if data else None
        entry = training.register(root, name, levels, default, validation=val)
        if family is not None:
            training.set_ladder(root, family, default_level)
        training.write_card(folder, entry, json.loads(kodak.read_text()) if kodak else None,
                         json.loads(rd.read_text()) if rd else None)
        err.print(f"exported {folder} (sha256 {entry['sha256'][:16]}…)" + (f"; validation {val}" if val else ""))


@train_app.command("run", cls=_Command)
def train_run(
    recipe: Path = typer.Argument(..., metavar="RECIPE", help="A training recipe (recipes/*.toml)."),
    data: Path = typer.Option(..., "--data", metavar="FOLDER", help="The training images the recipe lists (checked by sha256)."),
    out: Path = typer.Option(..., "--out", metavar="FOLDER", help="Run folder; rerunning the command resumes from it."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", metavar="N", min=0,
                                            help="Stop after N training steps in all; the next run goes on from there."),
):
    """Train a model by its recipe, phase by phase: every phase resumes from its state, a finished one is skipped."""
    from vqzip.training import recipe as recipes

    with _reported():
        bar, update = _progress("train")
        with bar:
            done = recipes.run(recipes.load(recipe), data, out, max_steps, update, lambda line: err.print(line, markup=False))
        err.print(f"done: {out / 'checkpoints'}" if done else "stopped: run the command again to go on")


def _tile(text: str) -> tuple[int, int]:
    """--tile's ROWSxCOLS as two sizes >= 0."""
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        rows = cols = -1
    if rows < 0 or cols < 0 or rows >= 1 << 31 or cols >= 1 << 31:
        raise typer.BadParameter(f"takes two sizes such as 32x64 (0 for the whole height or width), not {text!r}", param_hint="--tile")
    return rows, cols


def _ladder_file(path: Path) -> dict:
    """The "levels" object of a bench/choose_levels.py JSON, or a one-line VqzError."""
    import json

    try:
        levels = json.loads(path.read_text())["levels"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise VqzError(f"{path}: not a levels file ({{\"levels\": {{...}}}} as bench/choose_levels.py prints): {e}") from None
    if not isinstance(levels, dict):
        raise VqzError(f"{path}: \"levels\" is not an object of levels by number")
    return levels


@app.command(cls=_Command)
def levels():
    """List the quality levels: each a shipped model's operating point, the scale images are coded
    at, the code maps coded (all, or the first few), the RDO multiplier, and the fine-skip
    threshold."""
    from vqzip import zoo

    with _reported():
        default = zoo.level(None).quality
        table = Table("quality", "model", "scale", "maps", "RDO lambda", "skip", "", title="vqzip quality levels",
                      caption="lambda 0: nearest codes; skip: the fine map is coded only in the blocks where it saves more "
                              "squared error per bit than this (none: everywhere)")
        for lv in zoo.levels():
            p = lv.point
            table.add_row(str(lv.quality), p.model, str(p.scale), "all" if p.maps is None else str(p.maps),
                          f"{p.lam:g}", f"{p.skip:g}" if p.skip else "none", "default" if lv.quality == default else "")
        Console(highlight=False).print(table)


@app.command("rd-curve", cls=_Command)
def rd_curve(
    inputs: list[Path] = typer.Argument(..., metavar="INPUT", help="Images, or folders of images."),
    quality: Optional[str] = typer.Option(None, "--quality", metavar="LIST", show_default="every shipped level",
                                          help="Comma-separated levels."),
    codecs: Optional[str] = typer.Option(None, "--codecs", metavar="LIST", show_default="every one installed",
                                         help="Comma-separated baselines (jpeg,webp,avif,jp2,jxl), or 'none'."),
    out: Optional[Path] = typer.Option(None, "--out", metavar="FOLDER", help="Folder for rd.csv, <codec>.json, bd-rate.json/.md, run.json, rd.png/.pdf/.svg and rd.caption.txt."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", show_default="torch's; with --jobs, the cores shared out",
                                          help="Torch threads for vqzip's coding."),
    jobs: int = typer.Option(1, "--jobs", "-j", metavar="N", help="Code in N worker processes: the same rates and distortions as one, times measured side by side."),
):
    """Rate-distortion of vqzip's quality levels and classical codecs on the same images.

    Progress and the time left go to stderr; a warning if the machine is busy, as timings are then disturbed: a 1-minute load average above the core count at the start, or other processes keeping more than a quarter of a core busy during the run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    from vqzip import data, rdcurve, zoo
    from vqzip.baselines import CODECS

    def busy_warning(load, when: str) -> None:
        if rdcurve.busy(load):
            err.print(f"vqzip: warning: load average {load:.2f} {when} is above the {rdcurve.cores()} cores: timings are "
                      "disturbed (recorded in run.json and rd.caption.txt)", markup=False)

    with _reported():
        if jobs < 1:
            raise typer.BadParameter(f"must be at least 1, not {jobs}", param_hint="--jobs")
        images = []
        for p in inputs:
            if not p.is_dir():
                check_input(p)
            images += data.list_images(p) if p.is_dir() else [p]
        levels = zoo.levels()
        if quality:
            try:
                levels = [zoo.level(int(q)) for q in quality.split(",")]
            except ValueError:
                raise VqzError(f"--quality takes comma-separated integers, not {quality!r}") from None
        if codecs is None:  # every installed baseline; say which are skipped
            names = [c for c in CODECS if CODECS[c].available()]
            for c in CODECS:
                if c not in names:
                    err.print(f"vqzip: note: skipping {c}, not installed" + (" (pip install pillow-jxl-plugin)" if c == "jxl" else ""))
        else:
            names = [] if codecs == "none" else [c.strip() for c in codecs.split(",") if c.strip()]
        unknown = [c for c in names if c not in CODECS]
        if unknown:
            raise VqzError(f"unknown codec {unknown[0]!r}; known: {', '.join(CODECS)}")
        missing = [c for c in names if not CODECS[c].available()]
        if missing:
            raise VqzError(f"codec {missing[0]!r} is not available here"
                           + (" (pip install pillow-jxl-plugin)" if missing[0] == "jxl" else ""))
        baselines = [CODECS[c] for c in names]
        _threads(threads)
        load_start = rdcurve.load_average()
        busy_warning(load_start, "at the start")
        cpu_start, wall_start = rdcurve.cpu_seconds(), time.perf_counter()
        units = rdcurve.plan(images, levels, baselines)
        run = rdcurve.record(rdcurve.dataset_name(inputs), len(images), levels, baselines, threads, jobs)
        eta, t0 = rdcurve.Eta(units, jobs), time.perf_counter()
        err.print(f"rd-curve: {rdcurve.title(run)}, {len(units)} codings ({len(levels)} vqzip levels, "
                  f"{len(units) // max(1, len(images)) - len(levels)} baseline settings each)"
                  + (f", {jobs} jobs" if jobs > 1 else ""), markup=False)

        class Left(ProgressColumn):  # the estimate at the last finished coding, counted down since
            def render(self, task):
                left = eta.seconds_left()
                if left is None:
                    return Text("time left: measuring")
                return Text(f"about {rdcurve.clock(max(0.0, left - (time.perf_counter() - task.fields['at'])))} left")

        bar = Progress(TextColumn("rate-distortion"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), Left(),
                       TextColumn("{task.fields[last]}"), console=err, transient=True, disable=not err.is_terminal)
        task = bar.add_task("rd-curve", total=len(units), at=t0, last="")
        printed = [t0]

        def progress(unit, seconds: float) -> None:
            eta.done(unit, seconds)
            now = time.perf_counter()
            bar.update(task, advance=1, at=now, last=f"{unit.image.name} {unit.codec} {unit.key}")
            if not err.is_terminal and (now - printed[0] >= 10 or not eta.left):  # logs: a line every 10 s
                printed[0] = now
                err.print(f"rd-curve: {eta.line(now - t0)}", markup=False)

        with bar:
            points = rdcurve.measure(units, progress, jobs, threads)
        run.load_average = {"start": load_start}
        run.others_busy = rdcurve.others_busy(cpu_start, rdcurve.cpu_seconds(), time.perf_counter() - wall_start)
        if (run.others_busy or 0) > rdcurve.OTHERS_BUSY:
            err.print(f"vqzip: warning: other processes kept {run.others_busy:.2f} cores busy during the run: timings "
                      "are disturbed (recorded in run.json and rd.caption.txt)", markup=False)
        descriptions = {b.name: f"{b.description}; {b.library()}" for b in baselines}
        descriptions[rdcurve.VQZIP] = (f"vqzip {run.vqzip} quality levels "
                                      + ", ".join(f"{lv.quality} ({lv.point.model} at scale {lv.point.scale})" for lv in levels))
        summary = rdcurve.summarize(points, descriptions)
        bds = rdcurve.bd_rates(summary)
        console = Console(highlight=False, soft_wrap=True)
        table = Table("codec", "setting", "bpp", "est. bpp", "PSNR dB", "MS-SSIM dB", "enc s", "dec s",
                      title=f"rate-distortion on {rdcurve.title(run)} (means), {rdcurve.clock(time.perf_counter() - t0)}")
        for name, s in summary.items():
            r = s["results"]
            for k in range(len(r["bpp"])):
                est = r.get("estimated_bpp")
                table.add_row(name, r["setting"][k], f"{r['bpp'][k]:.4f}", f"{est[k]:.4f}" if est else "",
                              f"{r['psnr-rgb'][k]:.2f}", f"{r['ms-ssim-rgb-db'][k]:.2f}",
                              f"{r['encoding_time'][k]:.2f}", f"{r['decoding_time'][k]:.2f}")
        console.print(table)
        if bds:
            undefined = any(x is None for v in bds.values() for x in v.values())
            bd = Table("baseline", "BD-rate, PSNR", "BD-rate, MS-SSIM", title="vqzip against each baseline (negative: vqzip needs fewer bits)",
                       caption="n/a: fewer than two vqzip levels, or no common quality range" if undefined else None)
            for name, v in bds.items():
                bd.add_row(name, *("n/a" if x is None else f"{x:+.1f}%" for x in (v["psnr-rgb"], v["ms-ssim-rgb-db"])))
            console.print(bd)
        if out:
            for f in rdcurve.write(out, points, summary, bds, run):
                err.print(f"wrote {f}", markup=False)


def main(argv: list[str] | None = None) -> int:
    """Run the command line on argv; returns the exit code (tests call this directly)."""
    try:
        app(args=argv, prog_name="vqzip")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    return 0


def _terminated(signum, frame):
    """SIGTERM unwinds as Ctrl-C does, so a file being written is removed (exit code 143)."""
    raise SystemExit(128 + signum)


def run() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    # each measured: the training steps' rule for the two phases that run them, one arena for
    # coding; other `train` commands (rdo-codes codes images in workers) keep glibc's defaults
    if sys.argv[1:3] in (["train", "vqvae"], ["train", "prior"]):
        allocator.for_training()
    elif sys.argv[1:2] != ["train"]:
        allocator.one_arena()
    sys.exit(main())

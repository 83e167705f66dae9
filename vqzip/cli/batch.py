"""The many-files runner of `compress` and `decompress`: every cheap check before any coding, the
work in the worker pool (`vqzip.runtime.pool_map`), one line per file, a progress bar and a
summary table; plus what the two commands share: their common options, stdin/stdout, writing
outputs safely, the pixel limit."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager, nullcontext
from typing import Callable, Optional

import typer
from PIL import Image

from vqzip import runtime
from vqzip.cli.app import INTERRUPTED, each_reported, err, reported, say
from vqzip.container import DEFAULT_MAX_PIXELS
from vqzip.errors import VqzError
from vqzip.fileio import check_input, check_output, write_atomic

# Options both commands take, with the same meaning and help.
FORCE = typer.Option(False, "-f", "--force", help="Overwrite existing outputs (never an input).")
QUIET = typer.Option(False, "-q", "--quiet", help="Only errors and warnings.")
THREADS = typer.Option(None, "--threads", metavar="N", min=1, show_default="one per core; with --jobs, one each",
                       help="Threads of each coding: tiles of the network run at once, each on one thread.")
MAX_PIXELS = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", metavar="N", min=0,
                          help="Refuse images above N pixels, a decompression-bomb guard; 0 for no limit.")
JOBS = typer.Option(None, "--jobs", "-j", metavar="N", min=1, show_default="one per core",
                    help="Code several files in N worker processes (one thread each unless --threads), with the bytes of a serial run.")


@contextmanager
def pixel_limit():
    """Pillow's own pixel limit off for the length of one command (main() may run several in one
    process): --max-pixels is vqzip's (passed to the api as max_pixels), checked as soon as an
    image's header is read and before its pixels are, and said once. Pillow's would warn at it
    and refuse at twice it, in its own words, before vqzip's check."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def check_paths(job, force: bool) -> None:
    """Refuse an input that is not a file, or an output that cannot be written, before any coding
    (checked again at the write)."""
    if job.src is not None:
        check_input(job.src)
    if job.dst is not None and not (job.into_folder and not job.dst.parent.exists()):
        check_output(job.dst, [job.src] if job.src else [], force)


def terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def no_terminal(jobs, force: bool, writes: str, reads: str) -> None:
    """As gzip does: no binary data written to a terminal, nor read from one, unless -f."""
    if force:
        return
    if any(j.dst is None for j in jobs) and terminal(sys.stdout):
        raise VqzError(f"<stdout>: is a terminal; not writing {writes} to it (redirect it, or use -o; -f to force)")
    if any(j.src is None for j in jobs) and terminal(sys.stdin):
        raise VqzError(f"<stdin>: is a terminal; not reading {reads} from it (redirect it; -f to force)")


def read(job) -> bytes:
    if job.src is None:
        return sys.stdin.buffer.read()
    check_input(job.src)
    return job.src.read_bytes()


def write(job, data: bytes, force: bool) -> None:
    if job.dst is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    if job.into_folder:
        job.dst.parent.mkdir(parents=True, exist_ok=True)
    check_output(job.dst, [job.src] if job.src else [], force)
    write_atomic(job.dst, data, force)


SLOW = 3.0  # seconds a lone file codes before a status line says it is under way


@contextmanager
def slow_status(console, text: str, after: float = SLOW):
    """A transient status line on `console` (a spinner, `text` and the time taken) from `after`
    seconds on, until the block ends: a large image codes for minutes, and a terminal should
    not look hung meanwhile."""
    import threading

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn(text), TimeElapsedColumn(), console=console, transient=True)
    started = threading.Event()
    lock = threading.Lock()

    def start():
        with lock:
            if not started.is_set():
                bar.start()
                bar.add_task(text, total=None)
                started.set()

    timer = threading.Timer(after, start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        with lock:
            if started.is_set():
                bar.stop()
            started.set()  # a timer already running starts nothing now


def attempt(job, work):
    """(job, work(job) or the exit code of its one-line error, seconds); an interrupt is
    INTERRUPTED, said once by `run` (not by each worker)."""
    t = time.perf_counter()
    try:
        with reported(job, interrupts=False):
            return job, work(job), time.perf_counter() - t
    except typer.Exit as e:
        return job, e.exit_code, time.perf_counter() - t
    except KeyboardInterrupt:
        return job, INTERRUPTED, time.perf_counter() - t


def run(jobs, check: Callable, work: Callable, quiet: bool, what: str, ready: Callable | None = None,
        workers: Optional[int] = None, threads: int | None = None) -> None:
    """Run check(job) for every job (the cheap checks: inputs, outputs, formats), then ready()
    once if any job passed (loading a model: its failure ends the command), then work(job) ->
    (bytes in, bytes out, pixels, message) for each job that passed, in `workers` processes
    (default one per core; stdin or stdout: this one): one line each (unless quiet), a progress
    bar and a summary table for several. An error on one file is reported in one line and the
    rest go on; exit code 1 if any failed. Workers code on `threads` threads (default 1)."""
    todo, done, t0 = [], [], time.perf_counter()

    def passed(job):
        check(job)
        todo.append(job)

    failed = each_reported(jobs, lambda job: job, passed)
    if todo:
        if ready is not None:
            with reported():
                ready()
        failed += _work(todo, work, done, quiet, what, workers, threads)
    if len(jobs) > 1 and not quiet:
        err().print(_summary(done, failed, what, time.perf_counter() - t0))
    if failed:
        raise typer.Exit(1)


def _work(todo, work: Callable, done: list, quiet: bool, what: str, workers: Optional[int], threads: int | None) -> int:
    """work(job) for the jobs that passed their checks, as `run` says, each result added to
    `done`: the number that failed. Rich is imported only for a bar (several files) or a lone
    file's status line at a terminal: a lone file in a script prints its line plainly, and
    spares the 20-40 ms of rich's import."""
    failed = 0
    stdio = any(job.src is None or job.dst is None for job in todo)
    workers = 1 if stdio else workers or runtime.cores()
    several = len(todo) > 1 and not quiet
    lone = len(todo) == 1 and not quiet and terminal(sys.stderr)  # several have the bar
    bar = _bar() if several else None
    with bar or nullcontext(), slow_status(err(), f"{what} {todo[0].name}") if lone else nullcontext():
        task = bar.add_task(what, total=len(todo)) if bar else None
        try:
            for job, result, seconds in runtime.pool_map(lambda job: attempt(job, work), todo, workers, threads):
                if result == INTERRUPTED:
                    raise KeyboardInterrupt
                if isinstance(result, tuple):
                    n_in, n_out, pixels, message = result
                    done.append((n_in, n_out, pixels))
                    if not quiet:
                        out = "<stdout>" if job.dst is None else job.dst
                        line = f"{job.name} -> {out}: {message}, {seconds:.2f} s"
                        if bar or lone:  # rich prints above its bar or status line
                            err().print(line, markup=False)
                        else:
                            say(line)
                else:
                    failed += 1
                if bar:
                    bar.advance(task)
        except KeyboardInterrupt:
            say("vqzip: interrupted")
            raise typer.Exit(INTERRUPTED) from None
    return failed


def _bar():
    """Several files' progress bar on stderr, cleared when done."""
    from rich.progress import Progress

    return Progress(console=err(), transient=True)


def _summary(done: list[tuple[int, int, int]], failed: int, what: str, seconds: float):
    """The batch's table (rich's, imported here: a refused batch prints one without the work's imports)."""
    from rich.table import Table

    # bits per pixel over the whole batch: all the .vqz bits over all the pixels (a mean of
    # per-file bpp would let a 1x1 image's header outweigh a photo)
    table = Table("files", "failed", "total in", "total out", "bpp (total)", "time", title=f"vqzip {what}")
    vqz_bytes = sum(o if what == "compress" else i for i, o, _ in done)
    pixels = sum(p for _, _, p in done)
    table.add_row(str(len(done)), str(failed), f"{sum(d[0] for d in done):,} B", f"{sum(d[1] for d in done):,} B",
                  f"{8 * vqz_bytes / pixels:.4f}" if pixels else "-", f"{seconds:.1f} s")
    return table

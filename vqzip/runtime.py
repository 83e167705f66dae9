"""How a vqzip process runs: its threads, fork safety, glibc's allocator, and the one worker
pool every batch uses (the command line's compress and decompress, rd-curve, `train rdo-codes`).
Nothing here imports torch before a caller needs it (`vqzip --version` stays fast); codings
never depend on any of it, only their speed and memory do (the priors' arithmetic is exact).

Threads
    set_threads(n)      the process's thread count (None: its cores): how many tiles of the
                        network run at once, each on one thread of ONNX Runtime (or torch)
    threads()           that count
    one_thread()        a block run on one thread of numpy's BLAS (and of torch, where it is
                        imported), restored after, safe across Python threads
    A process forked after torch ran its OpenMP regions deadlocks in the next one (libgomp's
    thread pool does not survive fork); every forked child therefore starts on one thread.

The image being coded
    coding(pixels)      a block that codes one image of this many pixels (a context variable:
                        each thread, and each tile's thread of `vqzip.tiles.per_tile`, sees its own)
    image_pixels()      that count, or None outside such a block; the network's engine keeps its
                        memory across runs for a small image, gives it back for a large one
                        (`vqzip.inference.onnx_graphs.shrinks`)

Allocator (glibc only; elsewhere nothing is done), for the `vqzip` command's own process (the
Python API leaves its host's allocator alone): what keeps coding a large image within bounded
memory.
- One arena: glibc gives each thread that allocates its own heap, and memory freed in one is not
  reused by another. The network's tiles, run by a thread pool, peaked at 1.32 GB coding and
  decoding a 4 MP image where one arena peaks at 0.98 GB, at the same speed.
- Large images: the network's tiles allocate tensors of megabytes (a 64-channel float tensor over
  a tile's context at 1/2 resolution is 63 MB), and glibc's mmap threshold, which rises after
  each large free up to 32 MB, puts many of them in the heap, where the freed tiles' memory
  fragments and stays resident. Compressing a 16 MP image with a fine-level model (λ 0.01, 3
  maps) peaked at 2076 MB, and at 1340 MB with the threshold fixed at 4 MB, each such tensor then
  its own mapping, returned when freed. The page faults cost time (a 768x512 compress took 17%
  longer), so the threshold is fixed only once an image of LARGE_IMAGE pixels or more is coded,
  and stays so for the process (glibc has no way back to its moving threshold).
- Training: each step allocates and frees the same tensors, many over 32 MB (glibc's largest
  threshold), so each was a fresh mapping and its pages faulted in again every step. Kept in the
  heap, with the heap never trimmed, the pages stay mapped (FOR_TRAINING).

Worker pool
    pool_map(task, items, workers, threads) -> task(item) for each item, as they finish
"""
from __future__ import annotations

import contextvars
import ctypes
import os
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


# --- threads -----------------------------------------------------------------------------------

_threads: int | None = None  # set_threads's count; None: the cores


def set_threads(n: int | None) -> None:
    """Run n threads from now on, in this process (None: leave the count as it is, at first the
    cores): the network's tiles at once (`vqzip.tiles.per_tile`), and torch's own where it is
    imported."""
    global _threads
    if n is None:
        return
    _threads = n
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


def threads() -> int:
    """The process's thread count (`set_threads`)."""
    return _threads or cores()


_image_pixels: contextvars.ContextVar[int | None] = contextvars.ContextVar("vqzip_image_pixels", default=None)


@contextmanager
def coding(pixels: int):
    """A block that codes one image of `pixels` pixels (`image_pixels` inside it)."""
    token = _image_pixels.set(pixels)
    try:
        yield
    finally:
        _image_pixels.reset(token)


def image_pixels() -> int | None:
    """The pixels of the image the innermost `coding` block of this context codes, None outside one."""
    return _image_pixels.get()


_lock = threading.Lock()
_inside = 0  # threads inside one_thread
_saved = 1  # torch's thread count (where torch is imported) that the first of them found
_blas = None  # threadpoolctl's hold on numpy's BLAS threads while any is inside


@contextmanager
def one_thread():
    """Run a block (the priors' walk, the network's tiles) on one thread of the BLAS numpy calls
    (the walk's matrix products are numpy's, `vqzip.priors.fixedpoint`), and of torch where a
    backend or training imported it. The walk
    is thousands of small matrix products: a second thread gains nothing on them, and when the
    other core is busy each product waits for it (a Kodak image's walk took 45 s instead of 0.5 s
    beside a training run in torch; a 64x96 map's walk took 22-26 s instead of 1.6 s on numpy's
    two OpenBLAS threads beside two). Both thread counts are the process's: with several Python
    threads inside at once (the encoder walks beside the network's decode), the last to leave
    restores what the first found."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    global _inside, _saved, _blas
    with _lock:
        if _inside == 0:
            # BLAS first, torch after, and back in the reverse order: torch's own BLAS (MKL) is one
            # of the libraries threadpoolctl limits, and a limit taken after torch's count was set
            # to 1 would restore 1 over it (every later decode then ran on one thread)
            _saved = torch.get_num_threads() if torch is not None else 1
            _blas = _blas_control(lambda: threadpool_limits(1, user_api="blas"))
            if _saved != 1:
                torch.set_num_threads(1)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _blas_control(_blas.restore_original_limits)
                if _saved != 1:
                    torch.set_num_threads(_saved)


def _blas_control(change: Callable[[], R]) -> R:
    """change() of the BLAS thread count by whichever Python thread runs it. threadpoolctl 3.8
    lets one thread at a time set OpenBLAS's (process-wide) count, the others' calls silently
    doing nothing, and a thread keeps that control after a bare threadpool_limits; here the
    first thread into one_thread sets the count and the last out restores it, which may be
    another, so control is released before and after (a walk in a worker thread otherwise ran
    on two BLAS threads once the main thread had walked)."""
    import threadpoolctl

    release = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if release is not None:  # threadpoolctl < 3.8 has no such control
        release(force=True)
    try:
        return change()
    finally:
        if release is not None:
            release(force=True)


def _after_fork_in_child() -> None:
    """A child forked after the parent ran torch's OpenMP regions deadlocks in the next one
    (libgomp's thread pool does not survive fork); with one thread torch runs none. A process
    that has not imported torch has nothing to protect."""
    global _lock, _inside, _blas, _threads
    _threads = 1  # the tiles too: every forked child starts on one thread
    # one_thread's state is the parent's: a lock another thread held at the fork stays held in
    # the child, whose only thread is this one (it would wait for it forever)
    _lock, _inside, _blas = threading.Lock(), 0, None
    graphs = sys.modules.get("vqzip.inference.onnx_graphs")  # the same for the ONNX sessions' locks, where loaded
    if graphs is not None:
        graphs.after_fork()
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


os.register_at_fork(after_in_child=_after_fork_in_child)


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --- allocator ---------------------------------------------------------------------------------

LARGE_IMAGE = 4_000_000  # pixels; at 4 MP the same compress peaked at 1684 MB, 1171 MB fixed
MMAP_THRESHOLD = 4 << 20
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -2, -3, -4, -8
FOR_TRAINING = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 1 << 30, _M_TOP_PAD: 256 << 20}


def _mallopt(param: int, value: int) -> None:
    try:
        ctypes.CDLL("libc.so.6").mallopt(param, value)
    except (OSError, AttributeError):  # not glibc
        pass


def one_arena() -> None:
    """One malloc arena for every thread of the process."""
    _mallopt(_M_ARENA_MAX, 1)


def for_training() -> None:
    """No mappings of their own for large blocks, and freed memory kept, for a training process."""
    for param, value in FOR_TRAINING.items():
        _mallopt(param, value)


def for_image(pixels: int) -> None:
    """Before coding an image of this many pixels: large ones get the fixed mmap threshold."""
    if pixels >= LARGE_IMAGE:
        _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


# --- the worker pool ---------------------------------------------------------------------------

_FORKED: tuple = ()  # (task, items) for the pool's workers, which inherit it by fork


def _run_forked(k: int):
    return _FORKED[0](_FORKED[1][k])


def pool_map(task: Callable[[T], R], items: Sequence[T], workers: int, threads: int | None = 1, *,
             fresh: bool = False) -> Iterator[R]:
    """task(item) for every item, yielded in the order they finish: in `workers` worker processes,
    or in this one where there are fewer than two workers or items (the thread count is then the
    caller's), or where processes cannot be forked and `fresh` is not asked for.

    Forked workers (the default) inherit what this process has loaded (models, checked inputs)
    and `task` may be any callable (a closure, a lambda): nothing but the results is pickled.
    Each runs on `threads` threads (`set_threads`; None: the one thread every forked child starts
    on); where torch is imported, more than one is safe only while this process has not yet run
    torch's parallel regions (libgomp's pool does not survive fork). `fresh` workers are spawned
    instead: they import what they need (task and items are pickled: a module-level function)
    and may then run any number of threads, whatever this process ran.

    The pool is closed when the iteration ends: a finished batch lets its workers leave on their
    own, as terminating them (SIGTERM, taken by the vqzip command's handler) could catch one
    just before it blocks on the task queue's lock and leave the batch waiting on it for good.
    Only an abandoned or interrupted iteration terminates them."""
    import multiprocessing

    forks = "fork" in multiprocessing.get_all_start_methods()
    if workers < 2 or len(items) < 2 or not (fresh or forks):
        yield from map(task, items)
        return
    global _FORKED
    n = min(workers, len(items))
    try:
        if fresh:
            pool = multiprocessing.get_context("spawn").Pool(n, set_threads, (threads,))
            results = pool.imap_unordered(task, items)
        else:
            _FORKED = (task, items)
            pool = multiprocessing.get_context("fork").Pool(n, set_threads, (threads,))
            results = pool.imap_unordered(_run_forked, range(len(items)))
        with pool:
            yield from results
            pool.close()
            pool.join()
    finally:
        _FORKED = ()

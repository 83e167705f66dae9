"""Coding a folder tree on a Dask cluster (`dask.distributed`, the `cluster` extra).

    client ── reads each input ──► worker: bytes ─► vqzip.compress / decompress ─► bytes
           ◄── writes each output atomically, refusing existing ones without force ──┘

The client does all file I/O and the workers only code bytes, so workers need no shared
filesystem and the outputs are the bytes `vqzip compress|decompress` writes for the same inputs
and options (tested on a local cluster of 2 workers). Outputs mirror the input tree as
`vqzip compress -r SRC -o DST` does.

    from dask.distributed import Client
    from vqzip import cluster
    with Client("tcp://scheduler:8786") as client:       # or Client(n_workers=2, threads_per_worker=1)
        for r in cluster.compress_tree(client, "photos/", "coded/", quality=4):
            print(r.src, r.dst, r.error or f"{r.bytes_out} bytes")

Dask rather than Ray: `distributed` is a pure-Python install of a few MB that runs the same code
on a laptop's local cluster and on a real one (SSH, Kubernetes, HPC job queues through
dask-jobqueue), and a task is a plain function of bytes; Ray needs a large binary wheel and its
own runtime for what is here a map over files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vqzip import jobs, runtime
from vqzip.errors import VqzError
from vqzip.fileio import check_input, check_output, write_atomic


@dataclass(frozen=True)
class Outcome:
    src: Path
    dst: Path
    bytes_in: int
    bytes_out: int  # 0 if it failed
    error: str | None = None  # one line, as the command line prints it


def compress_bytes(raw: bytes, name: str, quality: int | None = None, threads: int | None = None) -> bytes:
    """An image file's bytes -> .vqz bytes (runs on a worker; `threads`: its
    thread count there, `runtime.set_threads`: tiles of the network at once)."""
    import io

    from vqzip import api

    runtime.set_threads(threads)
    with api.open_image(io.BytesIO(raw), name) as im:
        return api.compress(im, quality)


def decompress_bytes(data: bytes, suffix: str = ".png", threads: int | None = None) -> bytes:
    """.vqz bytes -> the decoded image's file bytes in the format `suffix` names (on a worker)."""
    from vqzip import api

    runtime.set_threads(threads)
    return api.encode_image(api.decompress(data), suffix)


def compress_tree(client, src: str | Path, dst: str | Path, *, quality: int | None = None, force: bool = False,
                  threads: int | None = None) -> list[Outcome]:
    """Every image under `src` (or `src` itself) compressed on `client`'s cluster into `dst`,
    mirroring the tree; one Outcome per file, failures included (the others still run)."""
    plan = jobs.plan([str(src)], ".vqz", output=_as_folder(dst), recursive=True)
    return _run(client, plan, lambda raw, job: (compress_bytes, raw, str(job.src), quality, threads), force)


def decompress_tree(client, src: str | Path, dst: str | Path, *, suffix: str = ".png", force: bool = False,
                    threads: int | None = None) -> list[Outcome]:
    """Every .vqz file under `src` decompressed on `client`'s cluster into `dst` as `suffix` files."""
    plan = jobs.plan([str(src)], suffix, output=_as_folder(dst), recursive=True, decompressing=True)
    return _run(client, plan, lambda data, job: (decompress_bytes, data, suffix, threads), force)


def _as_folder(dst: str | Path) -> str:
    return str(dst).rstrip("/") + "/"


def _run(client, plan: list[jobs.Job], task, force: bool) -> list[Outcome]:
    from dask.distributed import as_completed

    outcomes, futures = [], {}
    for job in plan:
        try:
            check_input(job.src)
            job.dst.parent.mkdir(parents=True, exist_ok=True)
            check_output(job.dst, [job.src], force)  # refused before any coding
            raw = job.src.read_bytes()
        except (VqzError, OSError) as e:
            outcomes.append(Outcome(job.src, job.dst, 0, 0, _line(e)))
            continue
        fn, *args = task(raw, job)
        futures[client.submit(fn, *args, pure=False)] = (job, len(raw))
    for future in as_completed(futures):
        job, n_in = futures[future]
        try:
            data = future.result()
            write_atomic(job.dst, data, force)
            outcomes.append(Outcome(job.src, job.dst, n_in, len(data)))
        except Exception as e:  # a worker's error comes back as it was raised there
            outcomes.append(Outcome(job.src, job.dst, n_in, 0, _line(e)))
    order = {job.src: k for k, job in enumerate(plan)}
    return sorted(outcomes, key=lambda o: order[o.src])


def _line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__

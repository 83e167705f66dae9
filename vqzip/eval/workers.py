"""A sweep's codings in parallel: the units through `vqzip.runtime.pool_map`'s workers (spawned:
each imports torch and loads the models once, and runs the threads asked for), the points back
in the units' order, so a sweep with jobs gives the rates and distortions of a serial one (its
times are then measured beside the other workers)."""
from __future__ import annotations

import time
from typing import Callable

from vqzip import runtime
from vqzip.eval.machine import cores
from vqzip.eval.points import Point, Unit, code


def measure(units: list[Unit], progress: Callable[[Unit, float], None] = lambda unit, seconds: None,
            jobs: int = 1, threads: int | None = None) -> list[Point]:
    """Code and decode every unit; progress(unit, seconds) after each, in the order they finish.
    jobs > 1: in that many worker processes, each on `threads` threads (tiles of the network at
    once; default: the cores shared out). Points come back in the units' order either way."""
    done: dict[int, Point] = {}
    threads = threads or max(1, cores() // max(1, jobs))
    for index, point, seconds in runtime.pool_map(_timed_code, units, jobs, threads, fresh=True):
        done[index] = point
        progress(units[index], seconds)
    return [done[u.index] for u in units]


def _timed_code(unit: Unit) -> tuple[int, Point, float]:
    t = time.perf_counter()
    point = code(unit)
    return unit.index, point, time.perf_counter() - t

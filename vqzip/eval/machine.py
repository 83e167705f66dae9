"""How busy the machine is, so a sweep's timings can say whether they were disturbed: the load
average at the start, and the CPU time other processes took during the run."""
from __future__ import annotations

import os
from pathlib import Path

# Cores other processes may keep busy, on average over a run, before its timings count as
# disturbed. A load average at the end cannot tell: it counts the run's own --jobs workers.
OTHERS_BUSY = 0.25


def load_average() -> float | None:
    """The 1-minute load average (None where the system has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def cores() -> int:
    """The machine's cores (what a load average is read against)."""
    return os.cpu_count() or 1


def busy(load: float | None) -> bool:
    """Whether a load average means the timings are disturbed: more runnable processes than cores."""
    return load is not None and load > cores()


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

"""Time left in a sweep, for its progress line."""
from __future__ import annotations

from collections import defaultdict

from vqzip.eval.points import Unit


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

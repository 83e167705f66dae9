"""A family's quality levels from validation measurements (`vqzip.ladder` chooses): the measured
operating points of `bench/validate_rd.py --json` runs, and the levels chosen among them as the
manifest's "levels" entries (`vqzip train export --levels`)."""
from __future__ import annotations

import json
from pathlib import Path

from vqzip import ladder
from vqzip.eval.baselines import CODECS


def points_of(path: Path) -> list[ladder.Measured]:
    """Every measured point of a validate_rd JSON: its curves are MODEL[=POINTS], its points
    SCALE:LAMBDA:STAGES[:SKIP[:ANCHOR]] (STAGES 'None': all maps; ANCHOR: a lattice model's); the curves of classical codecs (`--baselines`)
    and per-image curves are not levels, and are skipped."""
    out = []
    for curve, rows in json.loads(path.read_text())["results"].items():
        if curve in CODECS or curve.endswith(" (per image)"):
            continue
        model = curve.partition("=")[0]
        for r in rows:
            out.append(ladder.Measured(ladder.parse_point(model, r["point"]), r["bpp"], r["psnr"], r["decode_s"]))
    return out


def choose(points: list[ladder.Measured], count: int, lo: float, hi: float, max_decode: float = float("inf"),
           names: dict[str, str] | None = None) -> tuple[list[ladder.Measured], dict]:
    """`count` levels among measured `points` (`points_of`), evenly spaced in log rate
    from `lo` to `hi` bpp, none that upsamples, each decoding within `max_decode` seconds
    (`ladder.choose`; ValueError where no ladder fits): (the points chosen, the manifest's
    "levels" object for them, the measured models renamed as `names` says)."""
    chosen = ladder.choose(points, count, lo, hi, max_decode)
    return chosen, ladder.manifest_levels(chosen, names or {})

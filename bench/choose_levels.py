"""A family's quality levels from validation measurements (`vqzip.eval.levels`): the operating points
of `bench/validate_rd.py --json` runs, their front, and `count` of them evenly spaced in log
rate, none that upsamples, each decoding within a bound. Prints the table (on stderr) and the
manifest's "levels" entries (on stdout: `> ladder.json`, then `vqzip train export --levels`).

    python bench/validate_rd.py ../shared/data/train runs/m=1/4:0.02:1,1/2:0.02:1,... --json m.json
    python bench/choose_levels.py m.json --count 9 --lo 0.06 --hi 1.6 --max-decode 3 --name runs/m=vqz-new

Choose on validation images, never Kodak; their rates differ from Kodak's (other sizes and
content), so set lo and hi from where the validation curve covers Kodak's range.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vqzip import ladder
from vqzip.eval.levels import choose, points_of


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", type=Path, nargs="+", help="bench/validate_rd.py --json outputs")
    ap.add_argument("--count", type=int, default=9)
    ap.add_argument("--lo", type=float, default=0.06, help="the lowest level's target bpp")
    ap.add_argument("--hi", type=float, default=1.6, help="the highest level's target bpp")
    ap.add_argument("--max-decode", type=float, default=float("inf"), help="seconds a level may take to decode")
    ap.add_argument("--name", action="append", default=[], help="MODEL=NAME: the name a measured model ships under")
    args = ap.parse_args(argv)
    points = [p for path in args.json for p in points_of(path)]
    try:
        chosen, levels = choose(points, args.count, args.lo, args.hi, args.max_decode,
                                dict(n.split("=", 1) for n in args.name))
    except ValueError as e:
        raise SystemExit(str(e)) from None
    table = Table("level", "target bpp", "model", "scale", "maps", "lambda", "skip", "anchor", "bpp", "PSNR", "dec s",
                  title=f"{args.count} levels from {len(points)} measured points")
    for q, (t, m) in enumerate(zip(ladder.targets(args.count, args.lo, args.hi), chosen), 1):
        p = m.point
        table.add_row(str(q), f"{t:.3f}", p.model, str(p.scale), "all" if p.maps is None else str(p.maps), f"{p.lam:g}",
                      f"{p.skip:g}", "-" if p.anchor is None else str(p.anchor), f"{m.bpp:.4f}", f"{m.psnr:.2f}", f"{m.decode_s:.2f}")
    Console(stderr=True).print(table)  # stdout is the levels JSON, for `train export --levels`
    print(json.dumps({"levels": levels}, indent=1))


if __name__ == "__main__":
    main()

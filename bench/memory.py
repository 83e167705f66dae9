"""Peak memory of whole-process compress and decompress, by image size (issue 13: at most 2 GB
for any image the default --max-pixels admits).

    python bench/memory.py ../shared/data/kodak/kodim01.png              # 4, 16 and 40 MP
    python bench/memory.py PHOTO --megapixels 4 40 --quality 1
    python bench/memory.py PHOTO --megapixels 40 --quality 5 6 7 8 9     # several levels (15 min each at 40 MP)

The photo is resized (Lanczos) to each size, keeping its aspect ratio; each row is a fresh
`python -m vqzip` process (`speed.process`), so imports, the model and every buffer count.
"""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table

from speed import process
from vqzip import container


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path)
    ap.add_argument("--megapixels", type=float, nargs="+", default=[4, 16, 40])
    ap.add_argument("--quality", type=int, nargs="+", default=[None], help="quality levels (default: the default level)")
    ap.add_argument("--model", help="shipped model by name, at scale 1 with all its maps (instead of --quality)")
    args = ap.parse_args()
    src = Image.open(args.photo).convert("RGB")
    err = Console(stderr=True)
    table = Table(title=f"peak RSS, whole process ({args.photo.name} resized; limit {container.DEFAULT_MAX_PIXELS:,} pixels)")
    for col in ("level", "size", "pixels", "compress s", "compress MB", "decompress s", "decompress MB", "bpp"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for quality in args.quality:
            opts = (["--quality", str(quality)] if quality else []) + (["-m", args.model] if args.model else [])
            for mp in args.megapixels:
                f = math.sqrt(mp * 1e6 / (src.width * src.height))
                im = src.resize((int(src.width * f), int(src.height * f)), Image.LANCZOS)
                png, vqz, out = (Path(tmp) / n for n in ("in.png", "in.vqz", "out.png"))
                im.save(png, compress_level=1)
                cs, cm = process(["compress", "-f", *opts, str(png), "-o", str(vqz)])
                ds, dm = process(["decompress", "-f", str(vqz), "-o", str(out)])
                bpp = 8 * vqz.stat().st_size / (im.width * im.height)
                row = (str(quality or args.model or "default"), f"{im.width}x{im.height}", f"{im.width * im.height:,}", f"{cs:.1f}", f"{cm:.0f}",
                       f"{ds:.1f}", f"{dm:.0f}", f"{bpp:.3f}")
                table.add_row(*row)
                err.print("  ".join(row))  # as it goes: a large image takes many minutes on a slow machine
    Console().print(table)


if __name__ == "__main__":
    main()

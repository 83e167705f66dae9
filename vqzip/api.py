"""The library: images to .vqz bytes and back, with the shipped models, loaded once per process.

    >>> import vqzip
    >>> from PIL import Image
    >>> data = vqzip.compress(Image.open("samples/tiger.png"), quality=2)
    >>> vqzip.decompress(data).size
    (481, 321)

The command line calls these same functions. Errors are `vqzip.VqzError`s (a `FormatError` for
damaged or foreign bytes, a `ModelError` for a missing model) with one-line messages.
"""
from __future__ import annotations

import io
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image

from vqzip import codec, metrics, zoo
from vqzip.errors import VqzError
from vqzip.fileio import check_input, check_output, write_atomic

ImageLike = Image.Image | str | Path | BinaryIO
PREVIEW_SUFFIX = ".preview.png"  # a preview's default name, so it is never taken for the full image


@contextmanager
def open_image(image: ImageLike) -> Iterator[Image.Image]:
    """A PIL image as given, or opened from a path or binary file, its size checked against the
    pixel limit before its pixels are read, and kept open while in use (a multi-frame file
    must stay open to be sought)."""
    if isinstance(image, Image.Image):
        yield image
        return
    if isinstance(image, (str, Path)):
        check_input(Path(image))
    with Image.open(image) as im:
        codec.check_pixels(*im.size, "image")
        im.load()
        yield im


def compress(image: ImageLike, quality: int | None = None, *, model: str | None = None) -> bytes:
    """An image (a PIL image, or a path or binary file of any format Pillow reads) -> .vqz bytes.

    quality: a level from `levels()` (default: the default level); model: a shipped model by
    name, at scale 1, instead of a level."""
    if model is not None and quality is not None:
        raise VqzError("give a model or a quality, not both")
    with open_image(image) as im:
        if model is not None:
            return codec.compress(im, zoo.load(model))
        lv = zoo.level(quality)
        return codec.compress(im, zoo.load(lv.model), lv.scale, lv.lam, lv.stages, lv.quality)


def decompress(data: bytes | str | Path, *, preview: bool = False) -> Image.Image:
    """.vqz bytes (or a path to a .vqz file) -> the image, at its original size and mode.

    preview: decode the top level only, a quarter of the size each way and several times faster
    (`codec.preview`)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        check_input(Path(data))
        data = Path(data).read_bytes()
    return (codec.preview if preview else codec.decompress)(bytes(data)).image


def levels() -> list[zoo.Level]:
    """The quality levels: each a shipped model and the scale images are coded at."""
    return zoo.levels()


@dataclass(frozen=True)
class Choice:
    quality: int
    data: bytes
    bpp: float
    psnr: float | None  # measured when the target is a PSNR
    met: bool
    lam: float = 0.0  # the RDO multiplier the codes were chosen with


TARGET_BPP_WITHIN = 0.05  # --target-bpp lands at most this fraction under the target


def compress_to_target(image: ImageLike, *, bpp: float | None = None, psnr: float | None = None) -> Choice:
    """Compress to a target, found by really coding (and, for PSNR, decoding).

    bpp: the largest file of at most `bpp` bits per pixel: the highest level under it, then
    the next level up with its RDO multiplier raised until the file lands within
    TARGET_BPP_WITHIN under the target (a search on lambda; several encodings). psnr: the
    lowest level of at least `psnr` dB. If nothing meets the target, the nearest level
    (lowest, or highest), with met=False."""
    if (bpp is None) == (psnr is None):
        raise VqzError("give one target: bpp or psnr")
    with open_image(image) as im:
        return _to_target(im, bpp, psnr)


def _to_target(im: Image.Image, bpp: float | None, psnr: float | None) -> Choice:
    pixels = np.asarray(im.convert("RGB"))
    n = im.width * im.height
    ladder = levels()
    tried: dict[tuple[int, float], Choice] = {}

    def measure(lv: zoo.Level, lam: float | None = None) -> Choice:
        lam = lv.lam if lam is None else lam
        if (lv.quality, lam) not in tried:
            data = codec.compress(im, zoo.load(lv.model), lv.scale, lam, lv.stages, lv.quality)
            dist = metrics.psnr(pixels, np.asarray(decompress(data).convert("RGB"))) if psnr is not None else None
            ok = 8 * len(data) / n <= bpp if bpp is not None else dist >= psnr
            tried[lv.quality, lam] = Choice(lv.quality, data, 8 * len(data) / n, dist, ok, lam)
        return tried[lv.quality, lam]

    # rate and quality grow with the level: binary search for the boundary
    lo, hi = 0, len(ladder) - 1
    while lo < hi:
        mid = (lo + hi + (bpp is not None)) // 2
        if bpp is not None:
            lo, hi = (mid, hi) if measure(ladder[mid]).met else (lo, mid - 1)
        else:
            lo, hi = (lo, mid) if measure(ladder[mid]).met else (mid + 1, hi)
    best = measure(ladder[lo])
    if bpp is None or (best.met and best.bpp >= (1 - TARGET_BPP_WITHIN) * bpp):
        return best
    above = ladder[lo + 1] if best.met and lo + 1 < len(ladder) else None if best.met else ladder[lo]
    return _raise_lambda(above, measure, bpp, best) if above is not None else best


def _raise_lambda(lv: zoo.Level, measure, bpp: float, best: Choice, tries: int = 12) -> Choice:
    """Level lv is over `bpp` at its own multiplier: search larger multipliers (doubling, then
    bisection in log scale) for the largest file at most bpp, within TARGET_BPP_WITHIN of it if
    the level can get there; `best` (met or not) if no multiplier brings it under."""
    over, under = max(lv.lam, 0.0), None
    lam = max(2 * lv.lam, 0.01)
    for _ in range(tries):
        c = measure(lv, lam)
        if c.met:
            under = lam
            if not best.met or c.bpp > best.bpp:
                best = c
            if c.bpp >= (1 - TARGET_BPP_WITHIN) * bpp:
                break
        else:
            over = lam
        lam = 2 * lam if under is None else (over * under) ** 0.5 if over > 0 else under / 2
    return best


def compress_file(src: str | Path, dst: str | Path | None = None, *, quality: int | None = None,
                  force: bool = False) -> Path:
    """Compress an image file to dst (default: src with .vqz), written atomically; an existing
    dst is refused unless force, and src is never overwritten. Returns dst."""
    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_suffix(".vqz")
    check_input(src)
    check_output(dst, [src], force)
    write_atomic(dst, compress(src, quality))
    return dst


def decompress_file(src: str | Path, dst: str | Path | None = None, *, force: bool = False,
                    preview: bool = False) -> Path:
    """Decompress a .vqz file to dst (default: src with .png, or .preview.png for a preview; the
    suffix picks the format), written atomically, never over src, over an existing dst only
    with force. Returns dst."""
    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_suffix(PREVIEW_SUFFIX if preview else ".png")
    check_input(src)
    check_output(dst, [src], force)
    write_atomic(dst, encode_image(decompress(src, preview=preview), dst.suffix))
    return dst


def encode_image(image: Image.Image, suffix: str) -> bytes:
    """An image in the format a file suffix names (PNG for an unknown one)."""
    buf = io.BytesIO()
    image.save(buf, format=Image.registered_extensions().get(suffix.lower(), "PNG"))
    return buf.getvalue()


__all__ = ["compress", "decompress", "open_image", "compress_file", "decompress_file", "compress_to_target", "levels", "Choice"]

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
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from vqzip import codec, intake, metrics, zoo
from vqzip.container import ANCHOR_STEPS, DEFAULT_MAX_PIXELS, FORMAT
from vqzip.errors import ModelError, VqzError, VqzWarning
from vqzip.fileio import check_input, check_output, write_atomic
from vqzip.models import lattice_config
from vqzip.operating_point import OperatingPoint
from vqzip.outputs import PREVIEW_SUFFIX, check_writable, encode_image, output_format

ImageLike = Image.Image | str | Path | BinaryIO


@contextmanager
def open_image(image: ImageLike, name: str | None = None, *, load: bool = True,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[Image.Image]:
    """A PIL image as given, or opened from a path or binary file, its size checked against
    max_pixels (None: no limit) before its pixels are read, and kept open while in use (a multi-frame file
    must stay open to be sought). Pillow's refusals and failures, here or reading the frames and
    EXIF that coding will read, become VqzErrors naming `name` (default: the path, or "image").
    load=False reads the header only (a cheap check that the file is an image vqzip takes)."""
    if isinstance(image, (str, Path)):
        check_input(Path(image))
    name = name or (str(image) if isinstance(image, (str, Path)) else "image")
    if isinstance(image, Image.Image):
        with _readable(image, name):
            _read_metadata(image)
        yield image
        return
    with _readable(image, name):
        im = Image.open(image)
    with im:
        with _readable(image, name):
            codec.check_pixels(*im.size, "image", max_pixels)
            if load:
                intake.warn_if_deep(im)  # Pillow reduces 16-bit RGB to 8 bits as it loads it
                im.load()
                _read_metadata(im)
        yield im


def _read_metadata(im: Image.Image) -> None:
    """Read what `intake.prepare` will: the frame count (which reads a GIF or TIFF through to its
    end) and the EXIF orientation, so a damaged file fails here, named, not while coding."""
    getattr(im, "n_frames", 1)
    im.getexif()


@contextmanager
def _readable(image: ImageLike, name: str) -> Iterator[None]:
    """Pillow's refusals to open or read an image, as VqzErrors naming it."""
    try:
        yield
    except VqzError:
        raise
    except UnidentifiedImageError:
        empty = (not image.getbuffer().nbytes if isinstance(image, io.BytesIO)
                 else isinstance(image, (str, Path)) and Path(image).stat().st_size == 0)
        raise VqzError(f"{name}: " + ("empty input, not an image" if empty else "not an image format Pillow reads")) from None
    except Image.DecompressionBombError as e:
        raise VqzError(f"{name}: {e}") from None
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        raise VqzError(f"{name}: {e.strerror}") from None
    except Exception as e:  # truncated or malformed data: Pillow's plugins raise OSError, SyntaxError,
        # ValueError, EOFError, IndexError, struct.error, ... as their parsers run out of bytes
        raise VqzError(f"{name}: cannot read the image: {e or type(e).__name__}") from None


def _warn_if_vqz(im: Image.Image) -> None:
    if im.format == FORMAT:
        warnings.warn("the image is a .vqz file: coding its decoded pixels again adds a second loss "
                      "(to keep it as it is, copy the file)", VqzWarning, stacklevel=3)


def model_point(model: zoo.CodecModel, anchor: Fraction | None = None) -> OperatingPoint:
    """The point `compress(model=...)` codes at: every map at scale 1, nearest codes, and for a
    lattice model the rate anchor `anchor` (default: its middle one, (anchors - 1) / 2). A
    VqzError where `codec.check_anchor` refuses the anchor (a model without a lattice map, outside
    its anchors, not a whole number of 1/256 steps)."""
    cfg = lattice_config(model.net)
    if cfg is None and anchor is None:
        return OperatingPoint(model.name)
    try:
        anchor = codec.check_anchor(model, Fraction(len(cfg.anchors) - 1, 2) if anchor is None else anchor)
    except ValueError as e:
        raise VqzError(str(e)) from None
    return OperatingPoint(model.name, anchor=anchor)


def compress(image: ImageLike, quality: int | None = None, *, model: str | None = None,
             anchor: Fraction | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS, strip: bool = False) -> bytes:
    """An image (a PIL image, or a path or binary file of any format Pillow reads) -> .vqz bytes.

    quality: a level from `levels()` (default: the default level); model: a shipped model by
    name at `model_point` (every map at scale 1; a lattice model at `anchor`, default its
    middle one) instead of a level. Images above max_pixels (None: no limit) are refused; so is
    an anchor without a model, or one the model does not have (a VqzError). The image's EXIF,
    ICC profile and XMP are kept (`vqzip.metadata`) unless strip."""
    from vqzip import metadata

    if model is not None and quality is not None:
        raise VqzError("give a model or a quality, not both")
    if anchor is not None and model is None:
        raise VqzError("a rate anchor goes with a model (a level has its own)")
    with open_image(image, max_pixels=max_pixels) as im:
        _warn_if_vqz(im)
        if model is not None:
            loaded = zoo.load(model)
            data = codec.compress(im, loaded, model_point(loaded, anchor), max_pixels=max_pixels)
        else:
            lv = zoo.level(quality)
            data = codec.compress(im, level_model(lv), lv.point, quality=lv.quality, max_pixels=max_pixels)
        name = str(image) if isinstance(image, (str, Path)) else "image"
        return data if strip else metadata.attach(data, metadata.read(im, name), name)


def decompress(data: bytes | str | Path, *, preview: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
               parsed=None, strip: bool = False) -> Image.Image:
    """.vqz bytes (or a path to a .vqz file) -> the image, at its original size and mode, with
    the metadata the file keeps in its info (`vqzip.metadata`: "exif", "icc_profile", "xmp";
    none with strip); files of images above max_pixels (None: no limit) are refused.

    preview: decode the model's preview map only, a quarter of the size each way (vqz-l3's) and
    several times faster (`codec.preview`). parsed: `container.unpack` of the bytes, where the
    caller has it already."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        check_input(Path(data))
        try:
            data = Path(data).read_bytes()
        except OSError as e:
            raise VqzError(f"{data}: {e.strerror or e}") from None
    from vqzip import metadata

    parsed = parsed or codec.container.unpack(bytes(data))
    found = {} if strip else metadata.of(parsed[0])  # checked before anything is decoded
    image = (codec.preview if preview else codec.decompress)(bytes(data), max_pixels=max_pixels, parsed=parsed).image
    image.info.update(found)
    return image


def levels() -> list[zoo.Level]:
    """The quality levels: each a number and an operating point of a shipped model."""
    return zoo.levels()


@dataclass(frozen=True)
class Choice:
    quality: int  # the level chosen, or the level above the point chosen between two levels
    point: OperatingPoint  # what the image was coded at: the level's, or a knob of it moved
    data: bytes
    bpp: float
    psnr: float | None  # measured when the target is a PSNR
    met: bool


TARGET_BPP_WITHIN = 0.05  # --target-bpp lands at most this fraction under the target
# The RDO multiplier's useful range: on vqz-base's validation images lambda = 0.03 costs about
# what downscaling does for the same rate, larger ones cost more (on one image at scale 1,
# lambda 0.3 took 24% off for -2.0 dB where scale 3/4 took 41% off for -1.8 dB).
LAMBDA_MAX = 0.05
# A level that skips fine blocks reaches down to about its two-map rate as its threshold grows:
# a million times its own skips nearly every block.
SKIP_SPAN = 1e6
# Bisection steps on a lattice level's rate anchor (each an encoding, fewer where one lands
# within TARGET_BPP_WITHIN): 6 / 2**11, the widest span's last step, is under the anchor's 1/256.
ANCHOR_SEARCH_STEPS = 11


def compress_to_target(image: ImageLike, *, bpp: float | None = None, psnr: float | None = None,
                       max_pixels: int | None = DEFAULT_MAX_PIXELS, strip: bool = False) -> Choice:
    """Compress to a target, found by really coding (and, for PSNR, decoding).

    bpp: the largest file of at most `bpp` bits per pixel, within TARGET_BPP_WITHIN under it:
    the highest level under the target; if that is too far under, the next level up at a lower
    rate anchor (a lattice level), else with its fine-skip threshold raised (if it skips fine
    blocks: up to SKIP_SPAN times), else its RDO multiplier raised (up to LAMBDA_MAX), and then,
    if still over, a scale between the two levels' (several encodings). psnr: the lowest level
    of at least `psnr` dB, and where that is a lattice level above another, its lowest rate
    anchor that still reaches `psnr` (`_lowest_anchor`). If nothing meets
    the target, the nearest level (lowest, or highest), with met=False. Images above max_pixels (None: no
    limit) are refused. The image's metadata is added to the file unless strip (`compress`), and a
    bpp target counts its bytes: the image is coded to what they leave of the target, and bpp and
    met are the whole file's."""
    from vqzip import metadata

    if (bpp is None) == (psnr is None):
        raise VqzError("give one target: bpp or psnr")
    with open_image(image, max_pixels=max_pixels) as im:
        _warn_if_vqz(im)
        name = str(image) if isinstance(image, (str, Path)) else "image"
        kept = {} if strip else metadata.read(im, name)
        n = im.width * im.height
        # the metadata's bits per pixel, known before coding: the image is coded to what they leave
        extra = 8 * codec.container.extensions_size([(codec.container.TAG_METADATA, metadata.pack(kept))]) / n if kept else 0.0
        choice = _to_target(im, bpp - extra if bpp is not None and bpp > extra else bpp, psnr, max_pixels)
        if not kept:
            return choice
        data = metadata.attach(choice.data, kept, name)
        whole = 8 * len(data) / n
        met = choice.met if bpp is None else (1 - TARGET_BPP_WITHIN) * bpp <= whole <= bpp
        return replace(choice, data=data, bpp=whole, met=met)


def level_model(lv: zoo.Level) -> zoo.CodecModel:
    """Level lv's model, loaded, with the level's point checked against it: a level a model
    cannot code (a manifest's lattice level without an anchor, say) is a ModelError naming it."""
    model = zoo.load(lv.point.model)
    try:
        codec.check_point(model, lv.point)
    except ValueError as e:
        raise ModelError(f"quality level {lv.quality} cannot be coded: {e}") from None
    return model


def _to_target(im: Image.Image, bpp: float | None, psnr: float | None, max_pixels: int | None) -> Choice:
    pixels = np.asarray(im.convert("RGB"))
    n = im.width * im.height
    ladder = levels()
    tried: dict[tuple, Choice] = {}

    def measure(lv: zoo.Level, **moved) -> Choice:
        """Level lv's coding, with the knobs of its point given in `moved` (lam, scale, skip) moved."""
        point = replace(lv.point, **moved)
        if (lv.quality, point) not in tried:
            data = codec.compress(im, level_model(lv), point, quality=lv.quality, max_pixels=max_pixels)
            dist = (metrics.psnr(pixels, np.asarray(decompress(data, max_pixels=max_pixels).convert("RGB")))
                    if psnr is not None else None)
            ok = 8 * len(data) / n <= bpp if bpp is not None else dist >= psnr
            tried[lv.quality, point] = Choice(lv.quality, point, data, 8 * len(data) / n, dist, ok)
        return tried[lv.quality, point]

    # rate and quality grow with the level: binary search for the boundary
    lo, hi = 0, len(ladder) - 1
    while lo < hi:
        mid = (lo + hi + (bpp is not None)) // 2
        if bpp is not None:
            lo, hi = (mid, hi) if measure(ladder[mid]).met else (lo, mid - 1)
        else:
            lo, hi = (lo, mid) if measure(ladder[mid]).met else (mid + 1, hi)
    best = measure(ladder[lo])
    if psnr is not None and best.met and lo > 0 and ladder[lo].point.anchor is not None:
        return _lowest_anchor(ladder[lo - 1], ladder[lo], measure, best)
    if bpp is None or not best.met or lo + 1 == len(ladder) or best.bpp >= (1 - TARGET_BPP_WITHIN) * bpp:
        return best
    return _between(ladder[lo], ladder[lo + 1], measure, bpp, best)


def _between(low: zoo.Level, high: zoo.Level, measure, bpp: float, best: Choice) -> Choice:
    """Level `low` is under `bpp` by more than TARGET_BPP_WITHIN and `high` over it: the largest
    file at most bpp from `high` at a lower rate anchor if it codes a lattice map (down to
    `low`'s where `low` is the same model, maps and scale, else to 0; in 1/256 steps), else with
    a larger fine-skip threshold if it skips fine blocks (up to SKIP_SPAN times its own: about
    its two-map rate), else with a larger RDO multiplier (up to LAMBDA_MAX), else from `low`'s
    settings at a larger scale, each found by bisection: a scale between the two levels' when
    they code the same maps, else up to twice `low`'s (where the next level codes more maps at a
    smaller scale, `low`'s maps on a larger image are the better file: on vqz-l3's levels 5 and 6,
    tiger at 9/8 with 2 maps gave 0.480 bpp at 28.71 dB, with 3 maps at 1/2 0.505 bpp at 26.69)."""
    def bisect(at, over: float, under: float, geometric: bool, steps: int = 8) -> bool:
        nonlocal best
        for _ in range(steps):
            x = (over * under) ** 0.5 if geometric else (over + under) / 2
            c = at(x)
            if c.met:
                under, best = x, max(best, c, key=lambda k: k.bpp)
                if c.bpp >= (1 - TARGET_BPP_WITHIN) * bpp:
                    return True
            else:
                over = x
        return False

    hi, lo = high.point, low.point
    if hi.anchor is not None:  # a lattice level: its rate anchor is the continuous knob (lam > 0 is refused)
        if bisect(lambda x: measure(high, anchor=_anchor_step(x)), float(hi.anchor), float(_anchor_floor(lo, hi)),
                  geometric=False, steps=ANCHOR_SEARCH_STEPS):
            return best
    elif hi.skip and measure(high, skip=hi.skip * SKIP_SPAN).met:
        best = max(best, measure(high, skip=hi.skip * SKIP_SPAN), key=lambda k: k.bpp)
        if best.bpp >= (1 - TARGET_BPP_WITHIN) * bpp or bisect(lambda x: measure(high, skip=x), hi.skip,
                                                                  hi.skip * SKIP_SPAN, geometric=True):
            return best
    if hi.anchor is None and hi.lam < LAMBDA_MAX and measure(high, lam=LAMBDA_MAX).met:
        best = max(best, measure(high, lam=LAMBDA_MAX), key=lambda k: k.bpp)
        if best.bpp >= (1 - TARGET_BPP_WITHIN) * bpp or bisect(lambda x: measure(high, lam=x), max(hi.lam, 1e-3),
                                                                  LAMBDA_MAX, geometric=True):
            return best
    same_maps = (lo.model, lo.maps) == (hi.model, hi.maps) and lo.scale < hi.scale
    top = hi.scale if same_maps else 2 * lo.scale
    bisect(lambda x: measure(low, scale=Fraction(x).limit_denominator(255)), float(top), float(lo.scale), geometric=False)
    return best


def _anchor_floor(low: OperatingPoint, high: OperatingPoint) -> Fraction:
    """How low a search may move lattice point `high`'s anchor: to `low`'s where `low` is the same
    model, maps and scale at an anchor, else to 0."""
    same = (low.model, low.maps, low.scale) == (high.model, high.maps, high.scale) and low.anchor is not None
    return low.anchor if same else Fraction(0)


def _anchor_step(x: float) -> Fraction:
    """The anchor nearest x that a file can record (a whole number of 1/ANCHOR_STEPS steps)."""
    return Fraction(round(x * ANCHOR_STEPS), ANCHOR_STEPS)


def _lowest_anchor(low: zoo.Level, high: zoo.Level, measure, best: Choice) -> Choice:
    """Lattice level `high` meets a PSNR target (`best`, its coding) and `low` does not: the
    smallest file from `high` at a lower anchor (down to `_anchor_floor`) that still meets it,
    by bisection (PSNR and rate grow with the anchor)."""
    met, missed = float(high.point.anchor), float(_anchor_floor(low.point, high.point))
    for _ in range(ANCHOR_SEARCH_STEPS):
        x = (met + missed) / 2
        c = measure(high, anchor=_anchor_step(x))
        if c.met:
            met, best = x, min(best, c, key=lambda k: k.bpp)
        else:
            missed = x
    return best


def compress_file(src: str | Path, dst: str | Path | None = None, *, quality: int | None = None,
                  force: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Path:
    """Compress an image file to dst (default: src with .vqz), written atomically; an existing
    dst is refused unless force, and src is never overwritten, nor an image above max_pixels
    (None: no limit) coded. Returns dst."""
    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_suffix(".vqz")
    check_input(src)
    check_output(dst, [src], force)
    write_atomic(dst, compress(src, quality, max_pixels=max_pixels), force)
    return dst


def decompress_file(src: str | Path, dst: str | Path | None = None, *, force: bool = False,
                    preview: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Path:
    """Decompress a .vqz file to dst (default: src with .png, or .preview.png for a preview; the
    suffix picks the format, one Pillow writes), written atomically, never over src, over an
    existing dst only with force, nor a file of an image above max_pixels (None: no limit)
    decoded. Returns dst."""
    src = Path(src)
    dst = Path(dst) if dst is not None else src.with_suffix(PREVIEW_SUFFIX if preview else ".png")
    output_format(dst)
    check_input(src)
    check_output(dst, [src], force)
    try:
        data = src.read_bytes()
    except OSError as e:
        raise VqzError(f"{src}: {e.strerror or e}") from None
    parsed = codec.container.unpack(data)
    check_writable(parsed[0].mode, dst, decoded_size(parsed[0], preview))
    image = decompress(data, preview=preview, max_pixels=max_pixels, parsed=parsed)
    write_atomic(dst, encode_image(image, dst.suffix, str(dst)), force)
    return dst


def decoded_size(header, preview: bool = False) -> tuple[int, int]:
    """(width, height) of the image a file's header decodes to, or of its preview (which needs
    the file's model: a ModelError if it is not installed)."""
    return codec.preview_size(header) if preview else (header.width, header.height)


__all__ = ["compress", "decompress", "open_image", "compress_file", "decompress_file", "compress_to_target", "levels",
           "model_point", "Choice", "output_format"]

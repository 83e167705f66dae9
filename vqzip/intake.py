"""What vqzip does with each kind of image it is given: the pixels it codes, the mode it gives
back, and an alpha plane kept losslessly beside the coded colour.

| given | coded as | given back | note |
|---|---|---|---|
| RGB, and CMYK, YCbCr, LAB, HSV, RGBX (converted by Pillow) | RGB | RGB | CMYK and the rest: a warning |
| L, 1 (bilevel) | gray, as RGB | L | |
| LA, La | gray + alpha | LA | alpha lossless |
| RGBA, RGBa | RGB + alpha | RGBA | alpha lossless |
| P (palette) | RGB, + alpha if it has transparency | RGB or RGBA | |
| I;16, I;16B, I;16L, I (16-bit gray) | top 8 bits, gray | L | a warning |
| 16-bit RGB, RGBA (PNG, TIFF, PPM) | 8 bits, as Pillow reads them | RGB, RGBA | a warning |
| F (32-bit float) | refused | | |
| EXIF orientation | turned upright first | | |
| several frames (GIF, APNG, TIFF pages) | the first frame | | a warning |

Warnings are `VqzWarning`s (the command line prints them as one line each); refusals raise
`VqzError`.

The alpha plane is coded losslessly by `code_alpha`, the smallest of three codings
(`container.ALPHA_CODINGS`): zlib of the plane; PNG's (Pillow's encoder, optimized: a filter
per row, then deflate), kept without the PNG file around it; and WebP lossless (libwebp through
Pillow, where the build has it). `decode_alpha` reads all three, and gives exactly width x
height bytes or raises FormatError.
"""
from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, features

from vqzip.container import ALPHA_CODINGS
from vqzip.errors import FormatError, VqzError, VqzWarning

_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


@dataclass(frozen=True)
class Prepared:
    rgb: np.ndarray  # (H, W, 3) uint8: what the VQ-VAE codes
    mode: str  # L, RGB, LA or RGBA: what the decoder gives back
    alpha: np.ndarray | None  # (H, W) uint8 for LA and RGBA


def source_bits(image: Image.Image) -> int:
    """Bits per channel of the file an image is read from, as far as its tiles say before it is
    loaded (8 for an image loaded or made in memory). Pillow has no 16-bit RGB mode: it reads
    16-bit RGB and RGBA files as RGB and RGBA, keeping the top 8 bits."""
    for tile in getattr(image, "tile", None) or ():
        codec, args = tile[0], tile[3]
        args = args if isinstance(args, tuple) else (args,)
        if args and isinstance(args[0], str) and ";16" in args[0]:
            return 16
        if codec == "ppm" and len(args) > 1 and isinstance(args[1], int) and args[1] > 255:  # maxval
            return args[1].bit_length()
    return 8


def warn_if_deep(image: Image.Image) -> None:
    """Warn (as for 16-bit gray) that a not yet loaded image of more than 8 bits per channel
    will be coded with 8: call it before the image is loaded (`api.open_image` does)."""
    bits = source_bits(image)
    if bits > 8 and image.mode not in _SIXTEEN_BIT:  # 16-bit gray: prepare() says it
        warnings.warn(f"{bits}-bit {image.mode} image reduced to 8 bits per channel", VqzWarning, stacklevel=3)


def prepare(image: Image.Image) -> Prepared:
    """An image of any mode Pillow reads -> the pixels to code, per the table above."""
    warn_if_deep(image)  # an image given before it is loaded
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        warnings.warn(f"image has {frames} frames; coding the first", VqzWarning, stacklevel=2)
        image.seek(0)
    image = ImageOps.exif_transpose(image) or image
    mode = image.mode
    if mode == "F":
        raise VqzError("32-bit floating-point images are not supported; convert to 8 or 16 bits first")
    if mode in _SIXTEEN_BIT:
        warnings.warn(f"{mode} image reduced to 8 bits per pixel", VqzWarning, stacklevel=2)
        gray = (np.asarray(image).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
        return Prepared(np.repeat(gray[..., None], 3, 2), "L", None)
    if mode == "P":
        mode = "RGBA" if image.has_transparency_data else "RGB"
        image = image.convert(mode)
    if mode in ("1", "L"):
        return Prepared(np.asarray(image.convert("RGB")), "L", None)
    if mode in ("LA", "La"):
        la = np.asarray(image.convert("LA"))
        return Prepared(np.repeat(la[..., :1], 3, 2), "LA", np.ascontiguousarray(la[..., 1]))
    if mode in ("RGBA", "RGBa", "PA"):
        rgba = np.asarray(image.convert("RGBA"))
        return Prepared(np.ascontiguousarray(rgba[..., :3]), "RGBA", np.ascontiguousarray(rgba[..., 3]))
    if mode != "RGB":
        warnings.warn(f"{mode} image converted to RGB", VqzWarning, stacklevel=2)
    return Prepared(np.asarray(image.convert("RGB")), "RGB", None)


def restore(rgb: np.ndarray, mode: str, alpha: np.ndarray | None) -> Image.Image:
    """Decoded (H, W, 3) pixels, the mode and the alpha plane -> the image given back."""
    image = Image.fromarray(rgb, "RGB")
    gray = mode in ("L", "LA")
    if gray:
        image = image.convert("L")
    if alpha is not None:
        image.putalpha(Image.fromarray(alpha, "L"))
    return image


ZLIB, PNG, WEBP = (ALPHA_CODINGS.index(c) for c in ("zlib", "png", "webp"))
TAG_BYTES = 4  # a coding other than zlib costs its extension: tag u8, length u16, value u8
WEBP_MAX_SIDE = 16383  # libwebp's limit
WEBP_METHOD = 4  # libwebp's effort, 0..6: 6 took 10-20x as long for the same size or larger


def code_alpha(plane: np.ndarray) -> tuple[int, bytes]:
    """An (H, W) uint8 alpha plane -> (coding, bytes): the smallest of `alpha_codings`, counting
    the extension that names a coding other than zlib."""
    return min(alpha_codings(plane).items(), key=lambda c: len(c[1]) + (c[0] != ZLIB) * TAG_BYTES)


def alpha_codings(plane: np.ndarray) -> dict[int, bytes]:
    """The plane in every coding this Pillow can write: zlib, PNG, and WebP lossless where the
    build has libwebp and the plane fits it (used only if it decodes back exactly)."""
    plane = np.ascontiguousarray(plane, dtype=np.uint8)
    image = Image.fromarray(plane, "L")
    found = {ZLIB: zlib.compress(plane.tobytes(), 9), PNG: _png_rows(image)}
    if features.check("webp") and max(plane.shape) <= WEBP_MAX_SIDE:
        buf = io.BytesIO()
        image.save(buf, "WEBP", lossless=True, quality=100, method=WEBP_METHOD)
        try:
            if np.array_equal(decode_alpha(WEBP, buf.getvalue(), plane.shape[1], plane.shape[0]), plane):
                found[WEBP] = buf.getvalue()
        except FormatError:
            pass
    return found


def _png_rows(image: Image.Image) -> bytes:
    """The zlib stream of a PNG of `image` (its IDAT chunks' data, joined): rows, each a filter
    byte and the filtered pixels."""
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=True)
    png, pos, rows = buf.getvalue(), 8, []
    while pos < len(png):
        n, kind = struct.unpack_from(">I4s", png, pos)
        if kind == b"IDAT":
            rows.append(png[pos + 8 : pos + 8 + n])
        pos += 12 + n
    return b"".join(rows)


def decode_alpha(coding: int, data: bytes, width: int, height: int) -> np.ndarray:
    """An alpha plane's bytes in `coding` -> (height, width) uint8; FormatError if they are
    damaged or do not hold exactly width x height pixels."""
    name = ALPHA_CODINGS[coding]
    if coding in (ZLIB, PNG):  # one zlib stream of exactly the plane (PNG: a filter byte a row)
        n = (width + (coding == PNG)) * height
        try:
            inflate = zlib.decompressobj()
            raw = inflate.decompress(data, n + 1)
        except zlib.error as e:
            raise FormatError(f"alpha plane ({name}) is damaged: {e}") from None
        if len(raw) != n or not inflate.eof:
            raise FormatError(f"alpha plane ({name}) holds {len(raw)}{'' if inflate.eof else '+'} bytes, not {n}")
        if inflate.unused_data:
            raise FormatError(f"alpha plane ({name}) has {len(inflate.unused_data)} bytes after its end")
        if coding == ZLIB:
            return np.frombuffer(raw, np.uint8).reshape(height, width)
        try:  # Pillow's PNG decoder undoes the filters
            return np.asarray(Image.frombytes("L", (width, height), data, "zip", "L"))
        except ValueError as e:  # an unknown filter type
            raise FormatError(f"alpha plane ({name}) is damaged: {e}") from None
    if not features.check("webp"):
        raise FormatError("alpha plane is WebP lossless, which this Pillow cannot decode (built without libwebp)")
    if len(data) < 12 or data[:4] != b"RIFF" or 8 + int.from_bytes(data[4:8], "little") != len(data):
        raise FormatError(f"alpha plane ({name}) is not one whole WebP file")
    try:
        with Image.open(io.BytesIO(data), formats=["WEBP"]) as im:
            size = im.size
            plane = np.asarray(im.convert("RGB").getchannel("G")) if size == (width, height) else None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise FormatError(f"alpha plane ({name}) is damaged: {e}") from None
    if plane is None:
        raise FormatError(f"alpha plane ({name}) is {size[0]}x{size[1]}, not {width}x{height}")
    return plane

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
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from vqzip.errors import VqzError, VqzWarning

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

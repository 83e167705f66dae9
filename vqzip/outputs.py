"""What a decoded image is written as: the format a file's suffix names, whether Pillow can write
an image of that mode and size in it, and the bytes (with the metadata the format holds, a lossy
format at a quality). Pillow only: the command line checks outputs with it before it imports the
codec.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image

from vqzip.container import FORMAT
from vqzip.errors import VqzError, VqzWarning

PREVIEW_SUFFIX = ".preview.png"  # a preview's default name, so it is never taken for the full image


def output_format(path: str | Path) -> str:
    """The format Pillow writes for a file's suffix ("x.webp" -> "WEBP"); a VqzError naming the
    file if no format Pillow can write has that suffix (an image written under a suffix that
    says otherwise would mislead every tool that goes by the name)."""
    return _format(Path(path).suffix, str(path))


def _format(suffix: str, name: str) -> str:
    Image.preinit()  # the common formats; every plugin (Image.init, ~30 ms) only for another suffix
    fmt = Image.EXTENSION.get(suffix.lower()) or Image.registered_extensions().get(suffix.lower())
    if fmt is not None and fmt in Image.SAVE:
        return fmt
    if fmt is not None:
        raise VqzError(f"{name}: Pillow reads {fmt} but cannot write it; choose another suffix, such as .png")
    what = f"the suffix {suffix} names no image format Pillow writes" if suffix else "no suffix to choose a format by"
    raise VqzError(f"{name}: {what}; use .png, .webp, .jpg, .tif, ...")


# The largest side each format's header can state (Pillow's writers fail past it, some with an
# OverflowError or a struct.error and only after the whole decode): u16 fields, libwebp's 14
# bits, libjpeg's JPEG_MAX_DIMENSION.
MAX_SIDE = {"GIF": 0xFFFF, "TGA": 0xFFFF, "SGI": 0xFFFF, "PCX": 0xFFFF, "WEBP": 16383, "JPEG": 65500}


def check_writable(mode: str, path: str | Path, size: tuple[int, int] = (8, 8)) -> None:
    """A VqzError if Pillow cannot write an image of `mode` and `size` (width, height) in the
    format of path's suffix (RGBA as JPEG, a GIF wider than 65,535 pixels): the size against
    MAX_SIDE, the mode by writing an 8x8 image, so before anything is decoded."""
    fmt = output_format(path)
    _check_side(fmt, size, str(path))
    if fmt != FORMAT:  # vqzip codes every mode it decodes to
        encode_image(Image.new(mode, (8, 8)), Path(path).suffix, str(path))


def _check_side(fmt: str, size: tuple[int, int], name: str) -> None:
    if max(size) > MAX_SIDE.get(fmt, max(size)):
        raise VqzError(f"{name}: {fmt} holds images of at most {MAX_SIDE[fmt]:,} pixels a side, not "
                       f"{size[0]}x{size[1]}; choose another suffix, such as .png")


LOSSY = ("JPEG", "WEBP", "AVIF")  # formats written at `quality` (Pillow's own defaults: 75 for JPEG, 80 for WebP)
OUTPUT_QUALITY = 95


def encode_image(image: Image.Image, suffix: str, name: str = "image", quality: int = OUTPUT_QUALITY) -> bytes:
    """An image in the format a file suffix names (see `output_format`), with the metadata in its
    info where the format holds it (`vqzip.metadata.save_params`), a lossy format (LOSSY) at
    `quality` (0..100); a VqzError naming the file (`name`) if Pillow cannot write it so.
    Writing .vqz codes the image again, with a warning."""
    from vqzip import metadata

    fmt = _format(suffix, name)
    if fmt == FORMAT:
        warnings.warn(f"{name}: writing .vqz codes the decoded image again, at the default level: a second loss "
                      "(to keep the file as it is, copy it)", VqzWarning, stacklevel=2)
    _check_side(fmt, image.size, name)
    params = metadata.save_params(fmt, image.info) | ({"quality": quality} if fmt in LOSSY else {})
    buf = io.BytesIO()
    try:
        image.save(buf, format=fmt, **params)
    except VqzError:  # writing .vqz
        raise
    except Exception as e:  # a writer's failure of any kind (OverflowError, struct.error, ...) is one line
        raise VqzError(f"{name}: {fmt} cannot hold this {image.mode} image ({type(e).__name__}: {e})") from None
    return buf.getvalue()

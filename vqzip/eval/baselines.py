"""Classical codecs to measure vqzip against, through Pillow, each swept over its quality knob.

A baseline is a name, the settings to sweep (chosen to span about 0.1 to 1.5 bpp on photos),
an encode function image -> bytes and the library doing the work, with its version (for a
figure's legend and caption); decoding is Pillow's `Image.open` of those bytes.
`CODECS` is the registry, in the style of Pillow's format plugins; JPEG XL joins it when the
optional `pillow-jxl-plugin` is installed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import metadata
from typing import Callable

from PIL import Image, features


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    settings: tuple
    save: Callable[[Image.Image, object, io.BytesIO], None]
    available: Callable[[], bool]
    library: Callable[[], str]  # e.g. "libwebp 1.6.0": what codes, and its version
    label: str = ""  # the codec's name in a figure [default: name]
    setting_name: str = "quality"  # what the settings are

    def encode(self, image: Image.Image, setting) -> bytes:
        buf = io.BytesIO()
        # a copy per call: Pillow 13 keeps a failed save's options on the image object
        self.save(image.copy(), setting, buf)
        return buf.getvalue()

    @staticmethod
    def decode(data: bytes) -> Image.Image:
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")


def _jpeg_library() -> str:
    if features.check_feature("libjpeg_turbo"):
        return f"libjpeg-turbo {features.version_feature('libjpeg_turbo')}"
    return f"libjpeg {features.version('jpg')}"


def _avif_library() -> str:
    try:  # Pillow's private module names the AV1 encoder and decoder behind libavif
        from PIL import _avif

        return f"libavif {features.version('avif')} ({_avif.codec_versions()})"
    except (ImportError, AttributeError):
        return f"libavif {features.version('avif')}"


def _jxl_library() -> str:
    try:
        return f"pillow-jxl-plugin {metadata.version('pillow-jxl-plugin')}"
    except metadata.PackageNotFoundError:
        return "pillow-jxl-plugin"


def _jxl_available() -> bool:
    import importlib.util

    if importlib.util.find_spec("pillow_jxl") is None:
        return False
    importlib.import_module("pillow_jxl")  # registers the JXL format with Pillow
    return True


CODECS: dict[str, Baseline] = {b.name: b for b in (
    Baseline("jpeg", "JPEG (libjpeg-turbo via Pillow), 4:2:0, quality sweep",
             (1, 3, 5, 8, 12, 18, 25, 35, 50, 65, 80),
             lambda im, q, f: im.save(f, "JPEG", quality=q), lambda: features.check("jpg"), _jpeg_library, "JPEG"),
    Baseline("webp", "WebP (libwebp via Pillow), method 6, quality sweep",
             (1, 5, 12, 25, 40, 55, 70, 82, 90),
             lambda im, q, f: im.save(f, "WEBP", quality=q, method=6), lambda: features.check("webp"),
             lambda: f"libwebp {features.version('webp')}", "WebP"),
    Baseline("avif", "AVIF (libavif/aom via Pillow), speed 6, quality sweep",
             (5, 15, 25, 35, 45, 55, 65, 75),
             lambda im, q, f: im.save(f, "AVIF", quality=q, speed=6), lambda: features.check("avif"), _avif_library,
             "AVIF"),
    Baseline("jp2", "JPEG 2000 (OpenJPEG via Pillow), 9/7 wavelet with colour transform, target rates",
             (0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.4),  # bpp; Pillow takes compression ratios
             lambda im, bpp, f: im.save(f, "JPEG2000", irreversible=True, mct=1, quality_mode="rates",
                                        quality_layers=[24 / bpp]), lambda: features.check("jpg_2000"),
             lambda: f"OpenJPEG {features.version('jpg_2000')}", "JPEG 2000", "target bpp"),
    Baseline("jxl", "JPEG XL (libjxl via pillow-jxl-plugin), quality sweep",
             (1, 5, 12, 20, 30, 40, 50, 60, 70, 80),
             lambda im, q, f: im.save(f, "JXL", quality=q), _jxl_available, _jxl_library, "JPEG XL"),
)}

"""Classical codecs to measure vqzip against, through Pillow, each swept over its quality knob.

A baseline is a name, the settings to sweep (chosen to span about 0.1 to 1.5 bpp on photos)
and an encode function image -> bytes; decoding is Pillow's `Image.open` of those bytes.
`CODECS` is the registry, in the style of Pillow's format plugins; JPEG XL joins it when the
optional `pillow-jxl-plugin` is installed.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

from PIL import Image, features


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    settings: tuple
    save: Callable[[Image.Image, object, io.BytesIO], None]
    available: Callable[[], bool]

    def encode(self, image: Image.Image, setting) -> bytes:
        buf = io.BytesIO()
        # a copy per call: Pillow 13 keeps a failed save's options on the image object
        self.save(image.copy(), setting, buf)
        return buf.getvalue()

    @staticmethod
    def decode(data: bytes) -> Image.Image:
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")


def _jxl_available() -> bool:
    import importlib.util

    if importlib.util.find_spec("pillow_jxl") is None:
        return False
    importlib.import_module("pillow_jxl")  # registers the JXL format with Pillow
    return True


CODECS: dict[str, Baseline] = {b.name: b for b in (
    Baseline("jpeg", "JPEG (libjpeg-turbo via Pillow), 4:2:0, quality sweep",
             (1, 3, 5, 8, 12, 18, 25, 35, 50, 65, 80),
             lambda im, q, f: im.save(f, "JPEG", quality=q), lambda: features.check("jpg")),
    Baseline("webp", "WebP (libwebp via Pillow), method 6, quality sweep",
             (1, 5, 12, 25, 40, 55, 70, 82, 90),
             lambda im, q, f: im.save(f, "WEBP", quality=q, method=6), lambda: features.check("webp")),
    Baseline("avif", "AVIF (libavif/aom via Pillow), speed 6, quality sweep",
             (5, 15, 25, 35, 45, 55, 65, 75),
             lambda im, q, f: im.save(f, "AVIF", quality=q, speed=6), lambda: features.check("avif")),
    Baseline("jp2", "JPEG 2000 (OpenJPEG via Pillow), 9/7 wavelet with colour transform, target rates",
             (0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.4),  # bpp; Pillow takes compression ratios
             lambda im, bpp, f: im.save(f, "JPEG2000", irreversible=True, mct=1, quality_mode="rates",
                                        quality_layers=[24 / bpp]), lambda: features.check("jpg_2000")),
    Baseline("jxl", "JPEG XL (libjxl via pillow-jxl-plugin), quality sweep",
             (1, 5, 12, 20, 30, 40, 50, 60, 70, 80),
             lambda im, q, f: im.save(f, "JXL", quality=q), _jxl_available),
)}

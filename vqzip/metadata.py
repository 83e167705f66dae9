"""A photo's metadata (EXIF, ICC profile, XMP), kept in a .vqz and given back on decoding.

    compress:   the image's EXIF (its orientation set to 1: the pixels are coded upright),
                ICC profile and XMP ─zlib─► extension TAG (container.TAG_METADATA)
    decompress: the extension ─► image.info ─► the output file, in formats that hold them

The extension is informative (a tag from container.FIRST_SKIPPABLE_TAG on): it changes no pixel,
and a reader that does not know it skips it. It is sent only where it fits the header's 64 KiB
of extensions beside the corrections of the image (a warning says when it does not); a file of
an image without metadata has no such extension, so its bytes are those it always had.
"""
from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import replace

from PIL import Image

from vqzip import container
from vqzip.errors import FormatError, VqzWarning

KINDS = ("exif", "icc_profile", "xmp")  # by code 0..2, as Pillow's image.info names them
MAX_RAW = 16 << 20  # bytes of metadata a file may unpack to: a zlib bomb stops here
ORIENTATION = 0x0112
_ITEM = struct.Struct("<BI")  # kind code, bytes
# The kinds each format holds, as Pillow writes them (PNG's XMP is an iTXt chunk, TIFF's tag
# 700, written only without EXIF: `save_params`).
SAVES = {"PNG": KINDS, "JPEG": KINDS, "WEBP": KINDS, "AVIF": KINDS, "TIFF": KINDS}


def read(image: Image.Image, name: str = "image") -> dict[str, bytes]:
    """The metadata of an image as vqzip codes it: its EXIF with the orientation set to 1 (the
    coder applies it to the pixels, `vqzip.intake`), its ICC profile (a warning says one that is
    not sRGB is kept: the pixels are coded in its colour space, as they are) and its XMP."""
    found = {}
    raw = image.info.get("exif")
    if raw:
        exif = Image.Exif()
        try:
            exif.load(raw)
            if exif.get(ORIENTATION, 1) != 1:
                exif[ORIENTATION] = 1
                raw = exif.tobytes()
            found["exif"] = bytes(raw)
        except Exception as e:  # Pillow's parser raises SyntaxError, struct.error, ... on damaged EXIF
            warnings.warn(f"{name}: its EXIF is damaged ({e or type(e).__name__}) and is left out", VqzWarning, stacklevel=2)
    icc = image.info.get("icc_profile")
    if icc:
        found["icc_profile"] = bytes(icc)
        described = describe(icc)
        if "srgb" not in described.lower():
            warnings.warn(f"{name}: ICC profile {described!r} (not sRGB) kept: its colours are coded as they are, "
                          "and the decoded image carries the profile", VqzWarning, stacklevel=2)
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if xmp:
        found["xmp"] = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    return found


def describe(icc: bytes) -> str:
    """An ICC profile's description, or "unreadable"."""
    try:
        from PIL import ImageCms

        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
    except (ImportError, OSError, ValueError, TypeError):
        return "unreadable"


def pack(found: dict[str, bytes]) -> bytes:
    """The extension's value: zlib of (kind code u8, length u32, bytes) per kind found."""
    return zlib.compress(b"".join(_ITEM.pack(KINDS.index(k), len(v)) + v for k, v in found.items()), 9)


def unpack(value: bytes) -> dict[str, bytes]:
    """The extension's value -> {kind: bytes}; a FormatError if it is not one (decompression is
    bounded by MAX_RAW)."""
    d = zlib.decompressobj()
    try:
        raw = d.decompress(value, MAX_RAW + 1)
    except zlib.error:
        raw = None
    if raw is None or len(raw) > MAX_RAW or not d.eof or d.unused_data:
        raise FormatError("invalid metadata extension (not one zlib stream of at most 16 MiB)")
    found, pos = {}, 0
    while pos < len(raw):
        if pos + _ITEM.size > len(raw):
            raise FormatError("invalid metadata extension (an item cut short)")
        code, n = _ITEM.unpack_from(raw, pos)
        pos += _ITEM.size
        if code >= len(KINDS) or KINDS[code] in found or pos + n > len(raw):
            raise FormatError(f"invalid metadata extension (item of kind {code}, {n} bytes)")
        found[KINDS[code]] = raw[pos : pos + n]
        pos += n
    return found


def attach(data: bytes, found: dict[str, bytes], name: str = "image") -> bytes:
    """.vqz bytes with the metadata `found` added as the extension (none: data as it is); where it
    does not fit the header's extensions, data as it is and a warning."""
    if not found:
        return data
    header, payloads, alpha = container.unpack(data)
    value = pack(found)
    taken = container.extensions_size(header.extensions + ((container.TAG_ALPHA_CODING, b"\0"),) * bool(header.alpha_coding))
    if taken + container.extensions_size([(container.TAG_METADATA, value)]) > container.MAX_EXTENSIONS:
        warnings.warn(f"{name}: its metadata ({', '.join(found)}: {len(value):,} bytes compressed) does not fit the "
                      f".vqz header's {container.MAX_EXTENSIONS:,} bytes of extensions; dropped", VqzWarning, stacklevel=2)
        return data
    header = replace(header, extensions=header.extensions + ((container.TAG_METADATA, value),))
    return container.pack(header, payloads, alpha)


def of(header: container.Header) -> dict[str, bytes]:
    """A file's metadata ({} without the extension)."""
    value = dict(header.extensions).get(container.TAG_METADATA)
    return {} if value is None else unpack(value)


def save_params(fmt: str, info: dict) -> dict:
    """Pillow save() parameters that write the metadata in `info` (an image's, as `of` gives it)
    in format `fmt`, where it holds them; {} elsewhere."""
    kept = {k: info[k] for k in SAVES.get(fmt, ()) if info.get(k)}
    if "xmp" in kept and fmt == "PNG":
        from PIL import PngImagePlugin

        png = PngImagePlugin.PngInfo()
        png.add_itxt("XML:com.adobe.xmp", kept.pop("xmp").decode("utf-8", "replace"))
        kept["pnginfo"] = png
    if "xmp" in kept and fmt == "TIFF":
        # Pillow's TIFF writer takes tiffinfo (XMP: tag 700) in place of exif, and loses EXIF's
        # sub-directories (the camera's settings, GPS) there: EXIF first, XMP only without it
        xmp = kept.pop("xmp")
        if "exif" not in kept:
            kept["tiffinfo"] = {700: xmp}
    return kept

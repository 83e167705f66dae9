"""The .vqz container, version 4 (docs/format.md): a header, one coded stream per code map, a CRC.

Pure bytes: no torch, no model, and numpy only for a code map's CRC, imported there (`import
vqzip` imports this module to register the Pillow plugin). `pack` and `unpack` are inverses;
`unpack` checks the magic, the version, the checksum and every field before it returns, and
raises FormatError naming the first problem it finds. Version 3 files (vqzip 0.2) are read too: they lack the operating
point and the extensions, which read as their defaults.

The alpha plane of LA and RGBA images is coded by one of ALPHA_CODINGS (`vqzip.intake` codes
it); which one is recorded by the extension TAG_ALPHA_CODING, absent for zlib, the only coding
before it existed.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction

from vqzip.errors import FormatError

MAGIC = b"\x89VQZ"
FORMAT = "VQZ"  # Pillow's name for the format (`vqzip.pillow_plugin` registers it)
VERSION = 4
READS = (3, 4)
MODES = ("L", "RGB", "LA", "RGBA")  # colour mode codes 0..3; LA and RGBA carry an alpha plane
HASH_BYTES = 8
MAX_NAME = 64
MAX_MAP_SIDE = 0xFFFF  # code map rows and columns are u16
# The decompression-bomb guard's default, as Pillow's Image.MAX_IMAGE_PIXELS: images (given,
# coded, or named by a file's header) above `max_pixels` (a parameter of `vqzip.codec` and
# `vqzip.api`) are refused before anything is allocated. Decoding needs about 70 bytes per
# coded pixel.
DEFAULT_MAX_PIXELS = 40_000_000
# How an alpha plane is coded, by its code: zlib of the plane (every file before the tag existed),
# PNG's filtered-rows zlib stream (a PNG's IDAT data), a WebP lossless file.
ALPHA_CODINGS = ("zlib", "png", "webp")
TAG_ALPHA_CODING = 1  # extension: one byte, the alpha plane's coding; absent for zlib
TAG_COLOUR_OFFSETS = 2  # extension: the decoded image's colour offsets (`vqzip.colour_offsets`); absent: none
TAG_FLAT_BLOCKS = 3  # extension: blocks painted one colour, last (`vqzip.flat_blocks`); absent: none
TAG_CHROMA_GAIN = 4  # extension: the decoded image's saturation gain, after the offsets (`vqzip.chroma_gain`); absent: 1
TAG_FINE_SKIP = 5  # extension: the model's skippable map is coded in blocks, flags first in its stream (`vqzip.fine_skip`); absent: none
TAG_LATTICE_ANCHOR = 6  # extension: u16, the rate anchor in steps of 1/ANCHOR_STEPS a lattice map is coded at; absent: none coded
ANCHOR_STEPS = 256  # as `vqzip.models.configs.ANCHOR_STEPS` (the container imports no model)
TAG_METADATA = 128  # extension, informative: the image's EXIF, ICC profile and XMP, zlib (`vqzip.metadata`); absent: none
KNOWN_TAGS = (TAG_ALPHA_CODING, TAG_COLOUR_OFFSETS, TAG_FLAT_BLOCKS, TAG_CHROMA_GAIN, TAG_FINE_SKIP, TAG_LATTICE_ANCHOR)
MAX_EXTENSIONS = 0xFFFF  # bytes of all extensions together, tags and lengths included (a u16)
# Tags below this change what a file decodes to: a reader that does not know one refuses the
# file rather than decode it wrongly. Tags from it on are informative and may be skipped.
FIRST_SKIPPABLE_TAG = 128

_FIXED = struct.Struct("<4sBBIIBB")  # magic, version, mode, width, height, scale numerator, denominator
_POINT = struct.Struct("<Bf")  # version 4: quality level (0: none), RDO multiplier lambda
_MAP = struct.Struct("<HHII")  # rows, cols, payload bytes, CRC-32 of the decoded code map
_ALPHA = struct.Struct("<I")  # alpha plane bytes
_EXT = struct.Struct("<H")  # version 4: bytes of extensions
_TAG = struct.Struct("<BH")  # an extension: tag, value bytes
_CRC = struct.Struct("<I")
_ANCHOR = struct.Struct("<H")


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    mode: str  # one of MODES: the mode the decoder gives back
    model_name: str
    model_hash: bytes  # first HASH_BYTES bytes of the sha256 of the model's weights file
    maps: tuple[tuple[int, int], ...]  # (rows, cols) of each code map, in coding order
    scale: Fraction = Fraction(1)  # the image was coded resampled to `coded_size`
    crcs: tuple[int, ...] = ()  # per map, CRC-32 of its code map (`codes_crc`), checked after decoding it
    quality: int = 0  # the quality level the encoder was asked for (0: none); informative
    lam: float = 0.0  # the RDO multiplier the codes were chosen with (0: nearest code); informative
    extensions: tuple[tuple[int, bytes], ...] = ()  # (tag, value): later fields; unknown ones refused below FIRST_SKIPPABLE_TAG
    alpha_coding: int = 0  # index in ALPHA_CODINGS; stored as the extension TAG_ALPHA_CODING unless 0

    @property
    def has_alpha(self) -> bool:
        return self.mode in ("LA", "RGBA")

    @property
    def coded_size(self) -> tuple[int, int]:
        return coded_size(self.width, self.height, self.scale)


def coded_size(width: int, height: int, scale: Fraction) -> tuple[int, int]:
    """(width, height) scaled and rounded half up, at least 1: integer arithmetic, so encoder and
    decoder agree."""
    return tuple(max(1, (2 * n * scale.numerator + scale.denominator) // (2 * scale.denominator)) for n in (width, height))


def preview_size(width: int, height: int, down: int) -> tuple[int, int]:
    """The size of a preview of a width x height image, made `down` times smaller each way by
    the model's preview map (`MapSpec.preview`), rounded up."""
    return -(-width // down), -(-height // down)


def codes_crc(codes) -> int:
    """CRC-32 of a code map (an array of codes < 2**16) as little-endian u16 in row order."""
    import numpy as np

    return zlib.crc32(np.ascontiguousarray(codes, dtype="<u2").tobytes())


def pack_anchor(anchor: Fraction) -> bytes:
    """TAG_LATTICE_ANCHOR's value: the anchor in steps of 1/ANCHOR_STEPS, a little-endian u16;
    ValueError for one that is not a whole number of steps, 0 to 65535 of them (anchors 0 to 65535/256)."""
    steps = anchor * ANCHOR_STEPS
    if steps.denominator != 1 or not 0 <= steps <= 0xFFFF:
        raise ValueError(f"anchor {anchor} is not a whole number of 1/{ANCHOR_STEPS} steps, "
                         f"0 to {0xFFFF} of them (at most {Fraction(0xFFFF, ANCHOR_STEPS)})")
    return _ANCHOR.pack(int(steps))


def anchor_of(header: Header) -> Fraction | None:
    """The lattice anchor a file's TAG_LATTICE_ANCHOR records (None: absent); a FormatError for a
    value that is not a u16."""
    value = dict(header.extensions).get(TAG_LATTICE_ANCHOR)
    if value is None:
        return None
    if len(value) != _ANCHOR.size:
        raise FormatError(f"invalid lattice anchor of {len(value)} bytes (2 expected)")
    return Fraction(_ANCHOR.unpack(value)[0], ANCHOR_STEPS)


def extensions_size(extensions) -> int:
    """Bytes that (tag, value) extensions take in a header: at most MAX_EXTENSIONS."""
    return sum(_TAG.size + len(v) for _, v in extensions)


def pack(header: Header, payloads: list[bytes], alpha: bytes = b"") -> bytes:
    """Header, one payload per code map and the compressed alpha plane (LA and RGBA only) -> the
    bytes of a .vqz file."""
    name = header.model_name.encode("ascii")
    if not 1 <= len(name) <= MAX_NAME:
        raise ValueError(f"model name must be 1..{MAX_NAME} ASCII characters")
    if len(header.model_hash) != HASH_BYTES:
        raise ValueError(f"model hash must be {HASH_BYTES} bytes")
    if not len(payloads) == len(header.crcs) == len(header.maps):
        raise ValueError("one payload and one CRC per code map")
    if not (1 <= header.scale.numerator <= 255 and header.scale.denominator <= 255):
        raise ValueError(f"scale {header.scale} is not a ratio of integers 1..255")
    if bool(alpha) != header.has_alpha:
        raise ValueError("an alpha plane goes with modes LA and RGBA, and only with them")
    if not 0 <= header.quality <= 255:
        raise ValueError(f"quality {header.quality} is not 0..255")
    if not 0 <= header.alpha_coding < len(ALPHA_CODINGS) or (header.alpha_coding and not header.has_alpha):
        raise ValueError(f"alpha coding {header.alpha_coding} does not fit mode {header.mode}")
    if any(tag == TAG_ALPHA_CODING for tag, _ in header.extensions):
        raise ValueError("the alpha coding is the header's alpha_coding field, not an extension")
    known = ((TAG_ALPHA_CODING, bytes([header.alpha_coding])),) if header.alpha_coding else ()
    tags = [tag for tag, _ in known + header.extensions]
    if len(set(tags)) != len(tags):
        raise ValueError("an extension tag appears twice")
    if extensions_size(known + header.extensions) > MAX_EXTENSIONS:
        raise ValueError(f"extensions of more than {MAX_EXTENSIONS} bytes")
    ext = b"".join(_TAG.pack(tag, len(v)) + v for tag, v in known + header.extensions)
    parts = [_FIXED.pack(MAGIC, VERSION, MODES.index(header.mode), header.width, header.height,
                         header.scale.numerator, header.scale.denominator), _POINT.pack(header.quality, header.lam),
             bytes([len(name)]), name, header.model_hash, bytes([len(header.maps)])]
    parts += [_MAP.pack(rows, cols, len(p), crc) for (rows, cols), p, crc in zip(header.maps, payloads, header.crcs)]
    parts += [_ALPHA.pack(len(alpha)), _EXT.pack(len(ext)), ext]
    body = b"".join(parts + payloads + [alpha])
    return body + _CRC.pack(zlib.crc32(body))


def unpack(data: bytes) -> tuple[Header, list[bytes], bytes]:
    """Bytes of a .vqz file -> (header, payloads, alpha plane). Raises FormatError on anything
    invalid."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise FormatError("not a vqzip file (bad magic bytes)")
    if len(data) < _FIXED.size + _CRC.size:
        raise FormatError(f"file truncated: {len(data)} bytes is shorter than any valid header")
    version = data[len(MAGIC)]
    if version not in READS:
        raise FormatError(f"unsupported format version {version} (this vqzip reads versions "
                          f"{', '.join(map(str, READS))})")
    _, _, mode, width, height, num, den = _FIXED.unpack_from(data)
    body, (crc,) = data[: -_CRC.size], _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(body) != crc:
        raise FormatError("checksum mismatch: the file is damaged or truncated")
    if mode >= len(MODES):
        raise FormatError(f"unknown colour mode code {mode}")
    if width == 0 or height == 0:
        raise FormatError(f"invalid image size {width}x{height}")
    if num == 0 or den == 0:
        raise FormatError(f"invalid scale {num}/{den}")
    r = _Reader(body, _FIXED.size)
    quality, lam = _POINT.unpack(r.take(_POINT.size)) if version >= 4 else (0, 0.0)
    if not lam >= 0:  # also refuses NaN
        raise FormatError(f"invalid RDO multiplier {lam}")
    name_len = r.take(1)[0]
    if not 1 <= name_len <= MAX_NAME:
        raise FormatError(f"invalid model name length {name_len}")
    try:
        name = r.take(name_len).decode("ascii")
    except UnicodeDecodeError:
        raise FormatError("model name is not ASCII") from None
    model_hash = r.take(HASH_BYTES)
    maps, lengths, crcs = [], [], []
    for _ in range(r.take(1)[0]):
        rows, cols, n, crc_codes = _MAP.unpack(r.take(_MAP.size))
        maps.append((rows, cols))
        lengths.append(n)
        crcs.append(crc_codes)
    (alpha_len,) = _ALPHA.unpack(r.take(_ALPHA.size))
    if (alpha_len > 0) != (MODES[mode] in ("LA", "RGBA")):
        raise FormatError(f"alpha plane of {alpha_len} bytes does not fit colour mode {MODES[mode]}")
    extensions, alpha_coding = [], 0
    if version >= 4:
        (ext_len,) = _EXT.unpack(r.take(_EXT.size))
        ext, seen = _Reader(r.take(ext_len), 0), set()
        while ext.pos < len(ext.data):
            tag, n = _TAG.unpack(ext.take(_TAG.size))
            value = ext.take(n)
            if tag in seen:
                raise FormatError(f"extension {tag} appears twice")
            seen.add(tag)
            if tag < FIRST_SKIPPABLE_TAG and tag not in KNOWN_TAGS:
                raise FormatError(f"the file needs extension {tag}, which this vqzip does not know: "
                                  "it was made by a newer vqzip")
            if tag != TAG_ALPHA_CODING:
                extensions.append((tag, value))
            elif n != 1 or value[0] >= len(ALPHA_CODINGS) or alpha_len == 0:
                raise FormatError(f"invalid alpha coding {value.hex() or '(empty)'}"
                                  + ("" if alpha_len else " in a file without an alpha plane"))
            else:
                alpha_coding = value[0]
    if r.pos + sum(lengths) + alpha_len != len(body):
        raise FormatError(f"payload lengths ({sum(lengths) + alpha_len} bytes) do not match the file "
                          f"({len(body) - r.pos} bytes)")
    payloads = [r.take(n) for n in lengths]
    header = Header(width, height, MODES[mode], name, model_hash, tuple(maps), Fraction(num, den), tuple(crcs),
                    quality, lam, tuple(extensions), alpha_coding)
    return header, payloads, r.take(alpha_len)


class _Reader:
    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise FormatError("file truncated inside the header")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

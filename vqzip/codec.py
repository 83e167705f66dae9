"""The codec: image -> VQ-VAE codes -> priors -> range coder -> container, and back.

    compress:   RGB pixels ─pad─► VQVAE.encode ─► top, bottom codes
                top ─top prior─► probabilities ─► range coder ─► stream 0
                bottom ─bottom prior | top─► probabilities ─► range coder ─► stream 1
                header + streams ─► .vqz bytes
    decompress: stream 0 ─range decoder + top prior, one wavefront at a time─► top codes
                stream 1 ─range decoder + bottom prior | top─► bottom codes ─► VQVAE.decode

The priors are evaluated in exact integer arithmetic (`priors.fixedpoint`), so the encoder's
whole-map pass and the decoder's wavefront walk give the same probabilities, on any machine
and thread count. No printing, no argument parsing, no file I/O.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from PIL import Image

from priors.decode import teacher_forced, walk
from vqzip import container, intake, zoo
from vqzip.coder import SymbolDecoder, SymbolEncoder
from vqzip.errors import FormatError, ModelError
from vqzip.vqvae import VQVAE

STRIDE = 8
# The VQ-VAE runs over horizontal stripes of STRIPE image rows, each with MARGIN rows of
# context above and below: more than its encoder's (~80 px) and decoder's (~30 px) receptive
# fields, so stripes join without seams, and a 4K image needs a stripe's memory, not its own.
STRIPE = 512
MARGIN = 128
# Decompression-bomb guard, as Pillow's Image.MAX_IMAGE_PIXELS: images (given, coded, or named
# by a file's header) above this many pixels are refused before anything is allocated. Decoding
# needs about 70 bytes per coded pixel; None turns the check off.
MAX_PIXELS: int | None = container.DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Decoded:
    image: Image.Image
    header: container.Header


def code_shapes(width: int, height: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(rows, cols) of the top and bottom code maps for an image of this size."""
    rows, cols = -(-height // STRIDE), -(-width // STRIDE)
    return (rows, cols), (2 * rows, 2 * cols)


def check_pixels(width: int, height: int, what: str) -> None:
    """Refuse sizes above MAX_PIXELS (a VqzError naming the size and the limit)."""
    if MAX_PIXELS is not None and width * height > MAX_PIXELS:
        raise FormatError(f"{what} of {width}x{height} = {width * height:,} pixels exceeds the limit of "
                          f"{MAX_PIXELS:,} (a decompression-bomb guard; see --max-pixels)")


def _stripes(rows: int, stripe: int, margin: int):
    """(start, stop, context start, context stop) of each stripe of `rows` rows."""
    for y0 in range(0, rows, stripe):
        y1 = min(y0 + stripe, rows)
        yield y0, y1, max(0, y0 - margin), min(rows, y1 + margin)


@torch.no_grad()
def encode_codes(vqvae: VQVAE, pixels: np.ndarray, stripe: int = STRIPE) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, W, 3) uint8 -> top (h/8, w/8) and bottom (h/4, w/4) code maps of the padded image.
    Pixels become floats one stripe at a time, so a large image is never held as floats whole."""
    h, w = pixels.shape[:2]
    padded = np.pad(pixels, ((0, -h % STRIDE), (0, -w % STRIDE), (0, 0)), mode="edge")  # replicate
    tops, bottoms = [], []
    for y0, y1, a, b in _stripes(padded.shape[0], stripe, MARGIN):
        x = torch.from_numpy(np.ascontiguousarray(padded[a:b].transpose(2, 0, 1), dtype=np.float32))[None]
        top, bottom = vqvae.encode(VQVAE.normalize(x).contiguous(memory_format=torch.channels_last))
        tops.append(top[0, (y0 - a) // 8 : (y1 - a) // 8])
        bottoms.append(bottom[0, (y0 - a) // 4 : (y1 - a) // 4])
    return torch.cat(tops), torch.cat(bottoms)


@torch.no_grad()
def decode_pixels(vqvae: VQVAE, top: torch.Tensor, bottom: torch.Tensor, width: int, height: int,
                  stripe: int = STRIPE) -> np.ndarray:
    """Code maps -> (height, width, 3) uint8, cropped from the padded reconstruction."""
    return _striped(lambda a, b: vqvae.decode(top[None, a:b], bottom[None, 2 * a : 2 * b]), top.shape[0], 8,
                    stripe)[:, :height, :width].permute(1, 2, 0).numpy()


def preview_pixels(vqvae: VQVAE, top: torch.Tensor, width: int, height: int, stripe: int = STRIPE) -> np.ndarray:
    """Top codes alone -> the preview (uint8, `container.preview_size` of width x height) of the coded image,
    through the VQ-VAE's preview head."""
    w, h = container.preview_size(width, height)
    return _striped(lambda a, b: vqvae.decode_preview(top[None, a:b]), top.shape[0], 2,
                    stripe)[:, :h, :w].permute(1, 2, 0).numpy()


def _striped(decode, top_rows: int, rows_per_code: int, stripe: int) -> torch.Tensor:
    """decode(a, b) of top-code rows [a, b) -> (3, rows_per_code * (b - a), W) in model range, run
    in stripes with margins and joined as uint8 (3, rows_per_code * top_rows, W)."""
    out = []
    for r0, r1, a, b in _stripes(top_rows, stripe // 8, MARGIN // 8):
        x = decode(a, b)[0, :, rows_per_code * (r0 - a) : rows_per_code * (r1 - a)]
        out.append(((x + 0.5) * 255).round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out, 1)


def resample(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 resampled to size (width, height) with Lanczos (antialiased when shrinking)."""
    if (pixels.shape[1], pixels.shape[0]) == size:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize(size, Image.LANCZOS))


def compress(image: Image.Image, model: zoo.CodecModel, scale: Fraction = Fraction(1)) -> bytes:
    """Encode a PIL image of any mode (see `vqzip.intake`) with `model`, resampled by `scale` (a
    quality level's operating point: fewer or more codes per pixel); returns .vqz bytes."""
    check_pixels(*image.size, "image")
    check_pixels(*container.coded_size(*image.size, scale), "coded image")
    given = intake.prepare(image)
    height, width = given.rgb.shape[:2]
    coded = container.coded_size(width, height, scale)
    if max(max(shape) for shape in code_shapes(*coded)) > container.MAX_LEVEL_SIDE:
        raise FormatError(f"image of {width}x{height} coded at {coded[0]}x{coded[1]} has a side too long for the "
                          f"format (code maps of at most {container.MAX_LEVEL_SIDE} rows and columns)")
    top, bottom = encode_codes(model.vqvae, resample(given.rgb, coded))
    streams = []
    for prior, codes, cond in ((model.top_prior, top, None), (model.bottom_prior, bottom, top)):
        enc = SymbolEncoder()
        for probs, symbols in teacher_forced(prior, codes, cond):
            enc.encode(symbols, probs)
        streams.append(enc.to_bytes())
    header = container.Header(width, height, given.mode, model.name, model.hash8, (tuple(top.shape), tuple(bottom.shape)),
                              scale, (container.codes_crc(top.numpy()), container.codes_crc(bottom.numpy())))
    alpha = b"" if given.alpha is None else zlib.compress(given.alpha.tobytes(), 9)
    return container.pack(header, streams, alpha)


def model_for(header: container.Header) -> zoo.CodecModel:
    """The shipped model a file was made with, or a ModelError naming the one it needs."""
    name = zoo.name_for_hash(header.model_hash)
    if name is None:
        raise ModelError(f"file was made with model {header.model_name!r} ({header.model_hash.hex()}), "
                         "which is not installed")
    return zoo.load(name)


def decode_codes(data: bytes, model: zoo.CodecModel | None = None, top_only: bool = False):
    """Decode .vqz bytes to (header, model, top codes, bottom codes, alpha plane or None).
    `model` defaults to the shipped model the header names. Every size is checked before
    anything is allocated, and each decoded map against the file's checksum of it. With
    top_only, the bottom stream is not decoded and bottom is None (for a preview)."""
    header, streams, alpha = container.unpack(data)
    check_pixels(header.width, header.height, "image")
    check_pixels(*header.coded_size, "coded image")
    expected = code_shapes(*header.coded_size)
    if header.levels != expected:
        raise FormatError(f"code map shapes {header.levels} do not fit a {header.width}x{header.height} image "
                          f"coded at scale {header.scale}")
    if model is None:
        model = model_for(header)
    elif model.hash8 != header.model_hash:
        raise ModelError(f"file was made with model {header.model_name!r}, not {model.name!r}")
    top = _decode_map(model.top_prior, streams[0], expected[0], header.crcs[0], "top")
    bottom = None if top_only else _decode_map(model.bottom_prior, streams[1], expected[1], header.crcs[1], "bottom", top)
    return header, model, top, bottom, _alpha(alpha, header) if header.has_alpha else None


def _decode_map(prior, stream: bytes, shape: tuple[int, int], crc: int, name: str, cond=None) -> torch.Tensor:
    dec = SymbolDecoder(stream)
    codes = walk(prior, *shape, lambda p, i, j: dec.decode(p), cond)
    if container.codes_crc(codes.numpy()) != crc:
        raise FormatError(f"decoded {name} codes fail their checksum: the coded stream is damaged")
    return codes


def _alpha(data: bytes, header: container.Header) -> np.ndarray:
    """The zlib-compressed alpha plane, inflated to exactly width x height bytes, no more."""
    n = header.width * header.height
    try:
        inflate = zlib.decompressobj()
        plane = inflate.decompress(data, n + 1)
    except zlib.error as e:
        raise FormatError(f"alpha plane is damaged: {e}") from None
    if len(plane) != n or not inflate.eof:
        raise FormatError(f"alpha plane holds {len(plane)} bytes, not {n}")
    return np.frombuffer(plane, np.uint8).reshape(header.height, header.width)


def decompress(data: bytes, model: zoo.CodecModel | None = None) -> Decoded:
    """Decode .vqz bytes to an image of the original size and mode."""
    header, model, top, bottom, alpha = decode_codes(data, model)
    pixels = decode_pixels(model.vqvae, top, bottom, *header.coded_size)
    return Decoded(intake.restore(resample(pixels, (header.width, header.height)), header.mode, alpha), header)


def preview(data: bytes, model: zoo.CodecModel | None = None) -> Decoded:
    """Decode .vqz bytes to a preview: the top code map alone (about a fifth of the codes, and
    no bottom walk) through the VQ-VAE's preview head, at a quarter of the image's size each
    way (`container.preview_size`), in the image's mode."""
    header, model, top, _, alpha = decode_codes(data, model, top_only=True)
    size = container.preview_size(header.width, header.height)
    pixels = resample(preview_pixels(model.vqvae, top, *header.coded_size), size)
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha).resize(size, Image.BOX))
    return Decoded(intake.restore(pixels, header.mode, alpha), header)


def estimated_bits(model: zoo.CodecModel, image: Image.Image, scale: Fraction = Fraction(1)) -> dict[str, float]:
    """-sum log2 p of the coded symbols under the coded probabilities, per level: the ideal
    size of each stream, to show the range coder's overhead."""
    pixels = intake.prepare(image).rgb
    top, bottom = encode_codes(model.vqvae, resample(pixels, container.coded_size(pixels.shape[1], pixels.shape[0], scale)))
    return {"top": ideal_bits(model.top_prior, top), "bottom": ideal_bits(model.bottom_prior, bottom, top)}


def ideal_bits(prior, codes: torch.Tensor, cond: torch.Tensor | None = None) -> float:
    """-sum log2 p(code) of a map under the probabilities the codec codes it with."""
    bits = 0.0
    for probs, symbols in teacher_forced(prior, codes, cond):
        p = probs.astype(np.float64)
        bits -= float(np.log2(p[np.arange(len(symbols)), symbols] / p.sum(1)).sum())
    return bits

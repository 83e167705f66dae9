"""The codec: image -> network codes -> priors -> range coder -> container, and back.

    compress:   RGB pixels ─pad─► net.features ─► level latents ─► code maps, coarsest first
                map k ─prior k | the maps it sees─► probabilities ─► range coder ─► stream k
                header + streams ─► .vqz bytes
    decompress: stream k ─range decoder + prior k, one wavefront at a time─► map k, in order
                code maps ─► net.decode

A model's maps (`vqzip.models.MapSpec`) say each map's stride and which earlier maps its prior
sees; nothing here names a level. The priors are evaluated in exact integer arithmetic
(`vqzip.priors.fixedpoint`), so the encoder's walk over known codes and the decoder's walk give
the same probabilities, on any machine and thread count. No printing, no argument parsing, no
file I/O.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from PIL import Image

from vqzip.priors.decode import teacher_forced, walk
from vqzip.runtime import one_thread
from vqzip import chroma_gain, colour_offsets, container, fine_skip, flat_blocks, intake, rdo, tiles, zoo
from vqzip.coder import SymbolDecoder, SymbolEncoder
from vqzip.errors import FormatError, ModelError
from vqzip.models import MapSpec, features_of
from vqzip.tiles import DECODE_MARGIN, DECODE_TILE, TILE, Tile


STRIDE = 8
# Decompression-bomb guard, as Pillow's Image.MAX_IMAGE_PIXELS: images (given, coded, or named
# by a file's header) above this many pixels are refused before anything is allocated. Decoding
# needs about 70 bytes per coded pixel; None turns the check off.
MAX_PIXELS: int | None = container.DEFAULT_MAX_PIXELS
# Corrections of the decoded image the encoder measures and the file carries, applied in this
# order by both ends: local mean colour, then saturation, then flat blocks painted exactly.
CORRECTIONS = ((container.TAG_COLOUR_OFFSETS, colour_offsets), (container.TAG_CHROMA_GAIN, chroma_gain),
               (container.TAG_FLAT_BLOCKS, flat_blocks))


@dataclass(frozen=True)
class Decoded:
    image: Image.Image
    header: container.Header
    codes: list[torch.Tensor]  # the code maps decoded


def code_shapes(maps: list[MapSpec], width: int, height: int) -> list[tuple[int, int]]:
    """(rows, cols) of each code map for an image of this size (padded to a multiple of STRIDE)."""
    rows, cols = -(-height // STRIDE), -(-width // STRIDE)
    return [(rows * STRIDE // m.stride, cols * STRIDE // m.stride) for m in maps]


def check_pixels(width: int, height: int, what: str) -> None:
    """Refuse sizes above MAX_PIXELS (a VqzError naming the size and the limit)."""
    if MAX_PIXELS is not None and width * height > MAX_PIXELS:
        raise FormatError(f"{what} of {width}x{height} = {width * height:,} pixels exceeds the limit of "
                          f"{MAX_PIXELS:,} (a decompression-bomb guard; see --max-pixels)")


class EdgePadded:
    """An (H, W, 3) image seen as padded at the bottom and right to multiples of STRIDE, edge
    pixels repeated, without a padded copy of it (120 MB at 40 MP): `self[rows, cols]` is a
    region of the padded image, padded as it is read (a view where it needs no padding)."""

    def __init__(self, pixels: np.ndarray):
        self.pixels = pixels
        h, w = pixels.shape[:2]
        self.shape = (h + -h % STRIDE, w + -w % STRIDE) + pixels.shape[2:]

    def __getitem__(self, region: tuple[slice, slice]) -> np.ndarray:
        rows, cols = region
        h, w = self.pixels.shape[:2]
        if rows.stop <= h and cols.stop <= w:
            return self.pixels[rows, cols]
        r, c = (np.minimum(np.arange(s.start, s.stop), n - 1) for s, n in ((rows, h), (cols, w)))
        return self.pixels[r[:, None], c]


def _first_level(model: zoo.CodecModel) -> int:
    """How many maps the first level has: a file codes them, then 1 or more maps after them."""
    return sum(m.level == model.maps[0].level for m in model.maps)


def map_count(model: zoo.CodecModel, stages: int | None) -> int:
    """How many code maps a file codes with `stages` maps after the first level's (residual
    stages and finer levels, in coding order; None: all)."""
    first = _first_level(model)
    n = len(model.maps) if stages is None else first + stages
    if not first < n <= len(model.maps):
        raise ValueError(f"model {model.name!r} codes 1 to {len(model.maps) - first} stages, not {stages}")
    return n


@torch.no_grad()
def encode_codes(net, pixels: np.ndarray, maps: int | None = None, tile: tuple[int, int] = TILE) -> list[torch.Tensor]:
    """(H, W, 3) uint8 -> the code maps of the padded image (the first `maps`, None: all),
    nearest code at every stage. Each tile (`vqzip.tiles`) computes the levels those maps need
    from its own context (a fine level's latent needs a decode of the coarser ones: skipped
    when it is not coded); pixels become floats one tile at a time, so a large image is never
    held as floats whole."""
    _check_tile(tile)
    padded = EdgePadded(pixels)
    parts = tiles.tiles(*padded.shape[:2], tile)

    def codes_of(t: Tile):
        feats = features_of(net, padded[t.context()])
        codes = []
        for level, vq in enumerate(net.levels):
            if len(codes) >= n:
                break
            codes += vq.residual_indices(net.latent(level, feats, codes))
        return [c[0][t.inner(down=m.stride)] for c, m in zip(codes[:n], net.maps)]

    n = len(net.maps) if maps is None else maps
    blocks = tiles.per_tile(codes_of, parts)
    return [tiles.join([b[k] for b in blocks], parts, down=m.stride) for k, m in enumerate(net.maps[:n])]


@torch.no_grad()
def decode_pixels(net, codes: list[torch.Tensor], width: int, height: int, tile: tuple[int, int] = DECODE_TILE) -> np.ndarray:
    """Code maps (a prefix of the model's, reaching past its first level) -> (height,
    width, 3) uint8, cropped from the padded reconstruction."""
    def region(t: Tile):
        return net.decode([c[t.context(STRIDE, m.stride)][None] for c, m in zip(codes, net.maps)])

    return _tiled(region, codes[0].shape, STRIDE, tile)[:, :height, :width].permute(1, 2, 0).numpy()


def preview_pixels(net, top: torch.Tensor, width: int, height: int, tile: tuple[int, int] = DECODE_TILE) -> np.ndarray:
    """The first code map alone -> the preview (uint8, `container.preview_size` of width x height)
    of the coded image, through the network's preview head."""
    w, h = container.preview_size(width, height)
    return _tiled(lambda t: net.decode_preview(top[t.context()][None]), top.shape, 2,
                  tile)[:, :h, :w].permute(1, 2, 0).numpy()


def _check_tile(tile: tuple[int, int]) -> None:
    if any(side < STRIDE or side % STRIDE for side in tile):
        raise ValueError(f"tiles of {tile[0]}x{tile[1]} pixels: each side must be a multiple of {STRIDE}")


def _tiled(decode, top_shape: tuple[int, int], pixels_per_code: int, tile: tuple[int, int]) -> torch.Tensor:
    """decode(t) of the first map's tile t (in its codes) -> (3, p*rows, p*cols) in model range
    (p = pixels_per_code), run tile by tile with margins and joined as uint8 (3, p*H, p*W)."""
    _check_tile(tile)
    p = pixels_per_code

    def pixels_of(t: Tile):
        rows, cols = t.inner(up=p)
        x = decode(t)[0, :, rows, cols]
        return ((x + 0.5) * 255).round().clamp(0, 255).to(torch.uint8)

    parts = tiles.tiles(*top_shape, (tile[0] // STRIDE, tile[1] // STRIDE), DECODE_MARGIN // STRIDE)
    return tiles.join(tiles.per_tile(pixels_of, parts), parts, up=p)


def resample(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 resampled to size (width, height) with Lanczos (antialiased when shrinking)."""
    if (pixels.shape[1], pixels.shape[0]) == size:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize(size, Image.LANCZOS))


def compress(image: Image.Image, model: zoo.CodecModel, scale: Fraction = Fraction(1), lam: float = 0.0,
             stages: int | None = None, quality: int = 0, *, skip: float = 0.0) -> bytes:
    """Encode a PIL image of any mode (see `vqzip.intake`) with `model`; returns .vqz bytes.

    A quality level's operating point: the image resampled by `scale` (fewer or more codes per
    pixel), `stages` maps after the first level's (None: all the model has), and codes
    chosen for rate as well as distortion with multiplier `lam` (`vqzip.rdo`; 0: the nearest
    code, each map's probabilities from the walk over its known codes). With `skip` > 0 the
    fine level is coded only in the blocks where its codes save more than `skip` squared error
    per bit (`vqzip.fine_skip`; also when it is the nearest code everywhere). `quality`, the
    level number asked for, is only recorded in the header, as `lam` and `skip` are."""
    check_pixels(*image.size, "image")
    check_pixels(*container.coded_size(*image.size, scale), "coded image")
    given = intake.prepare(image)
    height, width = given.rgb.shape[:2]
    coded = container.coded_size(width, height, scale)
    n = map_count(model, stages)
    if max(max(shape) for shape in code_shapes(model.maps[:n], *coded)) > container.MAX_LEVEL_SIDE:
        raise FormatError(f"image of {width}x{height} coded at {coded[0]}x{coded[1]} has a side too long for the "
                          f"format (code maps of at most {container.MAX_LEVEL_SIDE} rows and columns)")
    lam, skip = float(np.float32(lam)), float(np.float32(skip))  # as the header stores them
    skips = skip > 0 and any(m.name == "fine" for m in model.maps[:n])
    if skips and any(m.level == model.maps[-1].level and m.stage for m in model.maps):
        raise ValueError(f"model {model.name!r} has a fine level of several stages: it cannot be skipped in blocks")
    pixels = resample(given.rgb, coded)
    extensions = [(container.TAG_FINE_SKIP, fine_skip.pack(skip))] if skips else []
    if lam > 0 or skips:
        padded = EdgePadded(pixels)
        codes, streams = rdo.encode(model, padded, lam, n, tiles.tiles(*padded.shape[:2]), skip if skips else 0.0,
                                    lambda c: decode_pixels(model.net, c, *coded), pixels)
        shown = decode_pixels(model.net, codes, *coded)
    else:
        codes = encode_codes(model.net, pixels, n)
        # The prior pass (one thread) runs beside the decode of what the decoder will rebuild:
        # with two threads allowed, on two cores, compress took 1.45 s instead of 1.85 s.
        with ThreadPoolExecutor(1) if torch.get_num_threads() > 1 else _Inline() as pool:
            coded_streams = pool.submit(_streams, model, codes)
            shown = decode_pixels(model.net, codes, *coded)
            streams = coded_streams.result()
    alpha_coding, alpha = (0, b"") if given.alpha is None else intake.code_alpha(given.alpha)
    # What the decoder will rebuild, and the corrections of it (CORRECTIONS), each sent only
    # if it fits the header's 64 KiB of extensions (a 40 MP image's do).
    shown = resample(shown, (width, height))
    room = container.MAX_EXTENSIONS - (container.extensions_size([(container.TAG_ALPHA_CODING, b"\0")]) if alpha_coding else 0)
    for tag, tool in CORRECTIONS:
        found = tool.measure(given.rgb, shown)
        if found is not None and container.extensions_size(extensions + [(tag, tool.pack(found))]) <= room:
            extensions.append((tag, tool.pack(found)))
            shown = tool.apply(shown, found)
    header = container.Header(width, height, given.mode, model.name, model.hash8, tuple(tuple(c.shape) for c in codes),
                              scale, tuple(container.codes_crc(c.numpy()) for c in codes), quality, lam,
                              tuple(extensions), alpha_coding)
    return container.pack(header, streams, alpha)


def _streams(model: zoo.CodecModel, codes: list[torch.Tensor]) -> list[bytes]:
    """The range-coded stream of each map of known codes, under its prior's probabilities from
    the walk over them. One torch thread: two were 2x faster idle but 4-16x slower beside other
    work (OpenMP's parallel regions wait for a busy core)."""
    streams = []
    with one_thread():
        for k, m in enumerate(model.maps[: len(codes)]):
            enc = SymbolEncoder()
            for probs, symbols in teacher_forced(model.priors[k], codes[k], [codes[j] for j in m.conds]):
                enc.encode(symbols, probs)
            streams.append(enc.to_bytes())
    return streams


class _Inline:
    """A stand-in for an executor that runs what it is given at once, in this thread."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        f = Future()
        f.set_result(fn(*args))
        return f


def model_for(header: container.Header) -> zoo.CodecModel:
    """The shipped model a file was made with, or a ModelError naming the one it needs."""
    name = zoo.name_for_hash(header.model_hash)
    if name is None:
        raise ModelError(f"file was made with model {header.model_name!r} ({header.model_hash.hex()}), "
                         "which is not installed")
    return zoo.load(name)


def decode_codes(data: bytes, model: zoo.CodecModel | None = None, maps: int | None = None, parsed=None):
    """Decode .vqz bytes to (header, model, code maps, alpha plane or None). `model` defaults to
    the shipped model the header names. Every size is checked before anything is allocated,
    and each decoded map against the file's checksum of it. With `maps`, only the first that
    many maps are decoded (1 for a preview). `parsed`: container.unpack(data), where the caller
    has it already (the header is then not parsed again)."""
    header, streams, alpha = parsed or container.unpack(data)
    check_pixels(header.width, header.height, "image")
    check_pixels(*header.coded_size, "coded image")
    if model is None:
        model = model_for(header)
    elif model.hash8 != header.model_hash:
        raise ModelError(f"file was made with model {header.model_name!r}, not {model.name!r}")
    n, first = len(header.levels), _first_level(model)
    if not first < n <= len(model.maps):
        raise FormatError(f"{n} code maps do not fit model {model.name!r}, which codes {first + 1} to {len(model.maps)}")
    expected = code_shapes(model.maps[:n], *header.coded_size)
    if list(header.levels) != expected:
        raise FormatError(f"code map shapes {header.levels} do not fit a {header.width}x{header.height} image "
                          f"coded at scale {header.scale}")
    skip = dict(header.extensions).get(container.TAG_FINE_SKIP)
    if skip is not None:
        try:
            block, _ = fine_skip.unpack(skip)
        except ValueError as e:
            raise FormatError(str(e)) from None
        if "fine" not in [m.name for m in model.maps[:n]]:
            raise FormatError("the file skips fine blocks but codes no fine level")
    codes = []
    with one_thread():
        for k, m in enumerate(model.maps[: n if maps is None else maps]):
            dec, skipped = SymbolDecoder(streams[k]), None
            if skip is not None and m.name == "fine":
                kept = fine_skip.decode(dec, *fine_skip.blocks_of(expected[k], block))
                skipped = torch.from_numpy(~fine_skip.positions(kept, expected[k], block))
            c = walk(model.priors[k], *expected[k], lambda p, i, j: dec.decode(p), [codes[j] for j in m.conds], skipped)
            if container.codes_crc(c.numpy()) != header.crcs[k]:
                raise FormatError(f"decoded {m.name} codes fail their checksum: the coded stream is damaged")
            codes.append(c)
    plane = intake.decode_alpha(header.alpha_coding, alpha, header.width, header.height) if header.has_alpha else None
    return header, model, codes, plane


def decompress(data: bytes, model: zoo.CodecModel | None = None, parsed=None) -> Decoded:
    """Decode .vqz bytes to an image of the original size and mode (`parsed`: as decode_codes)."""
    header, model, codes, alpha = decode_codes(data, model, parsed=parsed)
    pixels = resample(decode_pixels(model.net, codes, *header.coded_size), (header.width, header.height))
    extensions = dict(header.extensions)
    for tag, tool in CORRECTIONS:
        if tag in extensions:
            try:
                pixels = tool.apply(pixels, tool.unpack(extensions[tag], header.width, header.height))
            except ValueError as e:
                raise FormatError(str(e)) from None
    return Decoded(intake.restore(pixels, header.mode, alpha), header, codes)


def preview(data: bytes, model: zoo.CodecModel | None = None, parsed=None) -> Decoded:
    """Decode .vqz bytes to a preview: the top code map alone (about a fifth of the codes, and
    no bottom walk) through the VQ-VAE's preview head, at a quarter of the image's size each
    way (`container.preview_size`), in the image's mode (`parsed`: as decode_codes)."""
    header, model, (top,), alpha = decode_codes(data, model, maps=1, parsed=parsed)
    size = container.preview_size(header.width, header.height)
    pixels = resample(preview_pixels(model.net, top, *header.coded_size), size)
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha).resize(size, Image.BOX))
    return Decoded(intake.restore(pixels, header.mode, alpha), header, [top])


def estimated_bits(model: zoo.CodecModel, codes: list[torch.Tensor]) -> dict[str, float]:
    """-sum log2 p of code maps (a file's, `Decoded.codes`) under the probabilities they are
    coded with, per map: the ideal size of each stream, to show the range coder's overhead."""
    return {m.name: ideal_bits(model.priors[k], codes[k], [codes[j] for j in m.conds])
            for k, m in enumerate(model.maps[: len(codes)])}


def ideal_bits(prior, codes: torch.Tensor, conds: list[torch.Tensor] = ()) -> float:
    """-sum log2 p(code) of a map under the probabilities the codec codes it with."""
    bits = 0.0
    with one_thread():
        for probs, symbols in teacher_forced(prior, codes, conds):  # skipped positions (OUT) are not coded
            p = probs.astype(np.float64)
            bits -= float(np.log2(p[np.arange(len(symbols)), symbols] / p.sum(1)).sum())
    return bits

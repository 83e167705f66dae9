"""The codec: image -> network codes -> priors -> range coder -> container, and back.

    compress:   RGB pixels ─pad─► net.features ─► latents ────────► code maps, coarsest first
                map k ─prior k | the maps it sees─► probabilities ─► range coder ─► stream k
                header + streams ─► .vqz bytes
    decompress: stream k ─range decoder + prior k, one wavefront at a time─► map k, in order
                code maps ─► net.decode

A model's maps (`vqzip.models.MapSpec`) say each map's stride, which earlier maps its prior
sees and its roles (skippable in blocks, decodable alone to a preview); nothing here names a
map or a latent. What to code is an operating point (`vqzip.operating_point`). The priors are evaluated in exact integer arithmetic
(`vqzip.priors.fixedpoint`), so the encoder's walk over known codes and the decoder's walk give
the same probabilities, on any machine and thread count. No printing, no argument parsing, no
file I/O.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from PIL import Image

from vqzip.runtime import coding, one_thread, threads
from vqzip import chroma_gain, colour_offsets, container, fine_skip, flat_blocks, intake, rdo, tiles, zoo
from vqzip.coder import SymbolDecoder, SymbolEncoder, min_stream_bytes
from vqzip.errors import FormatError, ModelError
from vqzip.inference import features_of
from vqzip.models import MapSpec, lattice_config, lattice_map
from vqzip.operating_point import OperatingPoint
from vqzip.tiles import DECODE_MARGIN, DECODE_TILE, TILE, Tile


# Corrections of the decoded image the encoder measures and the file carries, applied in this
# order by both ends: local mean colour, then saturation, then flat blocks painted exactly.
CORRECTIONS = ((container.TAG_COLOUR_OFFSETS, colour_offsets), (container.TAG_CHROMA_GAIN, chroma_gain),
               (container.TAG_FLAT_BLOCKS, flat_blocks))


@dataclass(frozen=True)
class Decoded:
    image: Image.Image
    header: container.Header
    codes: list[np.ndarray]  # the code maps decoded, (H, W) int64 each


def code_shapes(net, width: int, height: int) -> list[tuple[int, int]]:
    """(rows, cols) of each of net's code maps for an image of this size (padded to a multiple
    of net.STRIDE)."""
    rows, cols = -(-height // net.STRIDE), -(-width // net.STRIDE)
    return [(rows * net.STRIDE // m.stride, cols * net.STRIDE // m.stride) for m in net.maps]


def check_pixels(width: int, height: int, what: str, max_pixels: int | None = container.DEFAULT_MAX_PIXELS) -> None:
    """Refuse sizes above max_pixels (None: no limit) with a VqzError naming the size and the limit."""
    if max_pixels is not None and width * height > max_pixels:
        raise FormatError(f"{what} of {width}x{height} = {width * height:,} pixels exceeds the limit of "
                          f"{max_pixels:,} (a decompression-bomb guard; see --max-pixels)")


class EdgePadded:
    """An (H, W, 3) image seen as padded at the bottom and right to multiples of `stride` (a
    network's STRIDE), edge pixels repeated, without a padded copy of it (120 MB at 40 MP):
    `self[rows, cols]` is a region of the padded image, padded as it is read (a view where it
    needs no padding)."""

    def __init__(self, pixels: np.ndarray, stride: int):
        self.pixels = pixels
        h, w = pixels.shape[:2]
        self.shape = (h + -h % stride, w + -w % stride) + pixels.shape[2:]

    def __getitem__(self, region: tuple[slice, slice]) -> np.ndarray:
        rows, cols = region
        h, w = self.pixels.shape[:2]
        if rows.stop <= h and cols.stop <= w:
            return self.pixels[rows, cols]
        r, c = (np.minimum(np.arange(s.start, s.stop), n - 1) for s, n in ((rows, h), (cols, w)))
        return self.pixels[r[:, None], c]


def _first_latent(maps: list[MapSpec]) -> int:
    """How many maps the first latent has: a file codes them, then 1 or more maps after them."""
    return sum(m.latent == maps[0].latent for m in maps)


def map_count(model: zoo.CodecModel, maps: int | None) -> int:
    """How many code maps a file codes at an operating point's `maps` (None: all the model has);
    a ValueError unless it is more than the first latent's and at most the model's."""
    first = _first_latent(model.maps)
    n = len(model.maps) if maps is None else maps
    if not first < n <= len(model.maps):
        raise ValueError(f"model {model.name!r} codes {first + 1} to {len(model.maps)} maps, not {maps}")
    return n


def preview_map(maps: list[MapSpec]) -> int:
    """The index of the map that decodes alone to a preview (`MapSpec.preview`); a ModelError if
    the model has none."""
    for k, m in enumerate(maps):
        if m.preview:
            return k
    raise ModelError("the model has no map that decodes alone to a preview")


def preview_reduction(model: zoo.CodecModel) -> int:
    """How many times smaller, each way, than the image the model's preview is (its preview
    map's `MapSpec.preview`)."""
    return model.maps[preview_map(model.maps)].preview


def preview_size(header: container.Header, model: zoo.CodecModel | None = None) -> tuple[int, int]:
    """The size of a file's preview: `container.preview_size` at its model's `preview_reduction`
    (`model` defaults to the shipped model the header names)."""
    return container.preview_size(header.width, header.height, preview_reduction(model or model_for(header)))


def encode_codes(net, pixels: np.ndarray, maps: int | None = None, tile: tuple[int, int] = TILE,
                 anchor: Fraction | None = None) -> list[np.ndarray]:
    """(H, W, 3) uint8 -> the code maps (H', W') int64 of the padded image (the first `maps`, None: all),
    nearest code at every stage; a lattice map (C, H', W') of the rounded symbols at rate `anchor`
    (which it needs: `vqzip.inference.codebooks.LatticeCodebook`). Each tile (`vqzip.tiles`) computes the latents those maps need
    from its own context (a finer latent may need a decode of the coarser ones: skipped
    when it is not coded); pixels become floats one tile at a time, so a large image is never
    held as floats whole."""
    _check_tile(tile, net.STRIDE)
    padded = EdgePadded(pixels, net.STRIDE)
    parts = tiles.tiles(*padded.shape[:2], tile)

    def codes_of(t: Tile):
        feats = features_of(net, padded[t.context()])
        codes = []
        for index, vq in enumerate(net.quantizers):
            if len(codes) >= n:
                break
            codes += vq.residual_indices(net.latent(index, feats, codes), **({"anchor": anchor} if index == lattice else {}))
        return [c[0][(..., *t.inner(down=m.stride))] for c, m in zip(codes[:n], net.maps)]

    k = lattice_map(net.maps)
    lattice = None if k is None else net.maps[k].latent

    n = len(net.maps) if maps is None else maps
    blocks = tiles.per_tile(codes_of, parts)
    return [tiles.join([b[k] for b in blocks], parts, down=m.stride) for k, m in enumerate(net.maps[:n])]


def decode_pixels(net, codes: list[np.ndarray], width: int, height: int, tile: tuple[int, int] = DECODE_TILE,
                  anchor: Fraction | None = None) -> np.ndarray:
    """Code maps (a prefix of the model's, reaching past its first latent; a lattice map's at
    rate `anchor`) -> (height, width, 3) uint8, cropped from the padded reconstruction."""
    def region(t: Tile):
        return net.decode([c[(..., *t.context(net.STRIDE, m.stride))][None] for c, m in zip(codes, net.maps)], anchor=anchor)

    return _tiled(region, codes[0].shape, net.STRIDE, net.STRIDE, tile)[:, :height, :width].transpose(1, 2, 0)


def preview_pixels(net, codes: np.ndarray, width: int, height: int, tile: tuple[int, int] = DECODE_TILE) -> np.ndarray:
    """The preview map's codes alone (`preview_map`) -> the preview (uint8, `container.preview_size`
    of width x height) of the coded image, through the network's preview head."""
    m = net.maps[preview_map(net.maps)]
    w, h = container.preview_size(width, height, m.preview)
    return _tiled(lambda t: net.decode_preview(codes[t.context()][None]), codes.shape, m.stride, m.stride // m.preview,
                  tile)[:, :h, :w].transpose(1, 2, 0)


def _check_tile(tile: tuple[int, int], stride: int) -> None:
    if any(side < stride or side % stride for side in tile):
        raise ValueError(f"tiles of {tile[0]}x{tile[1]} pixels: each side must be a multiple of {stride}")


def _tiled(decode, shape: tuple[int, int], stride: int, pixels_per_code: int, tile: tuple[int, int]) -> np.ndarray:
    """decode(t) of tile t of a code map of this shape and stride (t in its codes) -> (3, p*rows,
    p*cols) in model range (p = pixels_per_code), run tile by tile with margins and joined as
    uint8 (3, p*H, p*W)."""
    _check_tile(tile, stride)
    p = pixels_per_code

    def pixels_of(t: Tile):
        rows, cols = t.inner(up=p)
        x = decode(t)[0, :, rows, cols]
        return np.clip(np.round((x + np.float32(0.5)) * np.float32(255)), 0, 255).astype(np.uint8)

    parts = tiles.tiles(*shape, (tile[0] // stride, tile[1] // stride), DECODE_MARGIN // stride)
    return tiles.join(tiles.per_tile(pixels_of, parts), parts, up=p)


def resample(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 resampled to size (width, height) with Lanczos (antialiased when shrinking)."""
    if (pixels.shape[1], pixels.shape[0]) == size:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize(size, Image.LANCZOS))


def compress(image: Image.Image, model: zoo.CodecModel, point: OperatingPoint | None = None, *, quality: int = 0,
             max_pixels: int | None = container.DEFAULT_MAX_PIXELS) -> bytes:
    """Encode a PIL image of any mode (see `vqzip.intake`) with `model` at operating `point`
    (default: every map, scale 1, nearest codes); returns .vqz bytes.

    The image is resampled by point.scale, point.maps maps are coded, codes are chosen for rate
    as well as distortion with multiplier point.lam (`vqzip.rdo`; 0: the nearest code, each
    map's probabilities from the walk over its known codes), and with point.skip > 0 a
    skippable map coded is coded only in the blocks where its codes save more than point.skip
    squared error per bit (`vqzip.fine_skip`; also when it is the nearest code everywhere).
    A lattice map coded is coded at point.anchor, which the file records (extension
    TAG_LATTICE_ANCHOR). `quality`, the level number asked for, is only recorded in the header,
    as lam and skip are. A ValueError for a point of another model, of a number of maps the
    model does not code, that skips with a model that has no skippable map, that codes a
    lattice map without an anchor (or with one outside the model's, or not a whole number of
    1/256 steps) or with lam > 0, or that gives an anchor to a model without a lattice; a VqzError for an image or a coded
    image above max_pixels (None: no limit)."""
    point = point or OperatingPoint(model.name)
    n, anchor = check_point(model, point)
    check_pixels(*image.size, "image", max_pixels)
    check_pixels(*container.coded_size(*image.size, point.scale), "coded image", max_pixels)
    given = intake.prepare(image)
    height, width = given.rgb.shape[:2]
    coded = container.coded_size(width, height, point.scale)
    if max(max(shape) for shape in code_shapes(model.net, *coded)[:n]) > container.MAX_MAP_SIDE:
        raise FormatError(f"image of {width}x{height} coded at {coded[0]}x{coded[1]} has a side too long for the "
                          f"format (code maps of at most {container.MAX_MAP_SIDE} rows and columns)")
    lam, skip = float(np.float32(point.lam)), float(np.float32(point.skip))  # as the header stores them
    skips = skip > 0 and any(m.skippable for m in model.maps[:n])
    pixels = resample(given.rgb, coded)
    extensions = [(container.TAG_FINE_SKIP, fine_skip.pack(skip))] if skips else []
    if anchor is not None:
        extensions.append((container.TAG_LATTICE_ANCHOR, container.pack_anchor(anchor)))
    with coding(coded[0] * coded[1]):  # the network's engine keeps or gives back memory by the image's size
        if lam > 0 or skips:
            padded = EdgePadded(pixels, model.net.STRIDE)
            codes, streams = rdo.encode(model, padded, lam, n, tiles.tiles(*padded.shape[:2]), skip if skips else 0.0,
                                        lambda c: decode_pixels(model.net, c, *coded), pixels)
            shown = decode_pixels(model.net, codes, *coded)
        else:
            codes = encode_codes(model.net, pixels, n, anchor=anchor)
            # The prior pass (one thread) runs beside the decode of what the decoder will rebuild:
            # with two threads allowed, on two cores, compress took 1.45 s instead of 1.85 s.
            with ThreadPoolExecutor(1) if threads() > 1 else _Inline() as pool:
                coded_streams = pool.submit(_streams, model, codes, anchor)
                shown = decode_pixels(model.net, codes, *coded, anchor=anchor)
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
    header = container.Header(width, height, given.mode, model.name, model.hash8, tuple(tuple(c.shape[-2:]) for c in codes),
                              point.scale, tuple(container.codes_crc(c) for c in codes), quality, lam,
                              tuple(extensions), alpha_coding)
    return container.pack(header, streams, alpha)


def check_point(model: zoo.CodecModel, point: OperatingPoint) -> tuple[int, Fraction | None]:
    """`compress`'s checks of a point against `model`, made before any image is read -> (the
    number of maps it codes, the anchor its lattice map is coded at or None); the ValueErrors
    `compress` names."""
    if point.model != model.name:
        raise ValueError(f"an operating point of model {point.model!r} given to model {model.name!r}")
    n = map_count(model, point.maps)
    if float(np.float32(point.skip)) > 0 and not any(m.skippable for m in model.maps):
        raise ValueError(f"model {model.name!r} has no map that can be skipped in blocks")
    anchor = _point_anchor(model, point.anchor, n)
    if anchor is not None and float(np.float32(point.lam)) > 0:
        raise ValueError(f"model {model.name!r}: RDO (lam > 0) over a lattice map's symbols is not written; give lam 0")
    return n, anchor


def check_anchor(model: zoo.CodecModel, anchor: Fraction) -> Fraction:
    """`anchor` as a Fraction if `model` can code its lattice map at it: a ValueError naming the
    model where it has no lattice map, or the anchor is not within its anchors or not a whole
    number of 1/ANCHOR_STEPS steps (what the file can record, `container.pack_anchor`)."""
    cfg = lattice_config(model.net)
    if cfg is None:
        raise ValueError(f"model {model.name!r} has no lattice map: a rate anchor means nothing to it")
    anchor = Fraction(anchor)
    try:
        container.pack_anchor(anchor)
        cfg.anchor_position(anchor)
    except ValueError as e:
        raise ValueError(f"model {model.name!r}: rate {e}") from None
    return anchor


def _point_anchor(model: zoo.CodecModel, anchor: Fraction | None, n: int) -> Fraction | None:
    """The anchor a point codes the first n maps at: None where they hold no lattice map (an
    anchor given to a model without one is still refused), else `anchor`, checked
    (`check_anchor`); a ValueError where it is None."""
    k = lattice_map(model.maps)
    if anchor is not None:
        anchor = check_anchor(model, anchor)
    if k is None or k >= n:
        return None
    if anchor is None:
        raise ValueError(f"model {model.name!r} codes a lattice map at a rate anchor: the operating point gives none")
    return anchor


def prior_args(model: zoo.CodecModel, k: int, anchor: Fraction | None) -> dict:
    """The keywords map k's prior takes beside its codes: a lattice map's integer log2 gains at
    the anchor (`LatticeCodebook.log2_gains`, what its probabilities are computed from); none for
    a VQ map."""
    return {"log2_gain": model.net.quantizers[model.maps[k].latent].log2_gains(anchor)} if k == lattice_map(model.maps) else {}


def _streams(model: zoo.CodecModel, codes: list[np.ndarray], anchor: Fraction | None = None) -> list[bytes]:
    """The range-coded stream of each map of known codes (a lattice map's at `anchor`), under
    its prior's probabilities from the walk over them. One BLAS thread: two were 2x faster idle but 4-16x slower beside other
    work (a parallel region waits for a busy core)."""
    streams = []
    with one_thread():
        for k, m in enumerate(model.maps[: len(codes)]):
            enc = SymbolEncoder()
            for probs, symbols in model.priors[k].teacher_forced(codes[k], [codes[j] for j in m.conds],
                                                                 **prior_args(model, k, anchor)):
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
    """The installed model a file was made with (by its hash, in any model folder), or a
    ModelError naming the one it needs."""
    model = zoo.load_for_hash(header.model_hash)
    if model is None:
        raise ModelError(f"file was made with model {header.model_name!r} ({header.model_hash.hex()}), "
                         "which is not installed")
    return model


def decode_codes(data: bytes, model: zoo.CodecModel | None = None, *, preview: bool = False,
                 max_pixels: int | None = container.DEFAULT_MAX_PIXELS, parsed=None):
    """Decode .vqz bytes to (header, model, code maps, alpha plane or None). `model` defaults to
    the shipped model the header names; a lattice map's at the file's anchor
    (`container.anchor_of`). Every size is checked (against max_pixels, None: no
    limit) before anything is allocated, and each decoded map against the file's checksum of
    it. With `preview`, only the maps up to the model's preview map (`preview_map`) are decoded.
    `parsed`: container.unpack(data), where the caller has it already (not parsed again)."""
    header, streams, alpha = parsed or container.unpack(data)
    check_pixels(header.width, header.height, "image", max_pixels)
    check_pixels(*header.coded_size, "coded image", max_pixels)
    if model is None:
        model = model_for(header)
    elif model.hash8 != header.model_hash:
        raise ModelError(f"file was made with model {header.model_name!r}, not {model.name!r}")
    n, first = len(header.maps), _first_latent(model.maps)
    if not first < n <= len(model.maps):
        raise FormatError(f"{n} code maps do not fit model {model.name!r}, which codes {first + 1} to {len(model.maps)}")
    expected = code_shapes(model.net, *header.coded_size)[:n]
    if list(header.maps) != expected:
        raise FormatError(f"code map shapes {header.maps} do not fit a {header.width}x{header.height} image "
                          f"coded at scale {header.scale}")
    skip = dict(header.extensions).get(container.TAG_FINE_SKIP)
    if skip is not None:
        try:
            block, _ = fine_skip.unpack(skip)
        except ValueError as e:
            raise FormatError(str(e)) from None
        if not any(m.skippable for m in model.maps[:n]):
            raise FormatError("the file skips blocks of a map but codes no map that can be skipped")
    anchor = container.anchor_of(header)
    lattice = lattice_map(model.maps)
    if (anchor is not None) != (lattice is not None and lattice < n):
        raise FormatError("the file codes a lattice map without its rate anchor" if anchor is None else
                          "the file gives a rate anchor but codes no lattice map")
    if anchor is not None:
        try:
            lattice_config(model.net).anchor_position(anchor)
        except ValueError as e:
            raise FormatError(f"the file's lattice {e}") from None
    for k, m in enumerate(model.maps[:n]):  # streams too short for their maps: refused before any walk
        if skip is not None and m.skippable:  # at least its block flags are coded, two symbols each
            least = min_stream_bytes(int(np.prod(fine_skip.blocks_of(expected[k], block))), 2)
        else:
            least = min_stream_bytes(expected[k][0] * expected[k][1] * m.channels, model.priors[k].cfg.num_codes)
        if len(streams[k]) < least:
            raise FormatError(f"the {m.name} map's stream of {len(streams[k])} bytes is shorter than its "
                              f"{expected[k][0]}x{expected[k][1]} codes can take ({least} bytes at least): "
                              "the file is damaged")
    corrections(header)  # checked now, applied after the decode (`decompress`)
    codes = []
    with one_thread():
        for k, m in enumerate(model.maps[: preview_map(model.maps) + 1 if preview else n]):
            dec, skipped = SymbolDecoder(streams[k]), None
            if skip is not None and m.skippable:
                kept = fine_skip.decode(dec, *fine_skip.blocks_of(expected[k], block))
                skipped = ~fine_skip.positions(kept, expected[k], block)
            c = model.priors[k].walk(*expected[k], lambda p, i, j: dec.decode(p), [codes[j] for j in m.conds], skipped,
                                     **prior_args(model, k, anchor))
            if container.codes_crc(c) != header.crcs[k]:
                raise FormatError(f"decoded {m.name} codes fail their checksum: the coded stream is damaged")
            codes.append(c)
    plane = intake.decode_alpha(header.alpha_coding, alpha, header.width, header.height) if header.has_alpha else None
    return header, model, codes, plane


def corrections(header: container.Header) -> list[tuple[object, object]]:
    """The file's corrections of the decoded image, in CORRECTIONS' order: (module, its value
    read from the extension); a FormatError for a value that does not fit the image (each
    module's `unpack` bounds its own decompression)."""
    extensions = dict(header.extensions)
    try:
        return [(tool, tool.unpack(extensions[tag], header.width, header.height)) for tag, tool in CORRECTIONS
                if tag in extensions]
    except ValueError as e:
        raise FormatError(str(e)) from None


def decompress(data: bytes, model: zoo.CodecModel | None = None, *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS,
               parsed=None) -> Decoded:
    """Decode .vqz bytes to an image of the original size and mode (a VqzError for one above
    max_pixels, None: no limit; `parsed`: as decode_codes)."""
    header, model, codes, alpha = decode_codes(data, model, max_pixels=max_pixels, parsed=parsed)
    with coding(header.coded_size[0] * header.coded_size[1]):
        pixels = resample(decode_pixels(model.net, codes, *header.coded_size, anchor=container.anchor_of(header)),
                          (header.width, header.height))
    for tool, value in corrections(header):
        pixels = tool.apply(pixels, value)
    return Decoded(intake.restore(pixels, header.mode, alpha), header, codes)


def preview(data: bytes, model: zoo.CodecModel | None = None, *, max_pixels: int | None = container.DEFAULT_MAX_PIXELS,
            parsed=None) -> Decoded:
    """Decode .vqz bytes to a preview: the model's preview map alone (vqz-l3's top map: about a
    fifth of the codes, and no finer walk) through the network's preview head, at 1/preview
    of the image's size each way (`preview_size`), in the image's mode (`parsed`: as decode_codes)."""
    header, model, codes, alpha = decode_codes(data, model, preview=True, max_pixels=max_pixels, parsed=parsed)
    size = preview_size(header, model)
    with coding(header.coded_size[0] * header.coded_size[1]):
        pixels = resample(preview_pixels(model.net, codes[-1], *header.coded_size), size)
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha).resize(size, Image.BOX))
    return Decoded(intake.restore(pixels, header.mode, alpha), header, codes)


def estimated_bits(model: zoo.CodecModel, codes: list[np.ndarray], anchor: Fraction | None = None) -> dict[str, float]:
    """-sum log2 p of code maps (a file's, `Decoded.codes`; a lattice map's at `anchor`, the
    file's `container.anchor_of`) under the probabilities they are coded with, per map: the
    ideal size of each stream, to show the range coder's overhead."""
    return {m.name: ideal_bits(model.priors[k], codes[k], [codes[j] for j in m.conds],
                               prior_args(model, k, anchor).get("log2_gain"))
            for k, m in enumerate(model.maps[: len(codes)])}


def ideal_bits(prior, codes: np.ndarray, conds: list[np.ndarray] = (), log2_gain: np.ndarray | None = None) -> float:
    """-sum log2 p(code) of a map under the probabilities the codec codes it with (a lattice
    map's under its integer log2 gains `log2_gain`, which its prior needs)."""
    bits = 0.0
    with one_thread():
        for probs, symbols in prior.teacher_forced(codes, conds, **({} if log2_gain is None else {"log2_gain": log2_gain})):  # skipped positions (OUT) are not coded
            p = probs.astype(np.float64)
            bits -= float(np.log2(p[np.arange(len(symbols)), symbols] / p.sum(1)).sum())
    return bits

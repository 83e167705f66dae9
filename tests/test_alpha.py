"""The alpha plane of LA and RGBA images: lossless in every coding, never larger than a PNG of
it, and files written before the codings existed (zlib, no extension) still read."""
import io
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter, features

from conftest import ASSETS, photo
from vqzip import codec, container, intake
from vqzip.container import Header, pack, unpack
from vqzip.errors import FormatError

GOLDEN = Path(__file__).parent / "golden"


def png_size(plane: np.ndarray) -> int:
    """Bytes of the plane as a PNG file (Pillow, optimize)."""
    buf = io.BytesIO()
    Image.fromarray(plane, "L").save(buf, "PNG", optimize=True)
    return len(buf.getvalue())


def shape_mask(width: int, height: int, seed: int = 0, ss: int = 4) -> np.ndarray:
    """An antialiased mask: filled ellipses, a polygon and text drawn at ss x the size, reduced."""
    rng = np.random.default_rng(seed)
    big = Image.new("L", (width * ss, height * ss), 0)
    draw = ImageDraw.Draw(big)
    for _ in range(5):
        x, y = rng.integers(0, width * ss), rng.integers(0, height * ss)
        r = rng.integers(width * ss // 16, width * ss // 4)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    draw.polygon([tuple(int(v) for v in rng.integers(0, width * ss, 2)) for _ in range(5)], fill=160)
    draw.text((4 * ss, 4 * ss), "vqzip", fill=255, font_size=12 * ss)
    return np.asarray(big.resize((width, height), Image.LANCZOS))


def soft_shadow(width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(shape_mask(width, height, seed=1)).filter(ImageFilter.GaussianBlur(6)))


def cutout(width: int, height: int) -> np.ndarray:
    """A subject cut out of the test photo: a luminance threshold with a feathered edge."""
    with Image.open(ASSETS / "photo.png") as im:
        lum = np.asarray(im.convert("L").resize((width, height)))
    return np.asarray(Image.fromarray((lum > 110).astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(1.2)))


REALISTIC = {"shape mask": shape_mask, "soft shadow": soft_shadow, "cutout": cutout}

planes = st.builds(
    lambda w, h, kind, seed: {
        "noise": lambda r: r.integers(0, 256, (h, w)),
        "flat": lambda r: np.full((h, w), r.integers(0, 256)),
        "few values": lambda r: r.choice([0, 128, 255], (h, w)),
        "ramps": lambda r: np.add.outer(np.arange(h), r.integers(0, 3) * np.arange(w)) % 256,
        "blocks": lambda r: np.kron(r.integers(0, 2, (-(-h // 7), -(-w // 7))) * 255, np.ones((7, 7)))[:h, :w],
    }[kind](np.random.default_rng(seed)).astype(np.uint8),
    st.integers(1, 70), st.integers(1, 70), st.sampled_from(["noise", "flat", "few values", "ramps", "blocks"]),
    st.integers(0, 2**32 - 1))


@settings(max_examples=150, deadline=None)
@given(plane=planes)
def test_every_coding_is_lossless(plane):
    codings = intake.alpha_codings(plane)
    assert set(codings) >= {intake.ZLIB, intake.PNG}
    for coding, data in codings.items():
        assert np.array_equal(intake.decode_alpha(coding, data, plane.shape[1], plane.shape[0]), plane), coding
    chosen, data = intake.code_alpha(plane)
    assert codings[chosen] == data
    assert len(data) + (chosen != intake.ZLIB) * intake.TAG_BYTES <= len(codings[intake.ZLIB])


@pytest.mark.parametrize("kind", sorted(REALISTIC))
def test_a_realistic_plane_is_no_larger_than_its_png(kind):
    plane = REALISTIC[kind](384, 256)
    coding, data = intake.code_alpha(plane)
    assert np.array_equal(intake.decode_alpha(coding, data, 384, 256), plane)
    assert len(data) + intake.TAG_BYTES <= png_size(plane)
    if features.check("webp"):  # on these, WebP lossless is smaller than PNG
        assert coding == intake.WEBP


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_in_a_file_the_alpha_plane_costs_no_more_than_a_png(tiny, mode):
    plane = shape_mask(96, 64, seed=3)
    colour = photo(96, 64, mode="L" if mode == "LA" else "RGB")
    image = colour.copy()
    image.putalpha(Image.fromarray(plane))
    with_alpha, without = codec.compress(image, tiny), codec.compress(colour, tiny)
    assert len(with_alpha) - len(without) <= png_size(plane)
    header = unpack(with_alpha)[0]
    assert header.alpha_coding != intake.ZLIB
    out = codec.decompress(with_alpha, tiny).image
    assert out.mode == mode and np.array_equal(np.asarray(out.getchannel("A")), plane)


def test_a_zlib_plane_without_the_extension_still_decodes(tiny):
    """Files written before the codings existed: the plane as zlib, no extension."""
    image = photo(40, 24, mode="RGBA")
    plane = shape_mask(40, 24)
    image.putalpha(Image.fromarray(plane))
    header, streams, _ = unpack(codec.compress(image, tiny))
    old = pack(replace(header, alpha_coding=0, extensions=()), streams, zlib.compress(plane.tobytes(), 9))
    assert (unpack(old)[0].alpha_coding, unpack(old)[0].extensions) == (0, ())
    assert np.array_equal(np.asarray(codec.decompress(old, tiny).image.getchannel("A")), plane)


@pytest.mark.parametrize("name,coding", [("v4-rgba-scaled.vqz", intake.ZLIB), ("v4-la-png-alpha.vqz", intake.PNG),
                                         ("v4-rgba-webp-alpha.vqz", intake.WEBP)])
def test_the_golden_files_hold_every_coding(name, coding):
    """tests/test_golden.py decodes them; the first was written before the codings existed."""
    header, _, alpha = unpack((GOLDEN / name).read_bytes())
    assert header.alpha_coding == coding and header.extensions == ()
    plane = intake.decode_alpha(header.alpha_coding, alpha, header.width, header.height)
    assert plane.shape == (header.height, header.width)


ALPHA_HEADER = Header(3, 2, "LA", "m", bytes(8), ((1, 1), (2, 2)), crcs=(0, 0), extensions=((200, b"x"),))


def test_the_coding_travels_as_an_extension():
    zlib_file = pack(ALPHA_HEADER, [b"", b""], b"alpha")
    for coding in range(len(container.ALPHA_CODINGS)):
        h = replace(ALPHA_HEADER, alpha_coding=coding)
        data = pack(h, [b"", b""], b"alpha")
        assert unpack(data)[0] == h and len(data) == len(zlib_file) + (coding > 0) * intake.TAG_BYTES
    with pytest.raises(ValueError, match="alpha coding"):
        pack(replace(ALPHA_HEADER, mode="RGB", alpha_coding=1), [b"", b""])
    with pytest.raises(ValueError, match="alpha_coding field"):
        pack(replace(ALPHA_HEADER, extensions=((container.TAG_ALPHA_CODING, b"\x01"),)), [b"", b""], b"alpha")


@pytest.mark.parametrize("value,mode", [(b"\x03", "LA"), (b"", "LA"), (b"\x01\x01", "LA"), (b"\x01", "RGB")])
def test_an_invalid_coding_is_refused(value, mode):
    placeholder = bytes([99]) + len(value).to_bytes(2, "little") + value
    data = pack(replace(ALPHA_HEADER, mode=mode, extensions=((99, value),)), [b"", b""], b"alpha" if mode == "LA" else b"")
    body = data[:-4].replace(placeholder, bytes([container.TAG_ALPHA_CODING]) + placeholder[1:])
    with pytest.raises(FormatError, match="alpha coding"):
        unpack(body + zlib.crc32(body).to_bytes(4, "little"))


def test_damaged_planes_are_format_errors():
    plane = shape_mask(64, 48)
    for coding, data in intake.alpha_codings(plane).items():
        for bad in (data[: len(data) // 2], data + b"\x00", b"\x00" * len(data)):
            with pytest.raises(FormatError, match="alpha plane"):
                intake.decode_alpha(coding, bad, 64, 48)
        with pytest.raises(FormatError, match="alpha plane"):
            intake.decode_alpha(coding, data, 63, 48)  # another size


def test_without_webp_the_plane_is_png_or_zlib_and_a_webp_plane_says_why_it_fails(monkeypatch):
    plane = soft_shadow(128, 96)
    webp = intake.alpha_codings(plane).get(intake.WEBP)
    monkeypatch.setattr(intake.features, "check", lambda name: False if name == "webp" else features.check(name))
    assert set(intake.alpha_codings(plane)) == {intake.ZLIB, intake.PNG}
    coding, data = intake.code_alpha(plane)
    assert coding == intake.PNG and len(data) + intake.TAG_BYTES <= png_size(plane)
    if webp is not None:
        with pytest.raises(FormatError, match="without libwebp"):
            intake.decode_alpha(intake.WEBP, webp, 128, 96)


def test_mutated_planes_decode_to_a_plane_or_a_format_error():
    """Bytes that get past the file's CRC (a forged file): never another exception, never
    another size."""
    plane = soft_shadow(48, 40)
    rng = np.random.default_rng(0)
    for coding, data in intake.alpha_codings(plane).items():
        for _ in range(300):
            bad = bytearray(data)
            for i in rng.integers(0, len(bad), rng.integers(1, 4)):
                bad[i] = rng.integers(256)
            try:
                assert intake.decode_alpha(coding, bytes(bad), 48, 40).shape == (40, 48)
            except FormatError:
                pass

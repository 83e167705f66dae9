"""Every kind of image in: what is coded, what comes back (vqzip/intake.py's table)."""
import io
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import photo
from vqzip import codec, intake
from vqzip.errors import VqzError, VqzWarning

# mode given -> mode given back
PROMISED = {"RGB": "RGB", "L": "L", "1": "L", "LA": "LA", "RGBA": "RGBA", "P": "RGB", "I;16": "L", "CMYK": "RGB"}


def make(mode: str, width: int, height: int, seed: int) -> Image.Image:
    base = photo(width, height, seed=seed)
    if mode == "I;16":
        return Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257)
    if mode in ("LA", "RGBA"):
        im = base.convert(mode)
        alpha = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
        im.putalpha(Image.fromarray(alpha))
        return im
    return base.convert(mode)


def round_trip(im: Image.Image, model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VqzWarning)
        return codec.decompress(codec.compress(im, model)).image


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(sorted(PROMISED)), width=st.integers(1, 40), height=st.integers(1, 40),
       seed=st.integers(0, 9))
@pytest.mark.slow  # many sizes and modes coded
def test_any_size_and_mode_comes_back_as_promised(tiny, mode, width, height, seed):
    im = make(mode, width, height, seed)
    out = round_trip(im, tiny)
    assert out.size == (width, height) and out.mode == PROMISED[mode]
    if mode in ("LA", "RGBA"):  # alpha is lossless
        assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(im.getchannel("A")))


def test_palette_with_transparency_comes_back_rgba(tiny):
    im = photo(20, 12).convert("P")
    im.info["transparency"] = 0
    assert round_trip(im, tiny).mode == "RGBA"


@pytest.mark.parametrize("mode,message", [("I;16", "reduced to 8 bits"), ("CMYK", "converted to RGB")])
def test_lossy_conversions_warn(tiny, mode, message):
    with pytest.warns(VqzWarning, match=message):
        codec.compress(make(mode, 16, 16, 0), tiny)


def test_sixteen_bit_keeps_its_top_eight_bits(tiny):
    im = make("I;16", 16, 16, 0)
    with pytest.warns(VqzWarning):
        assert np.array_equal(intake.prepare(im).rgb[..., 0], np.asarray(im).astype(np.int64) >> 8)


def test_float_images_are_refused(tiny):
    with pytest.raises(VqzError, match="floating-point"):
        codec.compress(Image.new("F", (8, 8)), tiny)


def test_exif_orientation_is_honoured(tiny):
    im = photo(24, 10)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif)
    with Image.open(buf) as jpeg:
        out = round_trip(jpeg, tiny)
    assert out.size == (10, 24)


def test_multi_frame_images_code_the_first_frame_with_a_warning(tiny):
    frames = [photo(18, 14, seed=s).convert("P") for s in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    with Image.open(buf) as gif:
        with pytest.warns(VqzWarning, match="3 frames"):
            data = codec.compress(gif, tiny)
    assert codec.decompress(data).image.size == (18, 14)


def test_bombs_are_refused_before_decoding(tiny, monkeypatch):
    data = codec.compress(photo(40, 30), tiny)
    with pytest.raises(VqzError, match="exceeds the limit of 1,000"):
        codec.decompress(data, max_pixels=1000)
    with pytest.raises(VqzError, match="exceeds the limit"):
        codec.compress(photo(40, 30), tiny, max_pixels=1000)
    assert codec.decompress(data, max_pixels=None).image.size == (40, 30)


def test_a_side_too_long_for_the_format_is_refused_before_coding(tiny):
    with pytest.raises(VqzError, match="side too long"):
        codec.compress(Image.new("RGB", (300_000, 1)), tiny)


def png16(path, mode: str, width: int, height: int) -> np.ndarray:
    """Write a 16-bit RGB or RGBA PNG (Pillow writes none) of a photo crop; returns its samples."""
    import struct
    import zlib

    px = np.asarray(photo(width, height).convert(mode)).astype(np.uint16) * 257 + 100
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in px)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colour = {"RGB": 2, "RGBA": 6}[mode]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return px


@pytest.mark.parametrize("kind", ["RGB", "RGBA", "PPM"])
def test_sixteen_bit_rgb_warns_as_gray_does(tiny, tmp_path, kind):
    """Pillow reads 16-bit RGB(A) files as 8-bit RGB(A) without a word: vqzip says so, once,
    whether it opens the file or is given it opened."""
    import vqzip

    path = tmp_path / ("deep.ppm" if kind == "PPM" else "deep.png")
    if kind == "PPM":
        px = np.asarray(photo(16, 12)).astype(">u2") * 257
        path.write_bytes(b"P6 16 12 65535\n" + px.tobytes())
    else:
        png16(path, kind, 16, 12)
    mode = "RGBA" if kind == "RGBA" else "RGB"
    for give in (lambda: vqzip.compress(path), lambda: codec.compress(Image.open(path), tiny)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            give()
        assert [str(w.message) for w in seen] == [f"16-bit {mode} image reduced to 8 bits per channel"]


def test_eight_bit_images_and_sixteen_bit_gray_warn_as_before(tiny, tmp_path):
    import vqzip

    photo(16, 12).save(tmp_path / "plain.png")
    make("I;16", 16, 12, 0).save(tmp_path / "gray.png")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        vqzip.compress(tmp_path / "plain.png")
        vqzip.compress(tmp_path / "gray.png")
    assert [str(w.message) for w in seen] == ["I;16 image reduced to 8 bits per pixel"]

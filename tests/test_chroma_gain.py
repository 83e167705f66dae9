"""Chroma gain: the decoded image's mean saturation brought back to the original's, in integers."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import photo
from vqzip import chroma_gain as cg, codec, container, metrics
from vqzip.errors import FormatError


def colourful(seed: int = 0, shape=(40, 60, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(20, 236, shape).astype(np.uint8)


@settings(max_examples=40, deadline=None)
@given(st.integers(cg.LIMITS[0], cg.LIMITS[1]), st.integers(0, 2**32 - 1))
def test_apply_is_the_integer_formula_and_keeps_gray(k, seed):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (7, 5, 3)).astype(np.uint8)
    pixels[0] = pixels[0, :, :1]  # a row of grays
    out = cg.apply(pixels, k)
    for p, q in zip(pixels.reshape(-1, 3).tolist(), out.reshape(-1, 3).tolist()):
        y = 77 * p[0] + 150 * p[1] + 29 * p[2]
        assert q == [min(255, max(0, (256 * y + k * (256 * c - y) + 32768) // 65536)) for c in p]
    assert (out[0] == pixels[0]).all()
    assert (cg.apply(pixels, cg.UNIT) == pixels).all()


def test_a_desaturated_decode_gets_its_chroma_back():
    original = colourful()
    decoded = cg.apply(original, 218)  # 15% less saturated
    k = cg.measure(original, decoded)
    assert k is not None and k > cg.UNIT
    assert metrics.chroma(cg.apply(decoded, k)) / metrics.chroma(original) == pytest.approx(1, abs=0.01)
    assert cg.measure(original, original) is None


def test_gray_images_take_no_gain():
    gray = np.repeat(colourful()[..., :1], 3, -1)
    assert cg.measure(colourful(), gray) is None


@pytest.mark.parametrize("value", [b"", b"\x00", b"\x00\x00", b"\x01\x02", b"\x00\x01\x00"])
def test_bad_values_are_refused(value):
    with pytest.raises(ValueError, match="chroma gain"):
        cg.unpack(value, 8, 8)


def test_pack_round_trips():
    assert cg.unpack(cg.pack(300), 8, 8) == 300


def test_a_file_with_a_damaged_gain_is_refused(tiny):
    header, payloads, _ = container.unpack(codec.compress(photo(16, 16), tiny))
    bad = header.extensions + ((container.TAG_CHROMA_GAIN, b"\x00\x00"),)
    data = container.pack(container.Header(**{**header.__dict__, "extensions": tuple(
        e for e in bad if e[0] != container.TAG_CHROMA_GAIN or e[1] == b"\x00\x00")}), payloads)
    with pytest.raises(FormatError, match="chroma gain"):
        codec.decompress(data)

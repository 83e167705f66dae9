"""Colour offsets: the encoder's coarse correction of the decoded colours, in integer arithmetic."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import photo
from vqzip import codec, colour_offsets as co, container
from vqzip.errors import FormatError


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (37, 5), (64, 64), (300, 200)])
def test_a_flat_colour_decoded_off_comes_back_exactly(size):
    w, h = size
    original = np.full((h, w, 3), (200, 30, 90), np.uint8)
    decoded = np.full((h, w, 3), (149, 93, 63), np.uint8)
    offsets = co.measure(original, decoded)
    assert (co.apply(decoded, offsets) == original).all()
    back = co.unpack(co.pack(offsets), w, h)
    assert back.block == offsets.block and (back.grid == offsets.grid).all()


@pytest.mark.parametrize("size", [(8, 8), (12, 5)])
def test_a_tiny_image_decoded_unevenly_comes_back_within_a_level(size):
    """Under 16 pixels a side an image gets an offset per pixel: whatever the decoder made of a
    flat colour, uneven or not, comes back within THRESHOLD - 1 levels."""
    w, h = size
    assert co.block_for(w, h) == 1
    rng = np.random.default_rng(1)
    original = np.full((h, w, 3), (128, 255, 0), np.uint8)
    decoded = np.clip(original.astype(int) + rng.integers(-40, 41, original.shape), 0, 255).astype(np.uint8)
    assert np.abs(co.apply(decoded, co.measure(original, decoded)).astype(int) - original).max() <= co.THRESHOLD - 1


def test_offsets_that_gain_less_than_a_level_would_are_not_sent():
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (512, 768, 3)).astype(np.uint8)
    noisy = np.clip(original.astype(int) + rng.integers(-3, 4, original.shape), 0, 255).astype(np.uint8)
    assert co.measure(original, noisy) is None  # zero-mean error: nothing to correct
    shifted = np.clip(original.astype(int) + 1, 0, 255).astype(np.uint8)
    assert co.measure(original, shifted) is None  # under THRESHOLD


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 200), st.integers(1, 200), st.integers(0, 2**32 - 1))
def test_apply_is_integer_and_bounded(w, h, seed):
    """The interpolated offset of every pixel lies between the offsets of the blocks around it:
    a constant field adds exactly its constant, and results stay in 0..255."""
    rng = np.random.default_rng(seed)
    block = co.block_for(w, h)
    grid = (-(-h // block), -(-w // block), 3)
    decoded = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    k = int(rng.integers(-255, 256))
    const = co.apply(decoded, co.Offsets(np.full(grid, k, np.int16), block))
    assert (const == np.clip(decoded.astype(int) + k, 0, 255)).all()
    offsets = rng.integers(-40, 41, grid).astype(np.int16)
    added = co.apply(np.full((h, w, 3), 128, np.uint8), co.Offsets(offsets, block)).astype(int) - 128
    assert added.min() >= offsets.min() and added.max() <= offsets.max()


def test_a_file_carries_them_and_a_damaged_tag_is_refused(tiny):
    image = photo(8, 8)
    image.paste((255, 0, 128), (0, 0, 8, 8))
    data = codec.compress(image, tiny)
    header = container.unpack(data)[0]
    assert container.TAG_COLOUR_OFFSETS in dict(header.extensions)
    assert np.abs(np.asarray(codec.decompress(data).image).astype(int) - (255, 0, 128)).mean() < 3
    bad = container.pack(container.Header(**{**header.__dict__, "extensions": ((container.TAG_COLOUR_OFFSETS, b"\x02xx"),)}),
                         container.unpack(data)[1])
    with pytest.raises(FormatError, match="offsets"):
        codec.decompress(bad)

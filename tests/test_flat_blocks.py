"""Flat blocks: blocks that are one colour in the original come back that colour, exactly
enough, whatever texture the VQ decoder drew there."""
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import photo
from vqzip import codec, container, flat_blocks as fb
from vqzip.errors import FormatError


def noisy(original: np.ndarray, amplitude: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(original.astype(int) + rng.integers(-amplitude, amplitude + 1, original.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (37, 5), (64, 64), (300, 200)])
def test_a_flat_colour_decoded_with_texture_comes_back_exactly(size):
    w, h = size
    original = np.full((h, w, 3), (0, 0, 255), np.uint8)
    flat = fb.measure(original, noisy(original, 20))  # (a block the noise left exact is not sent)
    assert (fb.apply(noisy(original, 20), flat) == original).all()


def test_only_flat_blocks_that_the_decoder_got_wrong_are_sent():
    """Left half flat, right half a gradient: the right half is never painted; a flat half the
    decoder already got right costs nothing."""
    original = np.zeros((64, 256, 3), np.uint8)
    original[:, :128] = (30, 200, 90)
    original[:, 128:] = np.arange(128, dtype=np.uint8)[None, :, None]
    decoded = noisy(original, 12)
    flat = fb.measure(original, decoded)
    blocks = 128 // flat.block
    assert flat.mask[:, :blocks].all() and not flat.mask[:, blocks:].any()
    out = fb.apply(decoded, flat)
    assert (out[:, :128] == original[:, :128]).all() and (out[:, 128:] == decoded[:, 128:]).all()
    assert fb.measure(original, original) is None


def test_near_flat_blocks_come_back_within_the_range():
    rng = np.random.default_rng(3)
    original = (100 + rng.integers(0, fb.FLAT_RANGE + 1, (48, 80, 3))).astype(np.uint8)
    out = fb.apply(noisy(original, 30), fb.measure(original, noisy(original, 30)))
    assert np.abs(out.astype(int) - original).max() <= fb.FLAT_RANGE
    wider = original.copy()
    wider[::7, ::5] += fb.FLAT_RANGE + 1
    assert fb.measure(wider, noisy(wider, 30)) is None


def test_blocks_that_do_not_pay_for_their_bits_are_not_sent():
    """A large image decoded with noise, with one small flat block whose decode is off by one
    level: the block's gain is far below the codec's slope per bit."""
    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (512, 768, 3)).astype(np.uint8)
    original[:16, :16] = 77
    decoded = noisy(original, 10)
    decoded[:16, :16] = 78
    assert fb.measure(original, decoded) is None


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 100), st.integers(1, 100), st.integers(0, 2**32 - 1))
def test_pack_unpack_apply_round_trip(w, h, seed):
    """Any mask and colours survive the bytes, and apply paints exactly the set blocks' pixels."""
    rng = np.random.default_rng(seed)
    block = fb.block_for(w, h)
    mask = rng.random((-(-h // block), -(-w // block))) < 0.4
    flat = fb.FlatBlocks(mask, rng.integers(0, 256, (int(mask.sum()), 3)).astype(np.uint8), block)
    back = fb.unpack(fb.pack(flat), w, h)
    assert back.block == block and (back.mask == mask).all() and (back.colours == flat.colours).all()
    decoded = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    out = fb.apply(decoded, back)
    colours = iter(flat.colours)
    for r, c in zip(*np.nonzero(mask)):  # row-major, as the colours are stored
        assert (out[r * block : (r + 1) * block, c * block : (c + 1) * block] == next(colours)).all()
    painted = np.repeat(np.repeat(mask, block, 0), block, 1)[:h, :w]
    assert (out[~painted] == decoded[~painted]).all()


@pytest.mark.parametrize("value", [b"", b"\x05", b"\x01junk", b"\x01" + zlib.compress(b"\xff" * 201),
                                   b"\x01" + zlib.compress(b"\xff" * 199), b"\x01" + zlib.compress(b"\x00" * 8) + b"x"])
def test_damaged_flat_blocks_are_refused(value):
    """16x16 pixels in blocks of 2: 8 bytes of mask, then 3 bytes per set block."""
    with pytest.raises(ValueError):
        fb.unpack(value, 16, 16)


def test_a_file_carries_them_and_a_damaged_one_is_refused(tiny):
    image = photo(96, 64)
    image.paste((0, 255, 128), (0, 0, 64, 64))
    data = codec.compress(image, tiny)
    header, payloads, _ = container.unpack(data)
    assert container.TAG_FLAT_BLOCKS in dict(header.extensions)
    out = np.asarray(codec.decompress(data).image).astype(int)
    assert np.abs(out[:64, :64] - (0, 255, 128)).max() <= fb.FLAT_RANGE
    extensions = tuple((t, b"\x02xx" if t == container.TAG_FLAT_BLOCKS else v) for t, v in header.extensions)
    bad = container.pack(container.Header(**{**header.__dict__, "extensions": extensions}), payloads)
    with pytest.raises(FormatError, match="flat blocks"):
        codec.decompress(bad)


def test_an_extension_twice_or_too_large_is_refused(tiny):
    header, payloads, _ = container.unpack(codec.compress(photo(16, 16), tiny))
    twice = ((container.TAG_FLAT_BLOCKS, b"a"), (container.TAG_FLAT_BLOCKS, b"b"))
    with pytest.raises(ValueError, match="twice"):
        container.pack(container.Header(**{**header.__dict__, "extensions": twice}), payloads)
    big = ((200, bytes(container.MAX_EXTENSIONS)),)
    with pytest.raises(ValueError, match="extensions of more than"):
        container.pack(container.Header(**{**header.__dict__, "extensions": big}), payloads)

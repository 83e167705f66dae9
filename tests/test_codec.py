import numpy as np
import pytest
import torch
from PIL import Image

from conftest import photo
from vqzip import codec, container
from vqzip.errors import ModelError


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (250, 131), (8, 8), (1, 40)])
def test_round_trip_sizes(tiny, size):
    im = photo(*size)
    data = codec.compress(im, tiny)
    out = codec.decompress(data).image
    assert out.size == im.size and out.mode == "RGB"


def test_decoded_symbols_are_the_coded_ones(tiny):
    pixels = np.asarray(photo(96, 64))
    top, bottom = codec.encode_codes(tiny, pixels)
    _, _, dtop, dbottom = codec.decode_codes(codec.compress(Image.fromarray(pixels), tiny))
    assert torch.equal(dtop, top) and torch.equal(dbottom, bottom)


def test_grayscale_comes_back_grayscale(tiny):
    out = codec.decompress(codec.compress(photo(40, 24, "L"), tiny))
    assert out.image.mode == "L" and out.header.mode == "L" and out.image.size == (40, 24)


def test_rate_matches_cross_entropy(tiny):
    im = photo(256, 192)
    data = codec.compress(im, tiny)
    ideal = sum(codec.estimated_bits(tiny, im).values())
    _, streams = container.unpack(data)
    coded = 8 * sum(map(len, streams))
    assert coded <= 1.01 * ideal + 2 * 64  # each stream ends in at most two partly used words
    assert coded >= 0.99 * ideal


@pytest.mark.parametrize("enc_threads,dec_threads", [(1, 2), (2, 1), (4, 1)])
def test_exact_across_thread_counts(tiny, enc_threads, dec_threads):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(enc_threads)
        pixels = np.asarray(photo(120, 72, seed=3))
        data = codec.compress(Image.fromarray(pixels), tiny)
        top, bottom = codec.encode_codes(tiny, pixels)  # the codes compress coded
        torch.set_num_threads(dec_threads)
        _, _, dtop, dbottom = codec.decode_codes(data)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(dtop, top) and torch.equal(dbottom, bottom)


def test_file_from_another_model_names_it(tiny):
    data = bytearray(codec.compress(photo(16, 16), tiny))
    header, streams = container.unpack(bytes(data))
    forged = container.pack(container.Header(header.width, header.height, header.mode, "other-model", b"\x01" * 8,
                                             header.levels), streams)
    with pytest.raises(ModelError, match="other-model"):
        codec.decompress(forged)

"""The shipped default model, on a real photo crop (the crop is from the held-out validation
split of the training folder, never trained on)."""
import math

import numpy as np
import pytest
from PIL import Image

from conftest import ASSETS
from vqzip import codec, container, metrics, tiles, zoo
from vqzip.models import lattice_config, lattice_map

pytestmark = pytest.mark.slow  # the shipped model on real photo crops

# At the default level (9: three maps, RDO λ 0.01) vqz-l3 measured 34.73 dB at 2.07 bpp on this
# detailed crop (at level 5, the default before: 26.68 dB at 0.383 bpp), and its preview 31.58 dB
# against the crop reduced 4x (vqz-base 30.52); the floors leave room for other CPUs' float
# rounding in the VQ-VAE, not for a worse model.
PSNR_FLOOR = 34.0
PREVIEW_PSNR_FLOOR = 29.5


@pytest.fixture(scope="module")
def model():
    return zoo.load(zoo.level(None).point.model)


def test_manifest_hashes_match_the_weights():
    root = zoo.checkpoints_dir()
    for name, entry in zoo.manifest()["models"].items():
        assert zoo.sha256_file(root / entry["folder"] / "model.safetensors") == entry["sha256"], name
        assert (root / entry["folder"] / "MODEL_CARD.md").is_file()


def test_end_to_end_on_a_photo_crop(model):
    with Image.open(ASSETS / "photo.png") as im:
        im = im.convert("RGB")
    data = codec.compress(im, model, zoo.level(None).point)
    header, streams, _ = container.unpack(data)
    assert header.model_hash == model.hash8
    decoded = codec.decompress(data)
    out = decoded.image
    assert out.size == im.size and out.mode == "RGB"
    mse = np.mean((np.asarray(out, dtype=np.float64) - np.asarray(im, dtype=np.float64)) ** 2)
    psnr = 10 * math.log10(255**2 / mse)
    assert psnr > PSNR_FLOOR
    bpp = 8 * len(data) / (im.width * im.height)
    assert 1.0 < bpp < 3.0
    # the coded streams are the priors' cross-entropy within 1%, plus at most 2 words a stream
    ideal = sum(codec.estimated_bits(model, decoded.codes, container.anchor_of(header)).values())
    assert 8 * sum(map(len, streams)) <= 1.01 * ideal + 2 * 64


def test_preview_on_a_photo_crop(model):
    """The top level alone gives a recognisable quarter-size image (a flat image of the crop's
    mean colour scores 17.1 dB, mid-gray 11.0 dB)."""
    with Image.open(ASSETS / "photo.png") as im:
        im = im.convert("RGB")
    out = codec.preview(codec.compress(im, model, zoo.level(None).point)).image
    assert out.size == container.preview_size(*im.size, 4) and out.mode == "RGB"
    assert metrics.preview_psnr(np.asarray(out), np.asarray(im)) > PREVIEW_PSNR_FLOOR


@pytest.mark.parametrize("name", sorted(zoo.manifest()["models"]))
def test_decoder_reach_fits_the_decode_margin(name):
    """The decoder runs over tiles with DECODE_MARGIN pixels of context, which joins them without
    seams only if no code changes the output farther than that beyond its own pixels: change one
    code of each map at the centre of a map (a lattice map's symbols there, at its middle anchor)
    and see where the float output moves."""
    net = zoo.load(name).net
    lattice, fine = lattice_config(net), lattice_map(net.maps)
    anchor = None if lattice is None else (len(lattice.anchors) - 1) / 2
    gen = np.random.default_rng(0)
    side = 96  # image pixels: the centre code's reach, if within the margin, stays on the image
    codes = [gen.integers(0, m.num_codes, (1, *([m.channels] if k == fine else []), side // m.stride, side // m.stride))
             for k, m in enumerate(net.maps)]
    ref = net.decode(codes, anchor)
    for k, m in enumerate(net.maps):
        changed = [c.copy() for c in codes]
        y = x = side // m.stride // 2
        changed[k][0, ..., y, x] = (changed[k][0, ..., y, x] + 1) % m.num_codes
        moved = np.argwhere(np.abs(net.decode(changed, anchor) - ref).sum((0, 1)))  # (n, 2): rows, columns
        assert len(moved), m.name
        first, last = y * m.stride, y * m.stride + m.stride - 1  # the code's own pixels, each way
        reach = max(first - int(moved.min()), int(moved.max()) - last)
        assert reach <= tiles.DECODE_MARGIN, (m.name, reach)

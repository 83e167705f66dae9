"""The library API and the Pillow plugin."""
import numpy as np
import pytest
from PIL import Image

import vqzip
from conftest import photo
from vqzip import zoo


def test_compress_decompress_round_trip(tiny):
    im = photo(40, 24)
    data = vqzip.compress(im)
    out = vqzip.decompress(data)
    assert isinstance(data, bytes) and out.size == (40, 24) and out.mode == "RGB"
    assert len(vqzip.compress(im, quality=1)) < len(data)  # level 1 codes at half the scale


def test_the_model_is_loaded_once(tiny):
    assert zoo.load("tiny") is zoo.load("tiny")


def test_file_helpers_keep_inputs_and_refuse_overwrites(tiny, tmp_path):
    photo(30, 20).save(tmp_path / "a.png")
    vqz = vqzip.compress_file(tmp_path / "a.png")
    assert vqz == tmp_path / "a.vqz" and (tmp_path / "a.png").exists()
    with pytest.raises(vqzip.VqzError, match="already exists"):
        vqzip.compress_file(tmp_path / "a.png")
    out = vqzip.decompress_file(vqz, tmp_path / "b.webp")
    with Image.open(out) as im:
        assert im.format == "WEBP" and im.size == (30, 20)


@pytest.mark.parametrize("target", [{"bpp": 1e9}, {"bpp": 1e-9}, {"psnr": 0.0}, {"psnr": 1e9}])
def test_targets_pick_the_level_by_measurement(tiny, target):
    im = photo(48, 32)
    choice = vqzip.compress_to_target(im, **target)
    sizes = {lv.quality: len(vqzip.compress(im, lv.quality)) for lv in vqzip.levels()}
    assert choice.data == vqzip.compress(im, choice.quality)
    if "bpp" in target:  # the highest level within the rate; else the lowest, flagged
        within = [q for q, n in sizes.items() if 8 * n / (48 * 32) <= target["bpp"]]
        assert choice.quality == (max(within) if within else min(sizes)) and choice.met == bool(within)
    else:  # the lowest level reaching the PSNR; else the highest, flagged
        assert choice.quality == (min(sizes) if target["psnr"] == 0 else max(sizes))
        assert choice.met == (target["psnr"] == 0) and choice.psnr is not None


def test_pillow_opens_and_saves_vqz(tiny, tmp_path):
    im = photo(36, 28, "RGBA")
    im.save(tmp_path / "p.vqz", quality=2)
    with Image.open(tmp_path / "p.vqz") as back:
        assert back.format == "VQZ" and back.size == (36, 28) and back.mode == "RGBA"
        pixels = np.asarray(back)
    assert np.array_equal(pixels, np.asarray(vqzip.decompress(tmp_path / "p.vqz")))
    assert np.array_equal(pixels[..., 3], np.asarray(im)[..., 3])  # alpha lossless
    assert Image.registered_extensions()[".vqz"] == "VQZ"


def test_multi_frame_file_by_path(tiny, tmp_path):
    """The file stays open while coding: its first frame can be sought."""
    frames = [photo(18, 14, seed=s).convert("P") for s in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(vqzip.VqzWarning, match="3 frames"):
        data = vqzip.compress(tmp_path / "a.gif")
    assert vqzip.decompress(data).size == (18, 14)

"""A lattice model (issue 35) as the codec runs it: exported from a lattice run into a model
folder the zoo loads (conftest's lattice_folder), its integer gains checked at load."""
import json

import numpy as np
import pytest

from conftest import photo
from vqzip import zoo
from vqzip.errors import ModelError


def test_a_lattice_run_exports_to_a_model_folder_the_zoo_loads(lattice_folder):
    model = zoo.load_folder(lattice_folder)
    cfg = json.loads((lattice_folder / "config.json").read_text())
    assert [p.get("kind", "pixelcnn") for p in cfg["priors"]] == ["pixelcnn", "pixelcnn", "gaussian"]
    assert cfg["net"]["fine_quantizer"]["kind"] == "lattice" and model.maps[2].channels == 4
    init = zoo.load_folder(lattice_folder.parent.parent / "init")
    for k in (0, 1):  # the coarse priors are the init's, as they are
        assert np.array_equal(model.priors[k].cfg.num_codes, init.priors[k].cfg.num_codes)
    from safetensors.numpy import load_file
    tensors, kept = load_file(str(lattice_folder / "model.safetensors")), load_file(
        str(lattice_folder.parent.parent / "init" / "model.safetensors"))
    assert all(np.array_equal(v, kept[k]) for k, v in tensors.items() if k.startswith(("prior.0.", "prior.1.")))
    assert tensors["lattice.log2_gain"].dtype == np.int32 and tensors["lattice.log2_gain"].shape == (7, 4)
    assert np.array_equal(tensors["lattice.log2_gain"], model.net.quantizers[2].fixed)


def test_a_damaged_integer_gain_is_refused_at_load(lattice_folder, tmp_path):
    from safetensors.numpy import load_file, save_file
    import shutil

    copy = tmp_path / "lat"
    shutil.copytree(lattice_folder, copy)
    tensors = load_file(str(copy / "model.safetensors"))
    tensors["lattice.log2_gain"][3, 1] += 1
    save_file(tensors, str(copy / "model.safetensors"))
    with pytest.raises(ModelError, match="integer gains"):
        zoo.load_folder(copy)
    del tensors["lattice.log2_gain"]
    save_file(tensors, str(copy / "model.safetensors"))
    with pytest.raises(ModelError, match="integer gains"):
        zoo.load_folder(copy)


@pytest.fixture(scope="module")
def lattice_model(lattice_folder) -> zoo.CodecModel:
    return zoo.load_folder(lattice_folder)


def _point(model, **knobs):
    from vqzip.operating_point import OperatingPoint

    return OperatingPoint(model.name, **knobs)


def test_a_lattice_file_round_trips_its_code_maps_bit_for_bit_at_its_size(lattice_model):
    from fractions import Fraction

    from vqzip import codec, container

    image = photo(61, 45, seed=7)
    pixels = np.asarray(image)
    sizes = {}
    for anchor in (Fraction(0), Fraction(5, 2), Fraction(6)):
        data = codec.compress(image, lattice_model, _point(lattice_model, anchor=anchor))
        header, streams, _ = container.unpack(data)
        assert container.anchor_of(header) == anchor
        decoded = codec.decompress(data, lattice_model)
        codes = codec.encode_codes(lattice_model.net, pixels, anchor=anchor)
        assert codes[2].shape == (4, 24, 32) and header.maps[2] == (24, 32)
        assert len(decoded.codes) == 3 and all(np.array_equal(a, b) for a, b in zip(decoded.codes, codes))
        assert decoded.image.size == image.size
        shown = codec.decode_pixels(lattice_model.net, codes, 61, 45, anchor=anchor)
        assert shown.shape == (45, 61, 3)
        bits = codec.estimated_bits(lattice_model, decoded.codes, anchor)
        for (name, b), stream in zip(bits.items(), streams):  # the range coder's overhead: a word and a little
            assert b <= 8 * len(stream) <= 1.03 * b + 64, (name, b, len(stream))
        sizes[anchor] = len(streams[2])
    assert sizes[Fraction(0)] < sizes[Fraction(5, 2)] < sizes[Fraction(6)]  # finer steps, more bits


def test_lattice_codes_join_across_tiles(lattice_model):
    from vqzip import codec

    pixels = np.asarray(photo(61, 45, seed=3))
    whole = codec.encode_codes(lattice_model.net, pixels, anchor=3)
    tiled = codec.encode_codes(lattice_model.net, pixels, anchor=3, tile=(16, 24))  # context covers each: the same codes
    assert all(np.array_equal(a, b) for a, b in zip(whole, tiled))


def test_a_lattice_point_is_checked_and_what_it_cannot_do_is_refused(lattice_model, tiny):
    from fractions import Fraction

    from vqzip import codec

    image = photo(32, 24)
    with pytest.raises(ValueError, match="gives none"):
        codec.compress(image, lattice_model)
    with pytest.raises(ValueError, match="RDO"):
        codec.compress(image, lattice_model, _point(lattice_model, anchor=Fraction(1), lam=0.01))
    with pytest.raises(ValueError, match="skipped"):
        codec.compress(image, lattice_model, _point(lattice_model, anchor=Fraction(1), skip=50.0))
    with pytest.raises(ValueError, match="outside"):
        codec.compress(image, lattice_model, _point(lattice_model, anchor=Fraction(7)))
    with pytest.raises(ValueError, match="steps"):
        codec.compress(image, lattice_model, _point(lattice_model, anchor=Fraction(1, 3)))
    with pytest.raises(ValueError, match="no lattice"):
        codec.compress(image, tiny, _point(tiny, anchor=Fraction(1)))
    coarse = codec.decompress(codec.compress(image, lattice_model, _point(lattice_model, maps=2)), lattice_model)
    assert len(coarse.codes) == 2  # the coarse maps alone need no anchor


def test_a_lattice_file_without_its_anchor_or_with_a_bad_one_is_refused(lattice_model):
    from dataclasses import replace
    from fractions import Fraction

    from vqzip import codec, container
    from vqzip.errors import FormatError

    data = codec.compress(photo(32, 24), lattice_model, _point(lattice_model, anchor=Fraction(2)))
    header, streams, alpha = container.unpack(data)
    others = tuple(e for e in header.extensions if e[0] != container.TAG_LATTICE_ANCHOR)
    for extensions, match in ((others, "without its rate anchor"),
                              (others + ((container.TAG_LATTICE_ANCHOR, b"\x01"),), "2 expected"),
                              (others + ((container.TAG_LATTICE_ANCHOR, container.pack_anchor(Fraction(9))),), "outside")):
        bad = container.pack(replace(header, extensions=extensions), streams, alpha)
        with pytest.raises(FormatError, match=match):
            codec.decompress(bad, lattice_model)


def test_a_manifest_level_carries_a_lattice_anchor(lattice_folder, monkeypatch):
    from fractions import Fraction

    from vqzip.training import set_ladder

    root = lattice_folder.parent
    set_ladder(root, {"1": {"model": "lat", "scale": "1", "anchor": "5/2"}, "2": {"model": "lat", "scale": "1", "maps": 2}}, 1)  # 2: no lattice map coded
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    levels = zoo.levels()
    assert [lv.point.anchor for lv in levels] == [Fraction(5, 2), None]
    with pytest.raises(ModelError, match="levels.1.anchor"):
        set_ladder(root, {"1": {"model": "lat", "scale": "1", "anchor": "-1"}}, 1)
    with pytest.raises(ModelError, match="levels.1.anchor"):
        set_ladder(root, {"1": {"model": "lat", "scale": "1", "anchor": 2.5}}, 1)


def test_one_lookup_finds_a_models_lattice_map_and_config_in_either_network(lattice_model, lattice_folder, tiny):
    from vqzip import models

    assert models.lattice_map(lattice_model.maps) == 2 and models.lattice_map(tiny.maps) is None
    assert models.lattice_config(tiny.net) is None
    torch_net = models.build("vqvae2", json.loads((lattice_folder / "config.json").read_text())["net"])
    for net in (lattice_model.net, torch_net):  # the codec's numpy network and training's torch one
        cfg = models.lattice_config(net)
        assert cfg.channels == 4 and len(cfg.anchors) == 7


def test_an_anchor_is_refused_alike_by_the_api_and_the_codec(lattice_model, tiny):
    """One check (`codec.check_anchor`): the API's VqzError says what the codec's ValueError says."""
    from fractions import Fraction

    from vqzip import api, codec
    from vqzip.errors import VqzError

    for model, anchor in ((lattice_model, Fraction(7)), (lattice_model, Fraction(1, 3)), (tiny, Fraction(1))):
        with pytest.raises(ValueError) as by_codec:
            codec.compress(photo(32, 24), model, _point(model, anchor=anchor))
        with pytest.raises(VqzError) as by_api:
            api.model_point(model, anchor)
        assert str(by_api.value) == str(by_codec.value) and model.name in str(by_api.value)
    assert api.model_point(lattice_model).anchor == 3 == codec.check_anchor(lattice_model, Fraction(3))

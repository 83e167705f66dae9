"""A lattice model (issue 35) as the codec runs it: exported from a lattice run into a model
folder the zoo loads, its integer gains checked at load."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, TINY_NET, photo, tiny_model
from vqzip import zoo
from vqzip.errors import ModelError, VqzError
from vqzip.models.configs import LatticeConfig
from vqzip.priors.pixelcnn import PixelCNNConfig

SMALL = LatticeConfig(channels=4, max_symbol=5)
FINE_INIT = {"arch": "vqvae2", "net": {**TINY_NET, "fine_stages": 1, "fine_codes": 16},
             "priors": TINY["priors"] + [PixelCNNConfig(num_codes=16, channels=16, first_kernel=3, blocks=1,
                                                        conds=((16, 4), (32, 2)), cond_channels=8).to_dict()]}


@pytest.fixture(scope="module")
def lattice_folder(tmp_path_factory) -> Path:
    """A tiny model with a fine VQ level (the init, its folder), a lattice trained on it for
    two steps, and that lattice exported as model 'lat' in a checkpoints folder."""
    from vqzip.training import TrainConfig
    from vqzip.training.commands import export_model
    from vqzip.training.lattice import train_lattice

    root = tmp_path_factory.mktemp("lattice-codec")
    images = root / "images"
    images.mkdir()
    for k in range(4):
        photo(64, 48, seed=k).save(images / f"im{k}.png")
    init = tiny_model(FINE_INIT, root, "init")
    train_lattice(images, root / "run", init, SMALL,
                  TrainConfig(steps=2, batch=2, crop=32, warmup=1, precision="fp32"), val_every=10)
    folder, entry, _ = export_model(root / "run", "lat", data=images, checkpoints=root / "checkpoints")
    return folder


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

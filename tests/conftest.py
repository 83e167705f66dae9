"""Fixtures: a tiny randomly initialised model in a temporary checkpoints folder, a tiny lattice
model trained for two steps and exported, and images.

Round trips, causality and coding exactness do not need trained weights; only
tests/test_shipped.py uses the shipped model."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vqzip.models.configs import LatticeConfig
from vqzip.priors.pixelcnn import PixelCNNConfig
from vqzip import priors, training, zoo
from vqzip.training import onnx_export

ASSETS = Path(__file__).parent / "assets"

TINY_NET = dict(channels=16, code_dim=8, top_codes=16, bottom_codes=32, res_blocks=1, decoder_res_blocks=1)
TINY = {
    "arch": "vqvae2",
    "net": TINY_NET,
    "priors": [PixelCNNConfig(num_codes=16, channels=16, first_kernel=3, blocks=1).to_dict(),
               PixelCNNConfig(num_codes=32, channels=16, first_kernel=3, blocks=2, conds=((16, 2),), cond_channels=8).to_dict()],
}


def tiny_model(cfg: dict, root: Path, name: str) -> Path:
    """A randomly initialised model of config `cfg` in root/name, its priors calibrated on random
    maps, with its ONNX graphs (the codec runs them by default)."""
    torch.manual_seed(0)
    net, prior_cfgs = zoo.build(cfg)
    rng = np.random.default_rng(0)
    maps = [[rng.integers(0, m.num_codes, (6 * 8 // m.stride, 8 * 8 // m.stride)) for m in net.maps] for _ in range(4)]
    fixed = training.fixed_point_priors([priors.float_prior(c) for c in prior_cfgs], net.maps, maps)
    folder = zoo.save_folder(root / name, zoo.model_tensors(net, fixed), {"name": name, **cfg})
    onnx_export.write_graphs(net, folder)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    """A checkpoints folder holding one tiny model, 'tiny', as quality 1 (scale 1/2) and quality 2
    (scale 1, the default)."""
    root = tmp_path_factory.mktemp("checkpoints")
    tiny_model(TINY, root, "tiny")
    training.register(root, "tiny", [Fraction(1, 2), Fraction(1)], default_scale=Fraction(1))
    return root


@pytest.fixture()
def tiny(tiny_checkpoints, monkeypatch) -> zoo.CodecModel:
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(tiny_checkpoints))
    return zoo.load("tiny")


LATTICE_SMALL = LatticeConfig(channels=4, max_symbol=5)
FINE_INIT = {"arch": "vqvae2", "net": {**TINY_NET, "fine_stages": 1, "fine_codes": 16},
             "priors": TINY["priors"] + [PixelCNNConfig(num_codes=16, channels=16, first_kernel=3, blocks=1,
                                                        conds=((16, 4), (32, 2)), cond_channels=8).to_dict()]}


@pytest.fixture(scope="session")
def lattice_folder(tmp_path_factory) -> Path:
    """A tiny model with a fine VQ level (the init, its folder), a lattice trained on it for
    two steps, and that lattice exported as model 'lat' in a checkpoints folder (tests that set its
    ladder set the whole of it)."""
    from vqzip.training import TrainConfig
    from vqzip.training.commands import export_model
    from vqzip.training.lattice import train_lattice

    root = tmp_path_factory.mktemp("lattice-codec")
    images = root / "images"
    images.mkdir()
    for k in range(4):
        photo(64, 48, seed=k).save(images / f"im{k}.png")
    init = tiny_model(FINE_INIT, root, "init")
    train_lattice(images, root / "run", init, LATTICE_SMALL,
                  TrainConfig(steps=2, batch=2, crop=32, warmup=1, precision="fp32"), val_every=10)
    folder, entry, validation = export_model(root / "run", "lat", data=images, checkpoints=root / "checkpoints")
    assert entry["validation"] == validation and validation["images"] == 1
    assert list(validation["anchors"]) == ["0", "3", "6"]
    bpp = [validation["anchors"][a]["estimated_bpp"] for a in ("0", "3", "6")]
    assert 0 < bpp[0] < bpp[1] < bpp[2] and all(r["psnr"] > 0 for r in validation["anchors"].values())
    return folder


def photo(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A crop of the shipped test photo (tiled if the size asks for more)."""
    with Image.open(ASSETS / "photo.png") as im:
        px = np.asarray(im.convert("RGB"))
    reps = (-(-height // px.shape[0]), -(-width // px.shape[1]), 1)
    px = np.tile(px, reps)
    y = np.random.default_rng(seed).integers(px.shape[0] - height + 1)
    return Image.fromarray(np.ascontiguousarray(px[y : y + height, :width])).convert(mode)

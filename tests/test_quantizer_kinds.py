"""Quantizer kinds (`vqzip.models.quantizers`): a network config names its latents' kind, the EMA
VQ by default, and a kind added beside it (product quantization, `vqzip/models/product_vq.py`)
trains, saves, loads and codes through the same protocol."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, TINY_NET, photo, tiny_model
from vqzip import codec, models, zoo
from vqzip.models import quantizers
from vqzip.models.product_vq import ProductConfig, ProductVQ
from vqzip.models.configs import VQConfig
from vqzip.operating_point import OperatingPoint

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
PRODUCT_NET = {**TINY_NET, "bottom_stages": 2, "quantizer": {"kind": "product"}}


@pytest.mark.parametrize("name", ["vqz-base", "vqz-l3"])
def test_a_net_config_without_a_quantizer_is_the_vq_and_writes_back_as_it_was(name):
    net = json.loads((CHECKPOINTS / name / "config.json").read_text())["net"]
    cfg = models.VQVAE2.Config.from_dict(net)
    assert type(cfg.quantizer) is VQConfig and cfg.quantizer.rate == net.get("rate", 0.0)
    written = cfg.to_dict()
    assert "quantizer" not in written and {k: written[k] for k in net} == net  # the fields it had, as they were
    assert models.VQVAE2.Config.from_dict(written) == cfg


def test_another_kind_is_named_and_its_fields_kept_apart():
    cfg = models.VQVAE2.Config.from_dict({**TINY_NET, "quantizer": {"kind": "product", "decay": 0.9}})
    assert cfg.quantizer == ProductConfig(decay=0.9)
    written = cfg.to_dict()
    assert written["quantizer"] == {"kind": "product", "commitment": 0.25, "decay": 0.9}
    assert "decay" not in written and models.VQVAE2.Config.from_dict(written) == cfg
    with pytest.raises(ValueError, match="unknown quantizer kind 'scalar'; known: lattice, product, vq"):
        models.build("vqvae2", {**TINY_NET, "quantizer": {"kind": "scalar"}})
    with pytest.raises(TypeError):  # the default kind's fields beside another kind's: not one config
        models.build("vqvae2", {**TINY_NET, "decay": 0.9, "quantizer": {"kind": "product"}})


def test_the_product_quantizer_searches_the_pairs_of_its_halves():
    """32 codes from 4 + 8 half vectors: the nearest code is the nearest pair, and the codec's
    candidates (its numpy codebook's) are every code's squared distance, least first, as a
    search over all 32 vectors gives them."""
    from vqzip.inference.codebooks import ProductCodebook

    torch.manual_seed(0)
    vq = ProductVQ(32, 6).train()
    z = torch.randn(2, 6, 5, 7)
    for _ in range(3):
        vq(z)  # the EMA codebooks move
    vq.eval()
    every = vq.lookup(torch.arange(32).view(1, 1, 32))[0, :, 0].t()  # (32, 6): each code's vector
    assert every.shape == (32, 6) and len({tuple(v.tolist()) for v in every}) == 32
    flat = z.permute(0, 2, 3, 1).reshape(-1, 6)
    brute = (flat[:, None] - every[None]).pow(2).sum(2)  # (positions, 32)
    assert torch.equal(vq.indices(z).flatten(), brute.argmin(1))
    book = ProductCodebook(vq.halves[0].embed.numpy(), vq.halves[1].embed.numpy())
    dist, idx = (torch.from_numpy(a) for a in book.nearest(flat.numpy(), 32))
    assert torch.allclose(dist, brute.sort(1).values, atol=1e-5)
    assert torch.allclose(brute.gather(1, idx), dist, atol=1e-5) and torch.equal(idx[:, 0], brute.argmin(1))
    zq, codes, loss = vq(z)
    assert torch.equal(codes, vq.indices(z)) and torch.allclose(zq, vq.lookup(codes))
    assert torch.isclose(loss, 0.25 * (z - zq).pow(2).mean())
    with pytest.raises(ValueError, match="a number of codes with a factor"):
        ProductVQ(31, 6)


def test_a_product_model_trains_and_codes_bit_exactly(tmp_path):
    """A tiny network of product quantizers, two residual stages at the bottom: a training step
    moves its codebooks; saved and loaded as any model, it codes an image, nearest and with RDO,
    and the file decodes to the codes the encoder chose."""
    torch.manual_seed(0)
    net = models.build("vqvae2", PRODUCT_NET).train()
    assert all(isinstance(s, ProductVQ) for q in net.quantizers for s in q.stages) and len(net.maps) == 3
    before = net.vq_b.stages[1].halves[1].embed.clone()
    out = net(net.normalize(torch.from_numpy(np.asarray(photo(32, 32)).transpose(2, 0, 1).copy()).float()[None]))
    (out["x_hat"].pow(2).mean() + out["vq_loss"]).backward()
    assert not torch.equal(net.vq_b.stages[1].halves[1].embed, before)
    assert "vq_b.stages.1.halves.0.embed" in net.state_dict()

    cfg = {**TINY, "net": PRODUCT_NET,
           "priors": [models.prior_config(net.maps, k, channels=16, first_kernel=3, blocks=1).to_dict() for k in range(3)]}
    model = zoo.load_folder(tiny_model(cfg, tmp_path, "tiny-product"))
    assert json.loads((tmp_path / "tiny-product" / "config.json").read_text())["net"]["quantizer"] == {"kind": "product"}
    image = photo(40, 24, seed=5)
    data = codec.compress(image, model)
    _, _, decoded, _ = codec.decode_codes(data, model)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, codec.encode_codes(model.net, np.asarray(image))))
    rdo = codec.compress(image, model, OperatingPoint(model.name, lam=0.05))  # RDO's candidates: the kind's `nearest`
    _, _, chosen, _ = codec.decode_codes(rdo, model)
    assert len(chosen) == 3 and codec.decompress(rdo, model).image.size == (40, 24)

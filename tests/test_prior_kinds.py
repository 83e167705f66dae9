"""Prior kinds (`vqzip.priors.registry`): config.json names a map's kind, PixelCNN by default, and
a kind added beside it (the factorized prior, `priors/factorized.py`) trains, exports, loads and
codes through the same protocol."""
import json

import numpy as np
import pytest
import torch

from conftest import TINY, TINY_NET, photo
from vqzip import codec, models, priors, training, zoo
from vqzip.errors import VqzError
from vqzip.operating_point import OperatingPoint
from vqzip.priors.factorized import FactorizedConfig, FixedFactorized
from vqzip.priors.pixelcnn import PixelCNNConfig


def test_a_config_without_a_kind_is_a_pixelcnn_and_stays_as_it_was():
    for d in TINY["priors"]:
        cfg = priors.config_from_dict(d)
        assert isinstance(cfg, PixelCNNConfig) and priors.config_to_dict(cfg) == d  # no "kind" written
    f = priors.config_from_dict({"kind": "factorized", "num_codes": 16, "conds": [[8, 2]]})
    assert f == FactorizedConfig(16, ((8, 2),))
    assert priors.config_to_dict(f) == {"kind": "factorized", "num_codes": 16, "conds": ((8, 2),)}
    with pytest.raises(ValueError, match="unknown prior kind 'mixture'; known: factorized, gaussian, pixelcnn"):
        priors.config_from_dict({"kind": "mixture", "num_codes": 16})


def test_the_factorized_walk_is_raster_order_over_its_counts_skipping_out():
    prior = FixedFactorized(FactorizedConfig(4), {"counts": torch.tensor([1, 2, 3, 4], dtype=torch.int32)})
    codes = torch.tensor([[0, 1, 2], [3, 4, 1]])  # 4: OUT, never coded
    seen = []

    def step(probs, rows, cols):
        assert (probs == [1, 2, 3, 4]).all()
        seen.extend(zip(rows.tolist(), cols.tolist()))
        return codes[rows, cols].numpy()

    assert np.array_equal(prior.walk(2, 3, step, skip=codes == 4), codes)
    assert seen == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)]
    assert [int(s) for _, symbols in prior.teacher_forced(codes) for s in symbols] == [0, 1, 2, 3, 1]
    with pytest.raises(ValueError, match="counts must be 4 integers >= 1"):
        FixedFactorized(FactorizedConfig(4), {"counts": torch.tensor([0, 2, 3, 4], dtype=torch.int32)})


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    for k in range(3):  # index 0 is held out for validation
        photo(48, 32, seed=k).save(folder / f"im{k}.png")
    return folder


def test_a_factorized_model_trains_exports_and_codes_bit_exactly(images, tmp_path):
    """The example kind end to end: phase II fits its logits, export calibrates them to counts,
    the model folder loads and a file decodes to the codes the encoder chose."""
    run = tmp_path / "run"
    small = dict(batch=2, crop=32, log_every=1, warmup=1)
    training.train_vqvae(images, run, "vqvae2", TINY_NET, training.TrainConfig(steps=1, **small))
    maps = training.load_net(run).maps
    cfgs = training.prior_configs(maps, "factorized")
    before = training.train_prior(images, run, cfgs, training.TrainConfig(steps=3, lr=0.1, **small))
    assert before["steps_done"] == 3
    folder = training.export(run, tmp_path / "ckpt" / "fact")
    config = json.loads((folder / "config.json").read_text())
    assert [p["kind"] for p in config["priors"]] == ["factorized"] * len(maps)
    model = zoo.load_folder(folder)
    assert all(isinstance(p, FixedFactorized) for p in model.priors)
    assert not all(bool((p.row == p.row[0]).all()) for p in model.priors)  # trained away from uniform

    pixels = np.asarray(photo(40, 24, seed=5))
    data = codec.compress(photo(40, 24, seed=5), model)
    _, _, decoded, _ = codec.decode_codes(data, model)
    assert all(np.array_equal(a, b) for a, b in zip(decoded, codec.encode_codes(model.net, pixels)))
    rdo = codec.compress(photo(40, 24, seed=5), model, OperatingPoint(model.name, lam=0.05))  # RDO walks the same protocol
    assert codec.decompress(rdo, model).image.size == (40, 24)


def test_a_pixelcnn_run_cannot_start_a_factorized_prior(images, tmp_path):
    """--init across kinds is refused in one line: nothing can be cut from another kind."""
    run = tmp_path / "run"
    small = dict(batch=2, crop=32, log_every=1, warmup=1)
    training.train_vqvae(images, run, "vqvae2", TINY_NET, training.TrainConfig(steps=1, **small))
    maps = training.load_net(run).maps
    pixel = [models.prior_config(maps, k, channels=8, first_kernel=3, blocks=1, cond_channels=4) for k in range(len(maps))]
    training.train_prior(images, run, pixel, training.TrainConfig(steps=1, **small))
    other = tmp_path / "other"
    other.mkdir()
    for f in ("vqvae.safetensors", "vqvae.json"):
        (other / f).write_bytes((run / f).read_bytes())
    with pytest.raises(VqzError, match="no prior of this kind can be cut from it"):
        training.train_prior(images, other, training.prior_configs(maps, "factorized"), training.TrainConfig(steps=1, **small),
                             init=run)



# Run where torch cannot be imported: every config of the shipped model from its config.json and
# back, its first two priors' exact forms from its tensors walked over known codes, a factorized walk.
WITHOUT_TORCH = """
import json, sys
import numpy as np
from safetensors.numpy import load_file
from vqzip import priors
folder = sys.argv[1]
dicts = json.load(open(folder + "/config.json"))["priors"]
cfgs = [priors.config_from_dict(d) for d in dicts]
assert json.loads(json.dumps([priors.config_to_dict(c) for c in cfgs])) == dicts
tensors = load_file(folder + "/model.safetensors")
part = lambda k: {n[len(f"prior.{k}."):]: v for n, v in tensors.items() if n.startswith(f"prior.{k}.")}
codes = np.random.default_rng(0).integers(0, 512, (2, 6, 8))
rows = 0
for k in range(2):
    prior = priors.exact_prior(cfgs[k], part(k))
    rows += sum(len(p) for p, _ in prior.teacher_forced(codes[k], [codes[0][:3, :4]] if k else []))
fact = priors.exact_prior(priors.config_from_dict({"kind": "factorized", "num_codes": 4}), {"counts": np.array([1, 2, 3, 4])})
assert fact.walk(1, 3, lambda p, r, c: np.zeros(len(r), np.int64)).tolist() == [[0, 0, 0]]
print(rows, sorted(m for m in sys.modules if m.startswith("torch")))
"""


@pytest.mark.slow  # a process of its own
def test_configs_and_exact_priors_need_no_torch():
    """The registry, every kind's config and the exact forms (what the codec reads and walks)
    work in a process where torch cannot be imported."""
    from blocked import run_without

    done = run_without(["torch"], ["-c", WITHOUT_TORCH, str(zoo.checkpoints_dir() / "vqz-l3")])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["96", "[]"]

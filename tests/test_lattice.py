"""The lattice fine latent (issue 35; `vqzip.models.lattice`): its quantizer, a VQ-VAE with it as
its fine latent, the numpy side that runs it, its ONNX graphs, and its training command."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_NET
from vqzip import models
from vqzip.inference.codebooks import LatticeCodebook
from vqzip.inference.torch_graphs import torch_network
from vqzip.models.configs import LatticeConfig, VQVAE2Config
from vqzip.models.lattice import LatticeQuantizer

CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
SMALL = LatticeConfig(channels=4, max_symbol=5)
LATTICE_NET = {**TINY_NET, "fine_stages": 1, "fine_codes": SMALL.num_codes,
               "fine_quantizer": {"kind": "lattice", **SMALL.to_dict()}}


def trained_gains(q: LatticeQuantizer) -> None:
    """Gains apart per channel and between anchors, as training leaves them."""
    with torch.no_grad():
        q.log2_gain.add_(torch.randn_like(q.log2_gain) * 0.3)


def test_the_config_round_trips_and_the_shipped_configs_read_as_they_were():
    cfg = VQVAE2Config.from_dict(LATTICE_NET)
    assert cfg.fine_quantizer == SMALL and cfg.maps()[2].channels == 4 and cfg.maps()[2].num_codes == 11
    assert not cfg.maps()[2].skippable
    written = cfg.to_dict()
    assert written["fine_quantizer"] == {"kind": "lattice", "channels": 4, "max_symbol": 5,
                                         "anchors": [0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256]}
    assert VQVAE2Config.from_dict(json.loads(json.dumps(written))) == cfg
    for name in ("vqz-base", "vqz-l3"):
        net = json.loads((CHECKPOINTS / name / "config.json").read_text())["net"]
        back = VQVAE2Config.from_dict(net)
        assert back.fine_quantizer is None and back.to_dict() == {**back.to_dict(), **net}
        assert "fine_quantizer" not in back.to_dict() and all(m.channels == 1 for m in back.maps())
    with pytest.raises(ValueError, match="fine latent only"):
        VQVAE2Config.from_dict({**TINY_NET, "quantizer": {"kind": "lattice"}})
    with pytest.raises(ValueError, match="fine_codes, not 512"):
        VQVAE2Config.from_dict({**LATTICE_NET, "fine_codes": 512})
    with pytest.raises(ValueError, match="increasing anchors"):
        LatticeConfig(anchors=(0.1, 0.05))


def test_fixed_gains_and_fractional_anchors_are_integers_between_the_anchors():
    cfg = LatticeConfig(channels=2, anchors=(0.01, 0.02, 0.04))
    fixed = cfg.fixed_gains([[1.0, 0.5], [1.5, -0.25], [2.0, 0.0]])
    assert fixed == [[4096, 2048], [6144, -1024], [8192, 0]]
    assert cfg.gains_at(fixed, 1) == ([6144, -1024], [2.0 ** 1.5, 2.0 ** -0.25])
    assert cfg.gains_at(fixed, 0.5)[0] == [5120, 512] and cfg.gains_at(fixed, 2)[0] == [8192, 0]
    assert cfg.gains_at(fixed, 1.25)[0] == [6144 + 512, -1024 + 256]
    with pytest.raises(ValueError, match="outside 0..2"):
        cfg.gains_at(fixed, 2.5)


def test_the_quantizer_rounds_straight_through_and_its_codes_decode_as_the_codec_decodes():
    torch.manual_seed(0)
    q = LatticeQuantizer(SMALL)
    trained_gains(q)
    z = torch.randn(2, 4, 5, 6) * 4
    for anchor in (0, 2.5, 6):
        q.train()
        zz = z.clone().requires_grad_(True)
        y_hat, (codes,), loss = q(zz, anchor=anchor)
        assert codes.shape == (2, 4, 5, 6) and codes.min() >= 0 and codes.max() <= 10 and loss == 0
        assert codes.min() == 0 and codes.max() == 10  # clipped at ±L: z reaches past it
        y_hat.sum().backward()
        assert torch.allclose(zz.grad, torch.ones_like(z)) and q.log2_gain.grad is not None  # straight through
        q.log2_gain.grad = None
        noisy = q.noisy(z, anchor=anchor)
        assert (noisy - z * q.gain(anchor)).abs().max() <= 0.5
        q.eval()
        y_hat, (codes,), _ = q(z, anchor=anchor)
        assert torch.equal(codes, q.residual_indices(z, anchor=anchor)[0])
        assert torch.equal(y_hat, q.lookup([codes], anchor=anchor))
        inside = codes.gt(0) & codes.lt(10)
        step = 1 / q.gain(anchor).expand_as(z)
        assert ((y_hat - z).abs() <= step / 2 + 1e-6)[inside].all()
        book = LatticeCodebook(SMALL, q.log2_gain.detach().numpy())  # the codec's numpy codebook
        assert np.array_equal(book.residual_indices(z.numpy(), anchor=anchor)[0], codes.numpy())
        assert np.array_equal(book.lookup([codes.numpy()], anchor=anchor), y_hat.numpy())
        assert np.array_equal(book.log2_gains(anchor), (q.log2_gain_at(anchor) * 4096).round().long().numpy())
    assert torch.equal(q.fixed_gains(), torch.tensor(book.fixed, dtype=torch.int32))


def test_rate_grows_with_the_anchor_as_the_step_shrinks():
    q = LatticeQuantizer(LatticeConfig()).eval()
    steps = [float(1 / q.gain(k).mean()) for k in range(7)]
    assert all(b < a for a, b in zip(steps, steps[1:]))


def lattice_net() -> torch.nn.Module:
    torch.manual_seed(0)
    net = models.build("vqvae2", LATTICE_NET)
    trained_gains(net.vq_f)
    return net.eval()


def test_a_lattice_network_runs_its_graphs_and_its_numpy_composition_as_its_forward():
    """Eval forward at an anchor = the graphs composed with the numpy codebooks (the codec's
    path: codes, then pixels from the codes)."""
    net = lattice_net()
    assert isinstance(net.vq_f, LatticeQuantizer) and net.pre_f[0].kernel_size == (3, 3)
    assert net.dec_f[0].in_channels == 8 + 4
    x = torch.rand(1, 3, 32, 40) - 0.5
    numpy_net = torch_network(net)
    feats = numpy_net.features(x.numpy())
    top = numpy_net.quantizers[0].residual_indices(numpy_net.latent(0, feats, []))
    bottom = numpy_net.quantizers[1].residual_indices(numpy_net.latent(1, feats, top))
    y = numpy_net.latent(2, feats, top + bottom)
    for anchor in (0, 3, 4.5):
        with torch.no_grad():
            out = net(x, anchor=anchor)
        fine = numpy_net.quantizers[2].residual_indices(y, anchor=anchor)
        codes = top + bottom + fine
        assert all(np.array_equal(a, b.numpy()) for a, b in zip(codes, out["codes"]))
        np.testing.assert_allclose(numpy_net.decode(codes, anchor=anchor), out["x_hat"].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="anchor"):
        numpy_net.decode(codes)
    with pytest.raises(ValueError, match="anchor"):
        net(x)
    coarse = numpy_net.decode(top + bottom)  # y_hat zero: synthesis_coarse
    np.testing.assert_allclose(coarse, numpy_net.graphs("synthesis", numpy_net._coarse(codes), np.zeros_like(y))[0],
                               atol=1e-5)


def test_a_lattice_networks_onnx_graphs_run_in_onnxruntime_as_torch(tmp_path):
    from vqzip import zoo
    from vqzip.inference import OnnxGraphs, network
    from vqzip.training.onnx_export import write_graphs

    net = lattice_net()
    digests = write_graphs(net, tmp_path)
    assert set(digests) == set(net.cfg.graphs()) >= {"latent_fine", "synthesis", "synthesis_coarse"}
    tensors = {k: v.numpy() for k, v in net.state_dict().items()}
    paths = {n: tmp_path / zoo.GRAPHS / f"{n}.onnx" for n in digests}
    onnx_net = network("vqvae2", net.cfg, tensors, OnnxGraphs(paths, tensors, tmp_path / "model.safetensors"))
    torch_net = torch_network(net)
    x = (torch.rand(1, 3, 24, 48) - 0.5).numpy()
    for n in (onnx_net, torch_net):
        feats = n.features(x)
        top = n.quantizers[0].residual_indices(n.latent(0, feats, []))
        bottom = n.quantizers[1].residual_indices(n.latent(1, feats, top))
        n.result = (top + bottom, n.latent(2, feats, top + bottom))
    (coarse_o, y_o), (coarse_t, y_t) = onnx_net.result, torch_net.result
    assert all(np.array_equal(a, b) for a, b in zip(coarse_o, coarse_t))
    np.testing.assert_allclose(y_o, y_t, atol=1e-4)
    fine = torch_net.quantizers[2].residual_indices(y_t, anchor=2)
    np.testing.assert_allclose(onnx_net.decode(coarse_t + fine, anchor=2), torch_net.decode(coarse_t + fine, anchor=2),
                               atol=1e-4)


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    """A training folder of four photos (the first held out) and a one-step VQ-VAE run on them
    with a fine level, as the lattice's init."""
    from conftest import photo
    from vqzip import training

    root = tmp_path_factory.mktemp("lattice")
    images = root / "images"
    images.mkdir()
    for k in range(4):
        photo(64, 48, seed=k).save(images / f"im{k}.png")
    training.train_vqvae(images, root / "vq", "vqvae2", {**TINY_NET, "fine_stages": 1, "fine_codes": 16},
                         training.TrainConfig(steps=1, batch=2, crop=32, warmup=1, precision="fp32"))
    return images, root / "vq"


@pytest.mark.slow  # trains
def test_a_lattice_trains_on_a_vq_run_resumes_with_the_same_command_and_loads(vq_run, tmp_path):
    from vqzip.cli import main
    from vqzip.training import TrainConfig
    from vqzip.training.autoencoder import load_net
    from vqzip.training.lattice import load_lattice, train_lattice

    images, init = vq_run
    base = load_net(init)
    out = tmp_path / "lat"
    args = ["train", "lattice", "--init", str(init), "--data", str(images), "--out", str(out), "--channels", "4",
            "--max-symbol", "5", "--steps", "3", "--batch", "2", "--crop", "32", "--val-every", "2",
            "--precision", "fp32", "--threads", "1"]
    cfg = TrainConfig(steps=3, batch=2, crop=32, precision="fp32", warmup=100, log_every=1, save_every=250)
    meta = train_lattice(images, out, init, SMALL, cfg, val_every=2, stop_after=2)  # as a run cut short leaves it
    assert meta["stopped"] and meta["steps_done"] == 2 and not (out / "lattice.safetensors").exists()
    assert main(args) == 0  # the same run's command goes on from step 2
    record = json.loads((out / "lattice.json").read_text())
    assert record["steps_done"] == 3 and record["init"]["run"] == str(init) and record["config"]["train_coarse"] is False
    assert [json.loads(line)["step"] for line in (out / "lattice-log.jsonl").read_text().splitlines()
            if "validation" not in line] == [1, 2, 3]  # every step by the first call, at the end by the command
    rows = [json.loads(line) for line in (out / "validation.jsonl").read_text().splitlines()]
    assert "frozen" in rows[0]["note"] and rows[0]["images"] == 1
    assert [(r["step"], r["anchor"]) for r in rows[1:]] == [(s, k) for s in (0, 2, 3) for k in (0, 3, 6)]
    assert all(r["bpp"] > 0 and r["psnr"] > 0 for r in rows[1:])

    model = load_lattice(out)
    net = model.net
    assert net.cfg.fine_quantizer == SMALL
    for key, value in base.state_dict().items():  # the coarse layers frozen, their EMA codebooks unmoved
        if not key.startswith(("pre_f.", "dec_f.", "vq_f.")):
            assert torch.equal(net.state_dict()[key], value), key
    assert not torch.equal(net.dec_f[-1].bias, base.dec_f[-1].bias)  # the fine parts trained
    assert not torch.equal(net.vq_f.log2_gain, LatticeQuantizer(SMALL).log2_gain)
    from vqzip.training.lattice import validate, validation_images

    again = validate(model, validation_images(images))
    assert again == [{k: r[k] for k in ("anchor", "lambda", "bpp", "psnr")} for r in rows[-3:]]


@pytest.mark.slow  # trains
def test_train_coarse_trains_the_top_and_bottom_layers_too(vq_run, tmp_path):
    from vqzip.training import TrainConfig
    from vqzip.training.autoencoder import load_net
    from vqzip.training.lattice import load_lattice, train_lattice

    images, init = vq_run
    cfg = TrainConfig(steps=2, batch=2, crop=32, precision="fp32", warmup=1)
    meta = train_lattice(images, tmp_path / "lat", init, SMALL, cfg, train_coarse=True, val_every=10)
    assert meta["steps_done"] == 2
    assert "--train-coarse" in (tmp_path / "lat" / "validation.jsonl").read_text().splitlines()[0]
    net, base = load_lattice(tmp_path / "lat").net, load_net(init)
    assert not torch.equal(net.enc_b[0].weight, base.enc_b[0].weight)
    assert not torch.equal(net.vq_t.stages[0].embed, base.vq_t.stages[0].embed)  # its EMA codebook moves


def test_the_lattice_starts_from_the_init_models_fine_decoder():
    from vqzip.training.lattice import lattice_net

    torch.manual_seed(0)
    base = models.build("vqvae2", {**TINY_NET, "fine_stages": 1, "fine_codes": 16})
    net = lattice_net(base, SMALL)
    h = 8
    assert torch.equal(net.dec_f[0].weight[:, :h], base.dec_f[0].weight[:, :h])
    assert torch.equal(net.dec_f[0].bias, base.dec_f[0].bias) and torch.equal(net.dec_f[-1].weight, base.dec_f[-1].weight)
    assert net.dec_f[0].weight[:, h:].abs().max() < 0.1 * 0.5  # y's part small, not zero
    assert net.dec_f[0].weight[:, h:].abs().max() > 0
    assert torch.equal(net.enc_b[0].weight, base.enc_b[0].weight) and torch.equal(net.vq_b.stages[0].embed, base.vq_b.stages[0].embed)
    with pytest.raises(Exception, match="has none"):
        lattice_net(models.build("vqvae2", TINY_NET), SMALL)


def test_the_codecs_symbols_and_integer_gains_fit_the_exact_gaussian_prior():
    """The pieces the codec will join (its wiring is the next step): the numpy network's lattice
    symbols at an anchor and the codebook's integer log2 gains, under the Gaussian prior's exact
    form calibrated from the float one, cost what the float prior says they cost."""
    from vqzip.priors import registry
    from vqzip.priors.gaussian_float import GaussianPrior
    from vqzip.training.lattice import prior_config

    net = lattice_net()
    torch.manual_seed(1)
    prior = GaussianPrior(prior_config(net, SMALL)).eval()
    numpy_net = torch_network(net)
    x = (torch.rand(1, 3, 48, 64) - 0.5).numpy() * 0.2 + np.linspace(-0.3, 0.3, 64, dtype=np.float32)
    feats = numpy_net.features(x)
    top = numpy_net.quantizers[0].residual_indices(numpy_net.latent(0, feats, []))
    bottom = numpy_net.quantizers[1].residual_indices(numpy_net.latent(1, feats, top))
    y = numpy_net.latent(2, feats, top + bottom)
    conds = [torch.from_numpy(top[0][0]), torch.from_numpy(bottom[0][0])]
    exact = registry.exact_prior(prior.cfg, registry.calibrate(prior, [(None, conds)]))
    book = numpy_net.quantizers[2]
    for anchor in (0, 3, 6):
        (codes,) = book.residual_indices(y, anchor=anchor)
        gains = book.log2_gains(anchor)
        bits = sum(-np.log2(probs[np.arange(len(s)), s]).sum()
                   for probs, s in exact.teacher_forced(codes[0], [c.numpy() for c in conds], log2_gain=gains))
        with torch.no_grad():
            float_bits = prior.bits(torch.from_numpy(codes - SMALL.max_symbol).float(), prior([c[None] for c in conds]),
                                    torch.from_numpy(gains).float() / 4096).sum().item()
        assert bits > 100 and bits == pytest.approx(float_bits, rel=0.01), (anchor, bits, float_bits)

"""The discretized-Gaussian prior kind (`priors/gaussian.py`, `priors/gaussian_float.py`): the float
module's bits against a direct sum of the density, its gradients and its bf16 safety; a small
prior trained on data whose scale follows its conditioning codes, calibrated, and its exact form
coded and decoded bit for bit, at the float prior's rate, the same whatever the computation's
grouping."""
import json

import numpy as np
import pytest
import torch

from vqzip import priors
from vqzip.coder import SymbolDecoder, SymbolEncoder
from vqzip.priors import fixedpoint, gaussian
from vqzip.priors.gaussian import GAIN_BITS, ExactGaussian, GaussianConfig
from vqzip.priors.gaussian_float import MIN_PROB, GaussianPrior, calibrate
from vqzip.runtime import one_thread

L = 5
CFG = GaussianConfig(channels=3, max_symbol=L, conds=((7, 2), (5, 1)), cond_channels=8, hidden=8)


def direct_bits(q: np.ndarray, s: np.ndarray, max_symbol: int) -> np.ndarray:
    """-log2 of the N(0, s) mass of each q's bin, summed directly: the density on a fine grid
    over the bin (the end bins out to 40 s beyond), midpoint rule, float64."""
    out = np.empty(q.shape)
    for n, (v, sd) in enumerate(zip(q.ravel(), s.ravel())):
        lo = v - 0.5 if v > -max_symbol else -max_symbol + 0.5 - 40 * sd
        hi = v + 0.5 if v < max_symbol else max_symbol - 0.5 + 40 * sd
        k = 200_000
        x = lo + (np.arange(k) + 0.5) * (hi - lo) / k
        mass = np.exp(-0.5 * (x / sd) ** 2).sum() * (hi - lo) / k / (sd * np.sqrt(2 * np.pi))
        out.flat[n] = -np.log2(max(mass, MIN_PROB))
    return out


def test_the_config_goes_through_the_registrys_dicts_and_counts_its_alphabet():
    d = json.loads(json.dumps(priors.config_to_dict(CFG)))  # as config.json holds it
    assert d["kind"] == "gaussian" and "num_codes" not in d
    assert priors.config_from_dict(d) == CFG
    assert CFG.num_codes == 2 * L + 1 and CFG.groups == [(2, [0]), (1, [1])]
    assert isinstance(priors.float_prior(CFG), GaussianPrior)


def test_forward_gives_a_scale_per_channel_at_the_finest_conditioning_resolution():
    prior = GaussianPrior(CFG)
    out = prior([torch.randint(0, 7, (2, 3, 4)), torch.randint(0, 5, (2, 6, 8))])
    assert out.shape == (2, 3, 6, 8)
    with pytest.raises(ValueError, match="takes 2 conditioning maps, not 1"):
        prior([torch.randint(0, 7, (2, 3, 4))])
    with pytest.raises(ValueError, match="names none"):
        GaussianPrior(GaussianConfig(channels=3))


def test_bits_are_the_bins_mass_summed_directly_tails_folded():
    prior = GaussianPrior(CFG)
    q = torch.arange(-L, L + 1, dtype=torch.float32).repeat(3, 1)  # every symbol, three scales
    log2_sigma = torch.tensor([-3.0, 0.3, 3.5])[:, None].expand_as(q)
    log2_gain = torch.tensor([0.0, 0.5, -0.25])
    bits = prior.bits(q[None, :, :, None], log2_sigma[None, :, :, None], log2_gain)[0, :, :, 0]
    s = 2.0 ** (log2_sigma + log2_gain[:, None]).double().numpy()
    expected = direct_bits(q.double().numpy(), s, L)
    assert np.allclose(bits.double().numpy(), expected, rtol=1e-4, atol=1e-5)
    assert torch.allclose((2.0 ** -bits.double()).sum(1), torch.ones(3, dtype=torch.float64), atol=1e-6)
    assert float(bits[0, 0]) == pytest.approx(-np.log2(MIN_PROB))  # s = 1/8 at -5: clamped at 30 bits


def test_bits_far_in_the_tail_keep_their_precision():
    """A bin deep in one tail is a difference of two small CDFs, not of two near 1 (which float32
    would make 0)."""
    prior = GaussianPrior(GaussianConfig(channels=1, max_symbol=31, conds=((2, 1),)))
    q = torch.tensor([6.0, -6.0]).view(1, 1, 2, 1)
    bits = prior.bits(q, torch.zeros_like(q), torch.zeros(1))
    assert np.allclose(bits.flatten().numpy(), direct_bits(np.array([6.0, -6.0]), np.ones(2), 31), rtol=1e-4)


def test_bits_are_float32_under_bf16_autocast_with_gradients_to_q_and_the_scale():
    prior = GaussianPrior(CFG)
    g = torch.Generator().manual_seed(0)
    q = (torch.randint(-L, L + 1, (2, 3, 4, 4), generator=g) + torch.rand(2, 3, 4, 4, generator=g) - 0.5)
    q = q.clamp(-L + 0.45, L - 0.45).requires_grad_()  # within the bins whose both edges are finite
    log2_sigma = (torch.randn(2, 3, 4, 4, generator=g) + 1).requires_grad_()
    log2_gain = torch.tensor([0.0, 0.5, -0.5])
    reference = prior.bits(q, log2_sigma, log2_gain)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the scales come out of the net in bf16
        bits = prior.bits(q, log2_sigma.bfloat16(), log2_gain)
        assert bits.dtype == torch.float32
    assert torch.equal(bits, prior.bits(q, log2_sigma.bfloat16().float(), log2_gain))
    gq, gs = torch.autograd.grad(reference.sum(), (q, log2_sigma))
    h = 1e-2  # central differences in float32 against autograd
    for grad, fd in ((gq, (prior.bits(q + h, log2_sigma, log2_gain) - prior.bits(q - h, log2_sigma, log2_gain)) / (2 * h)),
                     (gs, (prior.bits(q, log2_sigma + h, log2_gain) - prior.bits(q, log2_sigma - h, log2_gain)) / (2 * h))):
        assert torch.allclose(grad, fd.detach(), rtol=2e-2, atol=2e-3)
        assert (grad != 0).float().mean() > 0.9


# A prior learns scales that follow its conditioning codes: sigma = SIGMA_A[a] * SIGMA_B[b] for the
# codes a of a half-resolution map and b of a full-resolution one, the same in every channel; the
# channels' gains make the symbols' scales s = sigma * g span 0.4 .. 11.
SIGMA_A, SIGMA_B = torch.tensor([0.5, 1.0, 2.0, 4.0]), torch.tensor([0.7, 1.0, 1.4])
TRAINED = GaussianConfig(channels=2, max_symbol=15, conds=((4, 2), (3, 1)), cond_channels=8, hidden=16)
GAIN = np.array([1 << GAIN_BITS, -(1 << (GAIN_BITS - 1))])  # log2 gains 1 and -1/2


def synthetic(n: int, h: int, w: int, seed: int):
    """n samples: conditioning maps (n, h/2, w/2) and (n, h, w), and the latent y (n, C, h, w)."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randint(0, 4, (n, h // 2, w // 2), generator=g), torch.randint(0, 3, (n, h, w), generator=g)
    sigma = SIGMA_A[a].repeat_interleave(2, 1).repeat_interleave(2, 2) * SIGMA_B[b]
    return [a, b], torch.randn(n, TRAINED.channels, h, w, generator=g) * sigma[:, None]


def symbols(y: torch.Tensor) -> torch.Tensor:
    """The quantizer's q = clip(round(y g), -L, L) of y."""
    g = torch.exp2(torch.from_numpy(GAIN).double() / 2**GAIN_BITS).float().view(1, -1, 1, 1)
    return torch.round(y * g).clamp(-TRAINED.max_symbol, TRAINED.max_symbol)


@pytest.fixture(scope="module")
def trained():
    """A Gaussian prior trained 300 steps on the synthetic data (noise for rounding, as training
    the lattice model does), and its exact form calibrated on six samples' conditioning maps."""
    torch.manual_seed(0)
    prior = GaussianPrior(TRAINED)
    opt = torch.optim.Adam(prior.parameters(), lr=2e-2)
    log2_gain = torch.from_numpy(GAIN).float() / 2**GAIN_BITS
    with one_thread():  # tiny tensors: a second thread only contends (2.5 CPU s on one)
        for step in range(300):
            conds, y = synthetic(8, 8, 8, seed=step)
            q = y * torch.exp2(log2_gain).view(1, -1, 1, 1)
            loss = prior.bits(q + torch.rand_like(q) - 0.5, prior(conds), log2_gain).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    prior.eval()
    conds, _ = synthetic(6, 8, 8, seed=1000)
    return prior, ExactGaussian(TRAINED, calibrate(prior, [(None, [c[i] for c in conds]) for i in range(6)]))


def test_training_learns_the_scales_the_codes_set(trained):
    """The learned log2 s follows the true one (spread over 1.2 octaves about its mean) to 0.25 octave
    on average (trained with noise, it sits a little above: the noise widens the bins' mass)."""
    prior, _ = trained
    conds, _ = synthetic(4, 8, 8, seed=2000)
    with torch.no_grad():
        log2_sigma = prior(conds)
    truth = torch.log2(SIGMA_A[conds[0]].repeat_interleave(2, 1).repeat_interleave(2, 2) * SIGMA_B[conds[1]])[:, None]
    assert (log2_sigma - truth).abs().mean() < 0.25
    assert torch.corrcoef(torch.stack([log2_sigma.flatten(), truth.expand_as(log2_sigma).flatten()]))[0, 1] > 0.98


def test_the_exact_form_codes_and_decodes_bit_for_bit_at_the_float_priors_rate(trained):
    """Symbols coded by vqzip.coder under teacher_forced's rows decode back through walk; the exact
    rate (the rows normalized, at the symbols) is within 2% of the float prior's ideal bits."""
    prior, exact = trained
    conds, y = synthetic(1, 24, 32, seed=3000)
    q = symbols(y)
    codes = (q[0] + TRAINED.max_symbol).long().numpy()
    conds = [c[0] for c in conds]
    enc, exact_bits = SymbolEncoder(), 0.0
    for probs, s in exact.teacher_forced(codes, conds, batch=100, log2_gain=GAIN):
        enc.encode(s, probs)
        exact_bits -= np.log2(probs[np.arange(len(s)), s] / probs.sum(1)).sum()
    dec = SymbolDecoder(enc.to_bytes())
    assert np.array_equal(exact.walk(24, 32, lambda p, i, j: dec.decode(p), conds, log2_gain=GAIN), codes)
    with torch.no_grad():
        float_bits = float(prior.bits(q, prior([c[None] for c in conds]), torch.from_numpy(GAIN) / 2**GAIN_BITS).sum())
    assert abs(exact_bits / float_bits - 1) < 0.02, (exact_bits, float_bits)
    assert len(enc.to_bytes()) * 8 < exact_bits * 1.01 + 64  # the coder spends what the rows say


def test_walk_visits_channel_after_channel_in_raster_order_skipping_out(trained):
    _, exact = trained
    conds, y = synthetic(1, 4, 6, seed=4000)
    conds = [c[0] for c in conds]
    codes = (symbols(y)[0] + TRAINED.max_symbol).long().numpy()
    skip = np.zeros((4, 6), dtype=bool)
    skip[1, 2:5] = True
    seen = []

    def step(probs, rows, cols):
        seen.extend(zip(rows.tolist(), cols.tolist()))
        return codes.reshape(-1, 6)[rows, cols]

    out = exact.walk(4, 6, step, conds, skip, log2_gain=GAIN)
    expected = [(c * 4 + y, x) for c in range(2) for y in range(4) for x in range(6) if not skip[y, x]]
    assert seen == expected  # rows of the channels stacked as a (C * H, W) map
    assert np.array_equal(out, np.where(skip, TRAINED.num_codes, codes))
    forced = list(exact.teacher_forced(out, conds, log2_gain=GAIN))  # OUT where skipped: not coded
    assert np.concatenate([s for _, s in forced]).tolist() == [int(codes.reshape(-1, 6)[r, c]) for r, c in expected]
    rows = np.concatenate(list(exact.probabilities(conds, GAIN, block=5)))  # every symbol, C-major
    assert rows.shape == (2 * 4 * 6, TRAINED.num_codes)
    assert np.array_equal(np.concatenate([p for p, _ in forced]), rows[~np.tile(skip.reshape(-1), 2)])


SUMMATION_ORDERS = {
    "float64": lambda x, wt: (x.astype(np.float64) @ wt.astype(np.float64)).astype(np.float32),
    "reversed": lambda x, wt: x[:, ::-1] @ wt[::-1],
}


def test_the_same_probabilities_whatever_the_chunking_order_and_threads(trained, monkeypatch):
    """Bands of any height, step blocks of any size, BLAS on 1 or 2 threads and the products summed
    in other orders give the same rows: the arithmetic is exact."""
    from threadpoolctl import threadpool_limits

    _, exact = trained
    conds, _ = synthetic(1, 22, 18, seed=5000)
    conds = [c[0] for c in conds]
    reference = np.concatenate(list(exact.probabilities(conds, GAIN)))
    variants = [dict(BAND=1, BAND_ROWS=1), dict(BAND=90, BAND_ROWS=3), dict(BAND=1 << 20, BAND_ROWS=64)]
    for band in variants:
        with monkeypatch.context() as m:
            for k, v in band.items():
                m.setattr(gaussian, k, v)
            assert np.array_equal(np.concatenate(list(exact.probabilities(conds, GAIN, block=37))), reference), band
    for threads in (1, 2):
        with threadpool_limits(threads, user_api="blas"):
            assert np.array_equal(np.concatenate(list(exact.probabilities(conds, GAIN))), reference)
    for order in SUMMATION_ORDERS.values():
        with monkeypatch.context() as m:
            m.setattr(fixedpoint, "matmul", order)
            assert np.array_equal(np.concatenate(list(exact.probabilities(conds, GAIN))), reference)


def test_the_scale_index_follows_the_float_prior(trained):
    """The integer head and the index pick the table row nearest the float prior's scale (or one
    step off, at a step's edge); the table's rows are the discretized Gaussians of their scales."""
    prior, exact = trained
    conds, _ = synthetic(1, 16, 16, seed=6000)
    index = exact.scale_index([c[0] for c in conds], GAIN)
    with torch.no_grad():
        log2_s = (prior(conds)[0] + torch.from_numpy(GAIN).view(-1, 1, 1) / 2**GAIN_BITS).double().numpy()
    cfg = TRAINED
    ideal = (log2_s - np.log2(cfg.scale_min)) / np.log2(cfg.scale_max / cfg.scale_min) * (cfg.scales - 1)
    assert np.abs(index - np.clip(ideal, 0, cfg.scales - 1)).max() < 0.75
    assert (np.abs(index - ideal) < 0.5).mean() > 0.9


def test_a_damaged_tensor_or_gain_is_a_value_error(trained):
    prior, _ = trained
    conds, _ = synthetic(2, 4, 4, seed=7000)
    t = calibrate(prior, [(None, [c[i] for c in conds]) for i in range(2)])
    for name, value in (("head.1.w", t["head.1.w"][:1]), ("table", t["table"][:, 1:]), ("cond.1.embed.0", t["cond.1.embed.0"].T)):
        with pytest.raises(ValueError, match=f"tensor {name} is"):
            ExactGaussian(TRAINED, {**t, name: value})
    with pytest.raises(ValueError, match="tensor scale.shift is missing"):
        ExactGaussian(TRAINED, {k: v for k, v in t.items() if k != "scale.shift"})
    with pytest.raises(ValueError, match="table must be float32 probabilities"):
        ExactGaussian(TRAINED, {**t, "table": torch.zeros_like(t["table"])})
    exact = ExactGaussian(TRAINED, t)
    with pytest.raises(ValueError, match="log2_gain must be 2 integers"):
        exact.scale_index([c[0] for c in conds], GAIN / 4096)
    with pytest.raises(ValueError, match="do not fit a 4x5 one"):
        list(exact.teacher_forced(np.zeros((2, 4, 5), dtype=np.int64), [c[0] for c in conds], log2_gain=GAIN))


def test_the_exact_form_runs_on_numpy_alone():
    """gaussian.py, what the codec reads and walks, imports nothing but numpy and the priors'
    integer arithmetic at run time."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(gaussian.__file__).read_text())
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{a.name}" for a in node.names}
    assert {i for i in imported if not i.startswith(("vqzip.priors.fixedpoint.", "vqzip.priors.pixelcnn_config.",
                                                    "typing.", "dataclasses.", "__future__."))} == {"numpy"}

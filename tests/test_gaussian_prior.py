"""The discretized-Gaussian prior kind (`priors/gaussian.py`, `priors/gaussian_float.py`): the float
module's bits against a direct sum of the density, its gradients and its bf16 safety."""
import numpy as np
import pytest
import torch

from vqzip.priors.gaussian import GaussianConfig
from vqzip.priors.gaussian_float import MIN_PROB, GaussianPrior

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


def test_the_config_goes_through_its_dict_and_counts_its_alphabet():
    d = CFG.to_dict()
    assert GaussianConfig(**{**d, "conds": [list(c) for c in d["conds"]]}) == CFG  # JSON gives lists
    assert CFG.num_codes == 2 * L + 1 and "num_codes" not in d
    assert CFG.groups == [(2, [0]), (1, [1])]


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

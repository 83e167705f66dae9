import math

import pytest
import torch

from vqzip.models.quantize import VectorQuantizer
from vqzip.models.residual_vq import ResidualVQ


def usage_entropy(idx: torch.Tensor, k: int) -> float:
    p = torch.bincount(idx.flatten(), minlength=k).double()
    p = p[p > 0] / p.sum()
    return float(-(p * p.log2()).sum())


def trained(rate: float) -> tuple[VectorQuantizer, torch.Tensor]:
    torch.manual_seed(0)
    vq = VectorQuantizer(64, 4, rate=rate).train()
    z = torch.randn(8, 4, 16, 16)
    for _ in range(50):
        vq(z)
    return vq, z


@pytest.mark.slow  # fits a codebook
def test_entropy_constrained_assignment_spends_fewer_bits():
    """With a rate weight, training's assignment favours frequent codes: the codes' usage has
    lower entropy than the nearest-code assignment, for a larger quantization error."""
    plain, z = trained(0.0)
    ec, _ = trained(0.5)
    h_plain, h_ec = usage_entropy(plain.assign(z), 64), usage_entropy(ec.assign(z), 64)
    assert h_ec < h_plain - 0.3 and h_plain > math.log2(64) - 1
    err = [float((vq.lookup(vq.assign(z)) - z).pow(2).mean()) for vq in (plain, ec)]
    assert err[1] > err[0]
    assert torch.equal(ec.eval().indices(z), ec.distances(z).argmin(1).view(8, 16, 16))  # the codec's: nearest


def test_residual_stages_refine_and_any_prefix_decodes():
    torch.manual_seed(1)
    rvq = ResidualVQ(3, 32, 4).train()
    z = torch.randn(4, 4, 8, 8)
    for _ in range(30):
        rvq(z)
    rvq.eval()
    codes = rvq.residual_indices(z)
    errors = [float((rvq.lookup(codes[:n]) - z).pow(2).mean()) for n in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]
    zq, out_codes, _ = rvq(z)
    assert all(torch.equal(a, b) for a, b in zip(out_codes, codes)) and torch.allclose(zq, rvq.lookup(codes))


def test_an_optional_level_is_sometimes_left_out_whole_in_training():
    """Training an optional level drops it for some images: their output is zero and carries no
    gradient back to the encoder, as a file without the level decodes; the others keep it."""
    torch.manual_seed(2)
    rvq = ResidualVQ(1, 16, 4, optional=True).train()
    z = torch.randn(32, 4, 4, 4, requires_grad=True)
    zq, _, _ = rvq(z)
    zq.sum().backward()
    dropped = zq.flatten(1).abs().sum(1) == 0
    assert 0 < int(dropped.sum()) < 32
    assert torch.all(z.grad[dropped] == 0) and torch.all(z.grad[~dropped] == 1)
    rvq.eval()
    assert rvq(z)[0].flatten(1).abs().sum(1).gt(0).all()  # coding keeps every level


@pytest.mark.parametrize("rate", [0.0, 0.1, 1.0])
def test_training_assignment_is_the_literal_formula(rate):
    """The fused assignment picks the code minimizing ‖z − e‖² / D̄ + rate · (−log2 P(code)),
    D̄ the batch's mean nearest distance, as written out here."""
    torch.manual_seed(0)
    vq = VectorQuantizer(64, 16, rate=rate).train()
    z = torch.randn(4, 16, 20, 20)
    vq(z)
    vq(z)  # usage counts that differ between codes
    dist = vq.distances(z)
    bits = -torch.log2((vq.cluster_size + vq.eps) / (vq.cluster_size.sum() + vq.num_codes * vq.eps))
    literal = (dist / dist.min(1).values.mean() + rate * bits).argmin(1).view(4, 20, 20)
    assert torch.equal(vq.assign(z), literal)
    if rate >= 1:
        assert not torch.equal(literal, dist.argmin(1).view(4, 20, 20))  # the rate term changes some codes

import numpy as np
import pytest
import torch

from priors.decode import run, wavefronts
from priors.masked import MaskedConv2d
from priors.pixelcnn import PixelCNN, PixelCNNConfig

H, W = 8, 12


def make(cond: bool) -> PixelCNN:
    torch.manual_seed(1)
    return PixelCNN(PixelCNNConfig(num_codes=12, channels=16, first_kernel=5, blocks=2,
                                   cond_codes=7 if cond else 0, cond_channels=8)).eval()


def logits(prior, codes, top):
    cond = prior.cond_canvas(prior.condition(top)) if top is not None else None
    with torch.no_grad():
        return prior(prior.canvas(codes), cond)[0]


@pytest.mark.parametrize("cond", [False, True], ids=["top", "bottom|top"])
def test_causal_perturbation(cond):
    """Changing the code at any position q never changes the logits at positions p <= q
    (raster order), and does change some later position's logits (the test can fail)."""
    prior = make(cond)
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 12, (1, H, W), generator=g)
    top = torch.randint(0, 7, (1, H // 2, W // 2), generator=g) if cond else None  # half size, as in the codec
    base = logits(prior, codes, top)
    rows, cols = codes.shape[1:]
    changed_later = 0
    for q in range(rows * cols):
        qi, qj = divmod(q, cols)
        moved = codes.clone()
        moved[0, qi, qj] = (moved[0, qi, qj] + 5) % 12
        diff = (logits(prior, moved, top) - base).abs().amax(0).flatten()
        assert diff[: q + 1].max() == 0, f"position {int(diff[: q + 1].argmax())} saw code {q}"
        changed_later += int(q + 1 < len(diff) and diff[q + 1 :].max() > 0)
    assert changed_later > rows * cols // 2


def test_condition_reaches_the_bottom_prior():
    prior = make(True)
    codes = torch.randint(0, 12, (1, 8, 12))
    top = torch.randint(0, 7, (1, 4, 6))
    other = top.clone()
    other[0, 0, 0] = (other[0, 0, 0] + 1) % 7
    assert (logits(prior, codes, top) - logits(prior, codes, other)).abs().max() > 0


def test_masks():
    a = MaskedConv2d(1, 1, 2, 2, "A").mask[0, 0]
    b = MaskedConv2d(1, 1, 1, 1, "B").mask[0, 0]
    assert a.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0]]


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (5, 9), (9, 4)])
def test_wavefronts_cover_each_position_once_after_its_context(shape):
    h, w = shape
    k = 3  # reach 2
    done = np.full(shape, -1)
    for t, (i, j) in enumerate(wavefronts(h, w, k)):
        for a, b in zip(i, j):
            assert done[a, b] == -1
            for di in range(0, k):  # the causal window: reach rows up, reach columns aside
                for dj in range(-(k - 1), k):
                    y, x = a - di, b + dj
                    if (di > 0 or dj < 0) and 0 <= y < h and 0 <= x < w:
                        assert 0 <= done[y, x] < t
            done[a, b] = t
    assert (done >= 0).all()


@pytest.mark.parametrize("cond", [False, True], ids=["top", "bottom|top"])
def test_cached_walk_matches_full_pass(cond):
    """The cached wavefront walk gives the same distributions as one teacher-forced pass."""
    prior = make(cond)
    codes = torch.randint(0, 12, (1, 8, 10))
    top = torch.randint(0, 7, (1, 4, 5)) if cond else None
    full = torch.softmax(logits(prior, codes, top), 0)
    seen = []

    def step(probs, i, j):
        seen.append(np.abs(probs - full[:, i, j].T.numpy()).max())
        return codes[0, i, j].numpy()

    out = run(prior, 8, 10, step, top[0] if cond else None)
    assert torch.equal(out, codes[0])
    assert max(seen) < 1e-5

"""`vqzip.metrics.ms_ssim`, numpy's, against pytorch-msssim's (the reference it replaced, in the
test extra): real images (a Kodak crop, the sample and the test photo; odd and even sides),
each against itself decoded from JPEG at two qualities and with noise."""
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vqzip import metrics

ROOT = Path(__file__).resolve().parent.parent
IMAGES = [ROOT / "tests" / "assets" / "kodim23-crop.png", ROOT / "samples" / "tiger.png", ROOT / "tests" / "assets" / "photo.png"]


def distorted(pixels: np.ndarray) -> list[np.ndarray]:
    out = []
    for quality in (10, 60):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
        out.append(np.asarray(Image.open(buf).convert("RGB")))
    noise = np.random.default_rng(0).normal(0, 12, pixels.shape)
    return out + [np.clip(pixels + noise, 0, 255).astype(np.uint8)]


@pytest.mark.slow  # torch and pytorch-msssim
@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_ms_ssim_is_pytorch_msssims(path):
    torch = pytest.importorskip("torch")
    reference = pytest.importorskip("pytorch_msssim")
    pixels = np.asarray(Image.open(path).convert("RGB"))
    for other in distorted(pixels):
        x, y = (torch.from_numpy(v.astype(np.float64)).permute(2, 0, 1)[None] for v in (pixels, other))
        expected = float(reference.ms_ssim(x, y, data_range=255.0))
        # measured: within 1e-15 (the same window, bit for bit, and the same sums in another order)
        assert metrics.ms_ssim(pixels, other) == pytest.approx(expected, rel=0, abs=1e-12)

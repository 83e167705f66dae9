import csv
import json
import math
from fractions import Fraction

import numpy as np
import pytest

from conftest import photo
from vqzip import codec, metrics
from vqzip.baselines import CODECS
from vqzip.bdrate import bd_rate
from vqzip.cli import main


def test_psnr_known_values():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr(a, a + 1) == pytest.approx(20 * math.log10(255), abs=1e-9)  # MSE 1: 48.13 dB


def test_ms_ssim_is_one_for_identical_images_and_falls_with_noise():
    a = np.asarray(photo(176, 176))
    rng = np.random.default_rng(0)
    noisy = [np.clip(a + rng.normal(0, s, a.shape), 0, 255).astype(np.uint8) for s in (2, 8, 32)]
    assert metrics.ms_ssim(a, a) == pytest.approx(1.0, abs=1e-9)
    scores = [metrics.ms_ssim(a, n) for n in noisy]
    assert 1 > scores[0] > scores[1] > scores[2] > 0
    assert metrics.db(0.9) == pytest.approx(10.0) and metrics.db(1.0) == math.inf
    with pytest.raises(ValueError, match="161"):
        metrics.ms_ssim(a[:100], a[:100])


def test_chroma_is_zero_for_gray_and_falls_with_saturation():
    gray = np.full((4, 4, 3), 77, np.uint8)
    assert metrics.chroma(gray) == pytest.approx(0.0, abs=1e-9)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    assert metrics.chroma(red) == pytest.approx(255 * math.hypot(0.168736, 0.5), rel=1e-6)
    washed = (0.5 * red + 0.5 * 128).astype(np.uint8)  # halfway to mid-gray
    assert metrics.chroma(washed) == pytest.approx(metrics.chroma(red) / 2, rel=0.01)


def test_bd_rate_known_answers():
    d = np.array([30.0, 32.0, 34.0, 36.0])
    r = np.exp(0.2 * d - 6)
    assert bd_rate(r, d, r, d) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(r, d, 0.8 * r, d) == pytest.approx(-20.0, abs=1e-6)
    assert bd_rate(0.8 * r, d, r, d) == pytest.approx(25.0, abs=1e-6)
    # sampled at other qualities: log-rate linear in PSNR, test at half the rate everywhere
    d2 = np.array([31.0, 33.5, 35.0, 37.0])
    assert bd_rate(r, d, 0.5 * np.exp(0.2 * d2 - 6), d2) == pytest.approx(-50.0, abs=1e-6)
    with pytest.raises(ValueError, match="common"):
        bd_rate(r, d, r, d + 10)
    with pytest.raises(ValueError, match="two"):
        bd_rate(r[:1], d[:1], r, d)


def test_rd_curve_end_to_end(tiny, tmp_path, capsys):
    """Real bytes and decoded pixels: vqzip's rate is its file's size; outputs agree."""
    folder = tmp_path / "images"
    folder.mkdir()
    im = photo(176, 168, seed=2)
    im.save(folder / "a.png")
    out = tmp_path / "out"
    assert main(["rd-curve", str(folder), "--codecs", "jpeg", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "rd.csv")))
    ours = {r["setting"]: r for r in rows if r["codec"] == "vqzip"}
    assert set(ours) == {"1", "2"} and len(rows) == 2 + len(CODECS["jpeg"].settings)
    for level, scale in (("1", Fraction(1, 2)), ("2", Fraction(1))):  # the tiny checkpoints' levels
        assert float(ours[level]["bpp"]) == pytest.approx(8 * len(codec.compress(im, tiny, scale)) / (176 * 168))
    summary = json.loads((out / "vqzip.json").read_text())
    assert set(summary) == {"name", "description", "results"}
    assert {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"} <= set(summary["results"])
    k = summary["results"]["setting"].index("1")
    assert summary["results"]["psnr-rgb"][k] == pytest.approx(float(ours["1"]["psnr"]))
    jpeg = json.loads((out / "jpeg.json").read_text())["results"]
    assert jpeg["bpp"] == sorted(jpeg["bpp"])
    assert (out / "rd.png").stat().st_size > 0 and (out / "bd-rate.json").exists()
    assert "vqzip" in capsys.readouterr().out


def test_rd_curve_errors_are_one_line(tiny, tmp_path, capsys):
    photo(176, 176).save(tmp_path / "a.png")
    for args, message in ((["--codecs", "gif"], "unknown codec 'gif'"), (["--quality", "x"], "comma-separated integers"),
                          (["--quality", "9"], "no quality level 9")):
        assert main(["rd-curve", str(tmp_path / "a.png"), *args]) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_preview_psnr_compares_with_the_box_reduced_image_over_whole_blocks():
    pixels = np.zeros((9, 10, 3), np.uint8)
    pixels[:4, :4] = 40  # one 4x4 block of 40: its mean is 40
    pixels[8, :] = 255  # the partial last row is left out
    preview = np.zeros((3, 3, 3), np.uint8)
    preview[0, 0] = 40
    assert metrics.preview_psnr(preview, pixels) == float("inf")
    preview[1, 1] = 1
    assert metrics.preview_psnr(preview, pixels) == pytest.approx(10 * np.log10(255**2 / (3 / 12)))

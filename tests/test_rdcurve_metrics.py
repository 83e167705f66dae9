"""SSIMULACRA 2 in `vqzip rd-curve`: the score as the ssimulacra2 package gives it, and --metrics
choosing what a sweep measures."""
import csv
import json
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import photo
from vqzip import metrics
from vqzip.cli import main
from vqzip.errors import UsageError
from vqzip.eval.baselines import CODECS
from vqzip.eval.measures import metrics_of


def test_ssimulacra2_is_the_packages_own_score_on_the_same_files(tmp_path):
    from ssimulacra2 import compute_ssimulacra2

    original = photo(96, 80, seed=3)
    original.save(tmp_path / "a.png")
    original.save(tmp_path / "a.jpg", quality=30)
    Image.open(tmp_path / "a.jpg").save(tmp_path / "b.png")
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    score = metrics.ssimulacra2(a, b)
    assert score == pytest.approx(compute_ssimulacra2(str(tmp_path / "a.png"), str(tmp_path / "b.png")), abs=1e-9)
    assert 0 < score < 90  # JPEG at quality 30: visibly worse than the original
    assert metrics.ssimulacra2(a, a) == pytest.approx(100.0)
    with pytest.raises(ValueError, match="one size"):
        metrics.ssimulacra2(a, b[:-1])
    with pytest.raises(ValueError, match="uint8 RGB"):
        metrics.ssimulacra2(a, b.astype(np.float32))


def test_metrics_are_chosen_by_name_in_a_fixed_order():
    assert [m.name for m in metrics_of(None)] == ["psnr", "ms-ssim", "ssimulacra2"]  # the package is installed here
    assert [m.key for m in metrics_of("ssimulacra2, psnr")] == ["psnr-rgb", "ssimulacra2"]
    with pytest.raises(UsageError, match="'ssim' is not a metric; known: psnr, ms-ssim, ssimulacra2"):
        metrics_of("psnr,ssim")
    with pytest.raises(UsageError, match="names no metric"):
        metrics_of(",")


def test_without_the_package_ssimulacra2_is_skipped_by_default_and_refused_when_asked_for(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ssimulacra2", None)  # its import now fails as a missing package's does
    notes = []
    assert [m.name for m in metrics_of(None, notes.append)] == ["psnr", "ms-ssim"]
    assert notes == ["vqzip: note: skipping SSIMULACRA 2: rd-curve's SSIMULACRA 2 (--metrics ssimulacra2) needs "
                     "ssimulacra2, from vqzip's eval extra: pip install 'vqzip[eval]'"]
    photo(176, 176).save(tmp_path / "a.png")
    assert main(["rd-curve", str(tmp_path / "a.png"), "--metrics", "psnr,ssimulacra2"]) == 2
    assert capsys.readouterr().err == ("vqzip: error: rd-curve's SSIMULACRA 2 (--metrics ssimulacra2) needs ssimulacra2, "
                                       "from vqzip's eval extra: pip install 'vqzip[eval]'\n")
    assert main(["rd-curve", str(tmp_path / "a.png"), "--metrics", "psnr,ssim"]) == 2
    assert capsys.readouterr().err == "vqzip: error: --metrics: 'ssim' is not a metric; known: psnr, ms-ssim, ssimulacra2\n"


@pytest.mark.slow  # a whole sweep
def test_a_sweep_measures_what_metrics_names(tiny, tmp_path, capsys):
    """--metrics psnr,ssimulacra2 on an image too small for MS-SSIM: no MS-SSIM anywhere, its
    rd.csv column left empty; SSIMULACRA 2 in rd.csv, <codec>.json, the tables and a panel."""
    photo(120, 96, seed=1).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert main(["rd-curve", str(tmp_path / "a.png"), "--codecs", "jpeg", "--quality", "1,2", "--metrics",
                 "psnr,ssimulacra2", "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "rd.csv")))
    assert all(r["ms_ssim"] == r["ms_ssim_db"] == "" and float(r["ssimulacra2"]) <= 100 for r in rows)
    pixels = np.asarray(Image.open(tmp_path / "a.png"))
    jpeg1 = CODECS["jpeg"].decode(CODECS["jpeg"].encode(Image.open(tmp_path / "a.png"), 1))
    first = next(r for r in rows if r["codec"] == "jpeg" and r["setting"] == "1")
    assert float(first["ssimulacra2"]) == pytest.approx(metrics.ssimulacra2(pixels, np.asarray(jpeg1)))
    results = json.loads((out / "jpeg.json").read_text())["results"]
    assert "ssimulacra2" in results and "ms-ssim-rgb" not in results and "ms-ssim-rgb-db" not in results
    assert results["ssimulacra2"][-1] > 30 > results["ssimulacra2"][0]  # JPEG's highest quality setting and its lowest
    table = (out / "bd-rate.md").read_text()
    assert "| SSIMULACRA 2 |" in table and "MS-SSIM" not in table
    assert json.loads((out / "run.json").read_text())["metrics"] == ["psnr", "ssimulacra2"]
    assert ">SSIMULACRA 2</text>" in (out / "rd.svg").read_text() and "MS-SSIM" not in (out / "rd.svg").read_text()
    assert "SSIMULACRA 2" in (out / "rd.caption.txt").read_text()
    std = capsys.readouterr().out
    assert "BD-rate of vqzip against each curve" in std and "SSIMULACRA 2" in std and "MS-SSIM" not in std

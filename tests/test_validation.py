"""The validation sweep (`vqzip.eval.validation`, bench/validate_rd.py) reports MS-SSIM in the unit
rd-curve reports Kodak's: the dB of the mean index (`metrics.mean_db`), not the mean of each
image's dB; its JSON still feeds bench/choose_levels.py."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import photo
from vqzip import metrics
from vqzip.eval import results, validation
from vqzip.eval.points import Point

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validation_and_rd_curve_give_a_points_ms_ssim_in_the_same_db():
    """Two images decoded far apart in quality (one nearly whole, one noisy): the dB of their mean
    index is far below the mean of their dB, and validation and rd-curve both give the former."""
    from PIL import Image

    smooth = np.asarray(photo(176, 168, seed=1))
    images = [smooth, smooth]
    noisy = np.clip(smooth + np.random.default_rng(0).normal(0, 40, smooth.shape), 0, 255).astype(np.uint8)
    near = np.clip(smooth.astype(int) + 1, 0, 255).astype(np.uint8)
    decoded = iter([near, noisy])
    row = validation.measure(lambda im: b"x" * 100, lambda data: Image.fromarray(next(decoded)), images, "p")
    index = [metrics.ms_ssim(smooth, near), metrics.ms_ssim(smooth, noisy)]
    assert [r["ms_ssim"] for r in row["images"]] == index
    assert row["ms_ssim_db"] == metrics.db(np.mean(index)) < np.mean([metrics.db(s) for s in index]) - 3
    points = [Point("vqzip", "1", f"im{k}", 176 * 168, 100, 1.0, 30.0, s, metrics.db(s), None, 1.0, 1.0, 0.5)
              for k, s in enumerate(index)]
    assert results.summarize(points, {})["vqzip"]["results"]["ms-ssim-rgb-db"] == [row["ms_ssim_db"]]


def test_an_earlier_run_measured_in_the_old_unit_is_refused(tmp_path):
    old = {"images": 2, "resize": "1", "results": {"m": [{"point": "1", "bpp": 1.0, "psnr": 30.0, "ms_ssim_db": 12.0,
                                                          "encode_s": 1.0, "decode_s": 1.0, "images": []}]}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="measure its curves again"):
        validation.earlier_results(tmp_path / "old.json", 2, 1)


def test_validate_rd_writes_a_json_that_choose_levels_and_a_later_run_read(tiny, tmp_path, capsys):
    data = tmp_path / "train"
    data.mkdir()
    for k in range(2):  # every 20th image is held out: the first of two
        photo(176, 168, seed=k).save(data / f"im{k}.png")
    _bench("validate_rd").main([str(data), "tiny=1/2,1", "--json", str(tmp_path / "v.json"), "--threads", "1"])
    run = json.loads((tmp_path / "v.json").read_text())
    rows = run["results"]["tiny=1/2,1"]
    assert [r["point"] for r in rows] == ["1/2:0.0:None", "1:0.0:None"]
    assert all(r["ms_ssim_db"] == metrics.mean_db([i["ms_ssim"] for i in r["images"]]) for r in rows)
    again = validation.earlier_results(tmp_path / "v.json", 1, 1)
    assert again == run["results"]
    capsys.readouterr()
    for r in rows:  # the random model's front need not hold both points: given one here, as a trained model's
        r["psnr"] = 20.0 + 10 * r["bpp"]
    (tmp_path / "v.json").write_text(json.dumps(run))
    _bench("choose_levels").main([str(tmp_path / "v.json"), "--count", "2", "--lo", str(rows[0]["bpp"]), "--hi", str(rows[1]["bpp"])])
    assert json.loads(capsys.readouterr().out)["levels"] == {"1": {"model": "tiny", "scale": "1/2"}, "2": {"model": "tiny", "scale": "1"}}

import csv
import json
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import photo
from vqzip import codec, metrics, zoo
from vqzip.eval import machine
from vqzip.eval.baselines import CODECS
from vqzip.eval.bdrate import bd_rate, bd_table
from vqzip.eval.plot import figure, plot
from vqzip.eval.points import Unit
from vqzip.eval.progress import Eta, clock
from vqzip.eval.record import Run
from vqzip.cli import main
from vqzip.operating_point import OperatingPoint


def test_psnr_known_values():
    a = np.full((8, 8, 3), 100, np.uint8)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.psnr(a, a + 1) == pytest.approx(20 * math.log10(255), abs=1e-9)  # MSE 1: 48.13 dB


@pytest.mark.slow  # whole sweeps, or MS-SSIM on a 176x176 crop
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


@pytest.mark.slow  # whole sweeps, or MS-SSIM on a 176x176 crop
def test_rd_curve_end_to_end(tiny, tmp_path, capsys, monkeypatch):
    """Real bytes and decoded pixels: vqzip's rate is its file's size; outputs agree."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.25, 0.5, 0.5))
    monkeypatch.setattr(machine, "cpu_seconds", lambda: (100.0, 1.0))  # an idle machine, whatever runs beside the test
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
        data = codec.compress(im, tiny, OperatingPoint(tiny.name, scale=scale))
        assert float(ours[level]["bpp"]) == pytest.approx(8 * len(data) / (176 * 168))
    summary = json.loads((out / "vqzip.json").read_text())
    assert set(summary) == {"name", "description", "results"}
    assert {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"} <= set(summary["results"])
    k = summary["results"]["setting"].index("1")
    assert summary["results"]["psnr-rgb"][k] == pytest.approx(float(ours["1"]["psnr"]))
    jpeg = json.loads((out / "jpeg.json").read_text())["results"]
    assert jpeg["bpp"] == sorted(jpeg["bpp"])
    for name in ("rd.png", "rd.pdf", "rd.svg", "rd.caption.txt", "bd-rate.json", "bd-rate.md", "run.json"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "rd.pdf").read_bytes()[:4] == b"%PDF" and (out / "rd.png").read_bytes()[:4] == b"\x89PNG"
    svg = (out / "rd.svg").read_text()
    assert ">Rate-distortion on images (1 image)</text>" in svg  # the title, kept as text
    assert ">q1</text>" in svg and ">q2</text>" in svg and "libjpeg" in svg  # level labels; the library in the legend
    caption = (out / "rd.caption.txt").read_text()
    assert "images (1 image)" in caption and "q1 (scale 1/2)" in caption and "quality 1, 3, 5" in caption
    assert zoo.manifest()["models"]["tiny"]["sha256"] in caption and "Pillow " in caption and "libjpeg" in caption
    assert "disturbed" not in caption and "threads one per core," in caption  # no --threads: the default, said
    table = (out / "bd-rate.md").read_text()
    assert "| | JPEG |" in table and "| PSNR |" in table and "| MS-SSIM |" in table
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"] == "images" and run["images"] == 1 and run["load_average"] == {"start": 0.25}
    assert run["timings_disturbed"] is False and run["codecs"]["jpeg"]["settings"][0] == 1
    std = capsys.readouterr()
    assert "vqzip" in std.out
    assert f"rd-curve: {len(rows)}/{len(rows)} codings" in std.err and "warning" not in std.err


def test_rd_curve_errors_are_one_line(tiny, tmp_path, capsys):
    photo(176, 176).save(tmp_path / "a.png")
    photo(176, 100).save(tmp_path / "small.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for args, message in ((["--codecs", "gif"], "unknown codec 'gif'"), (["--quality", "x"], "comma-separated integers"),
                          (["--quality", "9"], "no quality level 9"), (["small.png"], "176x100 is too small for MS-SSIM"),
                          (["bad.png"], "bad.png")):
        files = [str(tmp_path / a) for a in args if a.endswith(".png")] or [str(tmp_path / "a.png")]
        args = [a for a in args if not a.endswith(".png")]
        assert main(["rd-curve", *files, *args]) == 1
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


@pytest.mark.slow  # whole sweeps, or MS-SSIM on a 176x176 crop
def test_a_busy_machine_is_warned_about_and_recorded(tiny, tmp_path, capsys, monkeypatch):
    """A load average above the cores at the start, or other processes busy during the run
    (the machine's CPU time growing faster than the run's own), each mark the timings."""
    photo(176, 168).save(tmp_path / "a.png")
    monkeypatch.setattr(machine, "cpu_seconds", lambda: (100.0, 1.0))
    args = ["rd-curve", str(tmp_path / "a.png"), "--quality", "1,2", "--codecs", "none", "--out"]
    monkeypatch.setattr(os, "getloadavg", lambda: (99.0, 1.0, 1.0))
    assert main(args + [str(tmp_path / "loaded")]) == 0
    assert f"vqzip: warning: load average 99.00 at the start is above the {os.cpu_count()} cores" in capsys.readouterr().err
    run = json.loads((tmp_path / "loaded" / "run.json").read_text())
    assert run["timings_disturbed"] is True and run["load_average"] == {"start": 99.0}
    assert "timings disturbed" in (tmp_path / "loaded" / "rd.caption.txt").read_text()

    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    readings = iter([(1000.0, 5.0), (1e9, 6.0)])  # the machine used far more than the run's own second
    monkeypatch.setattr(machine, "cpu_seconds", lambda: next(readings))
    assert main(args + [str(tmp_path / "shared")]) == 0
    assert "vqzip: warning: other processes kept" in capsys.readouterr().err
    run = json.loads((tmp_path / "shared" / "run.json").read_text())
    assert run["timings_disturbed"] is True and run["others_busy"] > 1


def test_others_busy_is_the_machine_less_the_run():
    assert machine.others_busy((100.0, 10.0), (130.0, 30.0), 20.0) == pytest.approx(0.5)
    assert machine.others_busy((100.0, 10.0), (118.0, 30.0), 20.0) == 0.0  # never below 0
    assert machine.others_busy(None, (1.0, 1.0), 1.0) is None
    reading = machine.cpu_seconds()
    assert reading is None or (reading[0] > 0 and reading[1] > 0)


def summary_and_run(tmp_path):
    """A summary as `summarize` gives it (the highest baseline point far right, as WebP's was)."""
    def codec(name, bpp, psnr, settings):
        return {"name": name, "description": name, "results": {
            "setting": settings, "bpp": bpp, "psnr-rgb": psnr, "ms-ssim-rgb-db": [p - 15 for p in psnr]}}

    summary = {"vqzip": codec("vqzip", [0.1, 0.4, 1.1], [25.4, 29.3, 33.9], ["1", "4", "7"]),
               "jpeg": codec("jpeg", [0.17, 0.5, 1.2], [22.0, 29.1, 33.0], ["1", "18", "65"]),
               "webp": codec("webp", [0.12, 0.9, 2.71], [26.0, 31.9, 41.5], ["1", "55", "90"])}
    run = Run("kodak", 24, "0.3.0", [{"quality": q, "model": "vqz-base", "scale": "1", "maps": None,
                                              "lambda": 0.0, "sha256": "ab" * 32} for q in (1, 4, 7)],
                      {n: {"label": n.upper(), "library": f"lib{n} 1.0", "setting": "quality", "settings": [1],
                           "description": n} for n in ("jpeg", "webp")}, {"Pillow": "13.0.0"}, 2, None, 1)
    return summary, run


@pytest.mark.slow  # matplotlib, three formats
def test_the_figure_is_titled_labelled_and_holds_every_point(tmp_path):
    summary, run = summary_and_run(tmp_path)
    fig = figure(summary, run)
    assert fig.get_suptitle() == "Rate-distortion on kodak (24 images)"
    for ax in fig.axes:
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        points = [(x, y) for line in ax.get_lines() for x, y in zip(line.get_xdata(), line.get_ydata())]
        assert len(points) == 9 and all(x0 < x < x1 and y0 < y < y1 for x, y in points)
        assert [t.get_text() for t in ax.texts] == ["q1", "q4", "q7"]
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert legend == ["vqzip 0.3.0 (vqz-base)", "JPEG (libjpeg 1.0)", "WEBP (libwebp 1.0)"]
    files = plot(summary, run, tmp_path / "rd")
    assert [f.name for f in files] == ["rd.png", "rd.pdf", "rd.svg"]
    again = plot(summary, run, tmp_path / "again")  # no dates inside: the same bytes again
    assert files[1].read_bytes() == again[1].read_bytes() and files[2].read_bytes() == again[2].read_bytes()


def test_bd_rate_table_marks_undefined_entries(tmp_path):
    _, run = summary_and_run(tmp_path)
    table = bd_table({"vqzip": {"jpeg": {"psnr-rgb": -27.84, "ms-ssim-rgb-db": None},
                                "webp": {"psnr-rgb": 34.3, "ms-ssim-rgb-db": -13.4}},
                      "jpeg": {"vqzip": {"psnr-rgb": 38.6, "ms-ssim-rgb-db": None},
                               "webp": {"psnr-rgb": 80.1, "ms-ssim-rgb-db": 2.0}},
                      "webp": {"vqzip": {"psnr-rgb": -25.5, "ms-ssim-rgb-db": 15.5},
                               "jpeg": {"psnr-rgb": -44.5, "ms-ssim-rgb-db": -2.0}}}, run)
    assert "| | JPEG | WEBP |" in table and "| PSNR | −27.8% | +34.3% |" in table
    assert "| MS-SSIM | n/a | −13.4% |" in table and "n/a: a curve without that quality, fewer than two" in table
    # then every curve against every other, a table per metric
    assert "| | vqzip | JPEG | WEBP |" in table and "| JPEG | +38.6% |  | +80.1% |" in table
    assert "| WEBP | +15.5% | −2.0% |  |" in table


def test_the_time_left_costs_each_unit_by_what_its_codec_and_setting_took():
    units = [Unit(k, Path(f"{k // 3}.png"), 100 * (1 + k // 3), c, s)
             for k, (c, s) in enumerate([("jpeg", 1), ("jpeg", 2), ("webp", 1)] * 3)]
    eta = Eta(units)
    assert eta.seconds_left() is None and eta.line(0) == "0/9 codings, 0s elapsed, time left not known yet"
    eta.done(units[0], 1.0)  # jpeg 1: 0.01 s per pixel; everything else costed at that too
    assert eta.seconds_left() == pytest.approx(0.01 * (100 + 100 + 200 * 3 + 300 * 3))
    eta.done(units[1], 3.0)
    eta.done(units[2], 0.5)
    # image 1 (200 px) and 2 (300 px): jpeg 1 at 0.01, jpeg 2 at 0.03, webp 1 at 0.005 s per pixel
    assert eta.seconds_left() == pytest.approx(500 * (0.01 + 0.03 + 0.005))
    assert Eta(units[3:], workers=2).seconds_left() is None
    assert clock(3725) == "1h02m" and clock(185) == "3m05s" and clock(12.4) == "12s"


@pytest.mark.slow  # whole sweeps, or MS-SSIM on a 176x176 crop
def test_jobs_give_the_serial_results(tiny, tmp_path, capsys):
    """Worker processes (spawned) code the same bytes: rd.csv is the serial one but for times."""
    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(3):
        photo(176, 168, seed=k).save(folder / f"{k}.png")
    rows = []
    for jobs in ("1", "2"):
        assert main(["rd-curve", str(folder), "--codecs", "jpeg", "--jobs", jobs, "--threads", "1",
                     "--out", str(tmp_path / jobs)]) == 0
        rows.append(list(csv.DictReader(open(tmp_path / jobs / "rd.csv"))))
    keep = ("codec", "setting", "image", "bytes", "bpp", "psnr", "ms_ssim", "estimated_bpp")
    assert [[r[k] for k in keep] for r in rows[0]] == [[r[k] for k in keep] for r in rows[1]]
    assert len(rows[0]) == 3 * (2 + len(CODECS["jpeg"].settings))
    assert json.loads((tmp_path / "2" / "run.json").read_text())["jobs"] == 2
    assert main(["rd-curve", str(folder), "--jobs", "0"]) == 2

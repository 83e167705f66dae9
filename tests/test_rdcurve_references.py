"""`vqzip rd-curve --reference`: published curves in CompressAI's results layout, read and checked
before any coding, in the BD-rates, the figure and the run's record."""
import hashlib
import json
import math
import os
from pathlib import Path

import pytest

from conftest import photo
from vqzip.cli import main
from vqzip.errors import UsageError
from vqzip.eval import machine, workers
from vqzip.eval.bdrate import bd_rates
from vqzip.eval.references import read, read_all

PUBLISHED = Path(__file__).parent / "data" / "published"
HYPERPRIOR = PUBLISHED / "compressai-bmshj2018-hyperprior_mse_cpu.json"
ELIC = PUBLISHED / "paper-elic2022_mse.json"  # bpp and PSNR only


def test_a_published_file_is_read_with_ms_ssim_in_db():
    ref = read(HYPERPRIOR)
    given = json.loads(HYPERPRIOR.read_text())["results"]
    assert ref.name == ref.key == "bmshj2018-hyperprior" and ref.sha256 == hashlib.sha256(HYPERPRIOR.read_bytes()).hexdigest()
    assert ref.results["bpp"] == given["bpp"] and ref.results["psnr-rgb"] == given["psnr-rgb"]
    # CompressAI gives the raw index; a sweep's curves are in dB: 0.9173671156167984 -> 10.8285 dB
    assert ref.results["ms-ssim-rgb-db"][0] == pytest.approx(-10 * math.log10(1 - 0.9173671156167984), abs=1e-12)
    assert ref.results["ms-ssim-rgb-db"][0] == pytest.approx(10.8285, abs=1e-4)
    assert set(ref.results) == {"bpp", "psnr-rgb", "ms-ssim-rgb-db"}
    elic = read(ELIC)
    assert set(elic.results) == {"bpp", "psnr-rgb"} and elic.record()["qualities"] == ["psnr-rgb"]
    assert elic.record()["label"] == "elic2022 (published)"


def test_a_folder_reads_its_json_files_and_names_that_are_taken_get_the_file_name(tmp_path):
    refs = read_all([PUBLISHED])
    assert [r.name for r in refs] == ["bmshj2018-hyperprior", "elic2022"]  # file name order; README skipped
    (tmp_path / "webp.json").write_text(json.dumps({"name": "webp", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [25, 27]}}))
    (tmp_path / "other.json").write_text(json.dumps({"name": "elic2022", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [25, 27]}}))
    refs = read_all([tmp_path / "webp.json", ELIC, tmp_path / "other.json"], taken={"webp", "vqzip"})
    assert [r.key for r in refs] == ["webp (webp.json)", "elic2022", "elic2022 (other.json)"]


def write(folder: Path, name: str, content) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


REFUSALS = [  # (file content, the message's tail); None: no file
    (None, "No such file or directory"),
    ("{not json", "not JSON"),
    ([1, 2], 'no "results" object'),
    ({"name": "x", "results": {"psnr-rgb": [30, 32]}}, "results.bpp is missing"),
    ({"results": {"bpp": [0.5], "psnr-rgb": [30]}}, "results.bpp has 1 point; a curve needs at least two"),
    ({"results": {"bpp": [0.5, "0.7"], "psnr-rgb": [30, 31]}}, "results.bpp is not a list of finite numbers"),
    ({"results": {"bpp": [0, 0.7], "psnr-rgb": [30, 31]}}, "results.bpp holds a rate that is not positive"),
    ({"results": {"bpp": [0.5, 0.7, 0.9], "psnr-rgb": [30, 31]}}, "results.psnr-rgb has 2 points, results.bpp 3"),
    ({"results": {"bpp": [0.5, 0.7], "ms-ssim-rgb": [14.2, 16.0]}}, "outside [0, 1): it should be the raw MS-SSIM index, not dB"),
    ({"results": {"bpp": [0.5, 0.7], "psnr": [30, 31]}}, "results gives none of psnr-rgb, ms-ssim-rgb, ssimulacra2"),
]


@pytest.mark.parametrize("content,problem", REFUSALS)
def test_each_bad_reference_is_one_line_and_exit_2_before_any_coding(tmp_path, capsys, monkeypatch, content, problem):
    monkeypatch.setattr(workers, "measure", lambda *a, **k: pytest.fail("coded before the references were checked"))
    path = tmp_path / "curve.json" if content is None else write(tmp_path, "curve.json", content)
    photo(176, 176).save(tmp_path / "a.png")
    assert main(["rd-curve", str(tmp_path / "a.png"), "--reference", str(HYPERPRIOR), "--reference", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vqzip: error: --reference: {path}: ") and problem in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_json_among_the_images_and_an_empty_folder_are_refused(tmp_path, capsys):
    photo(176, 176).save(tmp_path / "a.png")
    (tmp_path / "empty").mkdir()
    # `--reference published/*.json` in a shell: every file but the first lands among the images
    assert main(["rd-curve", str(tmp_path / "a.png"), "--reference", str(HYPERPRIOR), str(ELIC)]) == 2
    assert capsys.readouterr().err == (f"vqzip: error: --reference: {ELIC}: a .json file among the images; give each "
                                       "published curve its own --reference, or the folder that holds them\n")
    assert main(["rd-curve", str(tmp_path / "a.png"), "--reference", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err == f"vqzip: error: --reference: {tmp_path / 'empty'}: no .json files\n"
    with pytest.raises(UsageError, match="given twice"):
        read_all([ELIC, PUBLISHED])
    copies = [tmp_path / d / ELIC.name for d in ("x", "y")]  # two more files of ELIC's name and file name
    for c in copies:
        c.parent.mkdir()
        c.write_bytes(ELIC.read_bytes())
    assert [r.key for r in read_all([ELIC, copies[0]])] == ["elic2022", "elic2022 (paper-elic2022_mse.json)"]
    with pytest.raises(UsageError, match="an earlier reference has its name and file name"):
        read_all([ELIC, *copies])


def test_published_curves_are_anchors_and_tested_and_a_missing_quality_is_none():
    # vqzip at exactly 0.8x the hyperprior's rate at every PSNR (log-rate linear in quality between its points)
    hyper = read(HYPERPRIOR).results
    ours = {"bpp": [0.8 * b for b in hyper["bpp"]], "psnr-rgb": hyper["psnr-rgb"], "ms-ssim-rgb-db": hyper["ms-ssim-rgb-db"]}
    bds = bd_rates({"vqzip": ours, "bmshj2018-hyperprior": hyper, "elic2022": read(ELIC).results}, ["psnr", "ms-ssim"])
    assert bds["vqzip"]["bmshj2018-hyperprior"]["psnr-rgb"] == pytest.approx(-20.0, abs=1e-9)
    assert bds["vqzip"]["bmshj2018-hyperprior"]["ms-ssim-rgb-db"] == pytest.approx(-20.0, abs=1e-9)
    assert bds["bmshj2018-hyperprior"]["vqzip"]["psnr-rgb"] == pytest.approx(25.0, abs=1e-9)
    assert bds["elic2022"]["vqzip"]["psnr-rgb"] < 0 and bds["elic2022"]["vqzip"]["ms-ssim-rgb-db"] is None
    assert bds["vqzip"]["elic2022"]["ms-ssim-rgb-db"] is None


@pytest.mark.slow  # two sweeps of the tiny model, SSIMULACRA 2 included
def test_a_run_with_references_writes_them_everywhere(tiny, tmp_path, capsys, monkeypatch):
    """A first run's vqzip.json (PSNR and SSIMULACRA 2 only) as a reference of a second run on the
    same images: BD-rate 0 against itself; the published curves in bd-rate.json (as anchors and as
    tested curves), bd-rate.md, run.json with their sha256, the caption and the figure's data."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.25, 0.5, 0.5))
    monkeypatch.setattr(machine, "cpu_seconds", lambda: (100.0, 1.0))
    folder = tmp_path / "images"
    folder.mkdir()
    for k in range(2):
        photo(176, 168, seed=k).save(folder / f"{k}.png")
    args = ["rd-curve", str(folder), "--codecs", "none", "--quality", "1,2"]
    assert main(args + ["--metrics", "psnr,ssimulacra2", "--out", str(tmp_path / "first")]) == 0
    first = tmp_path / "first" / "vqzip.json"
    assert set(json.loads(first.read_text())["results"]) >= {"psnr-rgb", "ssimulacra2"}
    capsys.readouterr()

    out = tmp_path / "second"
    assert main(args + ["--reference", str(HYPERPRIOR), "--reference", str(first), "--reference", str(ELIC),
                        "--out", str(out)]) == 0
    std = capsys.readouterr()
    assert "vqzip (vqzip.json)" in std.out and "elic2022" in std.out and "SSIMULACRA 2" in std.out  # vqzip's row
    bd = json.loads((out / "bd-rate.json").read_text())
    keys = ["vqzip", "bmshj2018-hyperprior", "vqzip (vqzip.json)", "elic2022"]
    assert list(bd["bd_rate_percent"]) == keys and bd["metrics"] == ["psnr-rgb", "ms-ssim-rgb-db", "ssimulacra2"]
    assert bd["curves"]["elic2022"] == "elic2022 (published)"
    ours = bd["bd_rate_percent"]["vqzip"]
    assert ours["vqzip (vqzip.json)"]["psnr-rgb"] == pytest.approx(0.0, abs=1e-6)  # the same bytes, the same curve
    assert ours["vqzip (vqzip.json)"]["ssimulacra2"] == pytest.approx(0.0, abs=1e-6)
    assert ours["vqzip (vqzip.json)"]["ms-ssim-rgb-db"] is None  # the first run did not measure it
    assert set(ours["elic2022"]) == set(bd["metrics"]) and ours["elic2022"]["ssimulacra2"] is None
    assert set(bd["bd_rate_percent"]["elic2022"]) == {"vqzip", "bmshj2018-hyperprior", "vqzip (vqzip.json)"}
    md = (out / "bd-rate.md").read_text()
    assert "| | bmshj2018-hyperprior (published) | vqzip (vqzip.json) (published) | elic2022 (published) |" in md
    assert "elic2022 (published) gives no MS-SSIM or SSIMULACRA 2: left out of those comparisons." in md
    assert "compare with this run's only on those same images" in md
    assert "vqzip (vqzip.json) (published) gives no MS-SSIM: left out of those comparisons." in md
    run = json.loads((out / "run.json").read_text())
    assert [(r["file"], r["sha256"]) for r in run["references"]] == [
        (str(p), hashlib.sha256(p.read_bytes()).hexdigest()) for p in (HYPERPRIOR, first, ELIC)]
    caption = (out / "rd.caption.txt").read_text()
    assert "Published curves, not run here (dotted): bmshj2018-hyperprior, vqzip (vqzip.json), elic2022." in caption
    assert hashlib.sha256(HYPERPRIOR.read_bytes()).hexdigest() in caption
    svg = (out / "rd.svg").read_text()
    assert svg.count(">bmshj2018-hyperprior (published)</text>") == 1 and ">SSIMULACRA 2</text>" in svg


@pytest.mark.slow  # matplotlib
def test_the_figure_draws_published_curves_dotted_on_the_panels_of_their_qualities(tmp_path):
    from test_rdcurve import summary_and_run
    from vqzip.eval.plot import figure

    summary, run = summary_and_run(tmp_path)
    refs = read_all([HYPERPRIOR, ELIC])
    run.references = [r.record() for r in refs]
    fig = figure(summary, run, refs)
    psnr, ms_ssim = fig.axes
    published = [line for line in psnr.get_lines() if line.get_label().endswith("(published)")]
    assert [line.get_label() for line in published] == ["bmshj2018-hyperprior (published)", "elic2022 (published)"]
    assert all(line.get_linestyle() == ":" for line in published)
    assert {line.get_linestyle() for line in psnr.get_lines()} - {":"} == {"-", "--"}  # the codecs run: solid, dashed
    assert list(published[0].get_xdata()) == refs[0].results["bpp"] and list(published[0].get_ydata()) == refs[0].results["psnr-rgb"]
    assert [line.get_label() for line in ms_ssim.get_lines() if line.get_label().endswith("(published)")] == [
        "bmshj2018-hyperprior (published)"]  # ELIC gives no MS-SSIM
    (x0, x1), (y0, y1) = psnr.get_xlim(), psnr.get_ylim()
    assert all(x0 < x < x1 and y0 < y < y1 for line in published for x, y in zip(line.get_xdata(), line.get_ydata()))
    refs[0].results["bpp"][-1] = 9.0  # a published point far beyond the rates run is left out of view
    run.references = [r.record() for r in refs]
    assert figure(summary, run, refs).axes[0].get_xlim()[1] == pytest.approx(2.71 * 1.06)

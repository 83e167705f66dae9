"""A lattice model (issue 35) through the evaluation tools: rd-curve's units over a manifest of
anchored levels, the validation sweep's anchored points and the levels JSON chosen from them,
the target search on the anchor, and `vqzip compress -m` at a model's anchor (conftest's
lattice_folder: model 'lat', seven anchors)."""
import csv
import json
from fractions import Fraction

import numpy as np
import pytest

from conftest import photo
from vqzip import api, codec, container, ladder, zoo
from vqzip.cli import main
from vqzip.errors import VqzError
from vqzip.eval import levels, points, validation
from vqzip.operating_point import OperatingPoint


@pytest.fixture()
def lattice_ladder(lattice_folder, monkeypatch) -> zoo.CodecModel:
    """Model 'lat' installed alone, with two levels: 1 at anchor 1 and 2 (the default) at anchor 4."""
    from vqzip.training import set_ladder

    root = lattice_folder.parent
    set_ladder(root, {"1": {"model": "lat", "scale": "1", "anchor": "1"},
                      "2": {"model": "lat", "scale": "1", "anchor": "4"}}, 2)
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    return zoo.load("lat")


def test_an_rd_curve_unit_of_a_lattice_level_estimates_its_rate_at_the_files_anchor(lattice_ladder, tmp_path):
    photo(64, 48, seed=5).save(tmp_path / "a.png")
    estimates = []
    for lv in zoo.levels():
        p = points.code(points.Unit(0, tmp_path / "a.png", 64 * 48, points.VQZIP, lv, ("psnr",)))
        decoded = codec.decompress(codec.compress(photo(64, 48, seed=5), lattice_ladder, lv.point), lattice_ladder)
        bits = sum(codec.estimated_bits(lattice_ladder, decoded.codes, lv.point.anchor).values())
        assert p.estimated_bpp == pytest.approx(bits / (64 * 48)) and 0 < p.estimated_bpp < p.bpp
        estimates.append(p.estimated_bpp)
    assert estimates[0] < estimates[1]  # anchor 1, then 4


def test_rd_curve_over_a_manifest_of_anchored_levels(lattice_ladder, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    photo(64, 48, seed=1).save(folder / "a.png")
    out = tmp_path / "out"
    assert main(["rd-curve", str(folder), "--codecs", "none", "--metrics", "psnr", "--out", str(out)]) == 0
    rows = {r["setting"]: r for r in csv.DictReader(open(out / "rd.csv"))}
    assert set(rows) == {"1", "2"} and float(rows["1"]["bpp"]) < float(rows["2"]["bpp"])
    data = codec.compress(photo(64, 48, seed=1), lattice_ladder, zoo.level(2).point, quality=2)
    assert float(rows["2"]["bpp"]) == pytest.approx(8 * len(data) / (64 * 48))
    run = json.loads((out / "run.json").read_text())
    assert [lv["anchor"] for lv in run["levels"]] == ["1", "4"]
    assert "2 (lat at scale 1, anchor 4)" in json.loads((out / "vqzip.json").read_text())["description"]
    assert "Traceback" not in capsys.readouterr().err


def test_a_point_label_carries_an_anchor_and_old_labels_keep_their_meaning():
    p = ladder.parse_point("lat", "1:0:None:0:5/2")
    assert p == OperatingPoint("lat", None, Fraction(1), 0.0, 0.0, Fraction(5, 2)) and ladder.label(p) == "1:0.0:None:0:5/2"
    assert ladder.parse_point("lat", ladder.label(OperatingPoint("lat", anchor=Fraction(3)))).anchor == 3
    for text in ("1/2:0.02:1", "1:0.02:2:300", "3/4"):
        assert ladder.parse_point("m", text).anchor is None
    assert ladder.manifest_levels([ladder.Measured(p, 1.0, 30.0)], {"lat": "vqz-lat"}) == {
        "1": {"model": "vqz-lat", "scale": "1", "anchor": "5/2"}}


def test_validation_measures_a_lattice_folder_at_anchors_and_the_levels_carry_them(lattice_folder, tmp_path):
    model = validation.load_model(str(lattice_folder))
    images = [np.asarray(photo(176, 168, seed=2))]  # MS-SSIM's least size
    rows = validation.measure_model(model, images, validation.parse_points("1:0:None:0:1,1:0:None:0:3,1:0:None:0:11/2", model.name))
    assert [r["point"] for r in rows] == ["1:0.0:None:0:1", "1:0.0:None:0:3", "1:0.0:None:0:11/2"]
    assert rows[0]["bpp"] < rows[1]["bpp"] < rows[2]["bpp"] and len(rows[0]["images"]) == 1
    for k, r in enumerate(rows):  # a model trained two steps need not gain PSNR with rate: a front given here
        r["psnr"] = 30.0 + k
    (tmp_path / "v.json").write_text(json.dumps({"images": 1, "resize": "1", "results": {f"{lattice_folder}=...": rows}}))
    measured = levels.points_of(tmp_path / "v.json")
    assert [m.point.anchor for m in measured] == [1, 3, Fraction(11, 2)]
    chosen, entries = levels.choose(measured, 2, rows[0]["bpp"], rows[2]["bpp"], names={str(lattice_folder): "lat"})
    assert entries == {"1": {"model": "lat", "scale": "1", "anchor": "1"}, "2": {"model": "lat", "scale": "1", "anchor": "11/2"}}


def test_a_bpp_target_between_two_lattice_levels_is_met_at_an_anchor_between_them(lattice_ladder):
    image = photo(128, 96, seed=4)
    rates = [8 * len(codec.compress(image, lattice_ladder, lv.point)) / (128 * 96) for lv in zoo.levels()]
    target = (rates[0] * rates[1]) ** 0.5
    choice = api.compress_to_target(image, bpp=target, strip=True)
    assert choice.met and choice.quality == 2 and 1 < choice.point.anchor < 4
    assert rates[0] < choice.bpp <= target and (choice.point.anchor * container.ANCHOR_STEPS).denominator == 1
    assert container.anchor_of(container.unpack(choice.data)[0]) == choice.point.anchor


def test_compress_with_a_lattice_model_codes_at_its_middle_anchor_or_the_one_given(lattice_ladder, tmp_path, capsys):
    photo(48, 40).save(tmp_path / "img.png")

    def anchor_of(path):
        return container.anchor_of(container.unpack(path.read_bytes())[0])

    assert main(["compress", str(tmp_path / "img.png"), "-m", "lat", "-v"]) == 0
    assert anchor_of(tmp_path / "img.vqz") == 3 and "lat at scale 1, anchor 3," in capsys.readouterr().err
    assert main(["compress", str(tmp_path / "img.png"), "-m", "lat", "--anchor", "5/2", "-f"]) == 0
    assert anchor_of(tmp_path / "img.vqz") == Fraction(5, 2)
    for args, code, message in ((["-m", "lat", "--anchor", "7"], 1, "anchor 7 is outside 0..6"),
                                (["-m", "lat", "--anchor", "1/3"], 1, "1/256 steps"),
                                (["-m", "lat", "--anchor", "x"], 2, "not a fraction"),
                                (["--anchor", "2"], 2, "goes with -m/--model")):
        assert main(["compress", str(tmp_path / "img.png"), "-o", str(tmp_path / "x.vqz"), *args]) == code
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and not (tmp_path / "x.vqz").exists()


def test_an_anchor_for_a_model_without_a_lattice_is_refused(tiny):
    assert api.model_point(tiny) == OperatingPoint("tiny")
    with pytest.raises(VqzError, match="no lattice map"):
        api.compress(photo(32, 24), model="tiny", anchor=Fraction(1))
    with pytest.raises(VqzError, match="goes with a model"):
        api.compress(photo(32, 24), anchor=Fraction(1))


def test_a_psnr_target_met_by_a_lattice_level_takes_its_lowest_anchor_that_meets_it(lattice_ladder, monkeypatch):
    """The two-step model's PSNR does not move with its anchor: a PSNR that grows with the
    decoded file's anchor (30 dB + the anchor) stands in for a trained model's."""
    anchors = []
    decompress = api.decompress

    def recording(data, **kw):
        anchors.append(container.anchor_of(container.unpack(data)[0]))
        return decompress(data, **kw)

    monkeypatch.setattr(api, "decompress", recording)
    monkeypatch.setattr(api.metrics, "psnr", lambda a, b: 30.0 + float(anchors[-1]))
    choice = api.compress_to_target(photo(64, 48), psnr=32.5, strip=True)  # level 1 (anchor 1) misses, 2 (anchor 4) meets
    assert choice.met and choice.quality == 2 and choice.point.anchor == Fraction(5, 2) and choice.psnr == 32.5
    assert set(anchors) > {1, 4, Fraction(5, 2)} and len(anchors) <= 2 + api.ANCHOR_SEARCH_STEPS


def test_a_lattice_level_without_an_anchor_is_refused_in_one_line(lattice_folder, monkeypatch, tmp_path, capsys):
    """A manifest level the model cannot code (a lattice level naming no anchor) is a ModelError
    naming the level, from the CLI a line and exit 1, not a traceback; export never writes one."""
    from vqzip.training import set_ladder

    root = lattice_folder.parent
    with pytest.raises(VqzError, match="levels.1: .*gives none"):
        set_ladder(root, {"1": {"model": "lat", "scale": "1"}}, 1)
    manifest = json.loads((root / "manifest.json").read_text())  # written by hand then
    (root / "manifest.json").write_text(json.dumps({**manifest, "levels": {"1": {"model": "lat", "scale": "1"}}, "default": 1}))
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    with pytest.raises(VqzError, match="quality level 1 cannot be coded: .*gives none"):
        api.compress(photo(32, 32))
    photo(32, 32).save(tmp_path / "a.png")
    assert main(["compress", str(tmp_path / "a.png")]) == 1
    err = capsys.readouterr().err
    assert "quality level 1 cannot be coded" in err and "Traceback" not in err and not (tmp_path / "a.vqz").exists()


def test_export_of_a_lattice_run_refuses_scales(lattice_folder, tmp_path):
    from vqzip.training.commands import export_model

    with pytest.raises(VqzError, match="need rate anchors"):
        export_model(lattice_folder.parent.parent / "run", "lat2", scales="1", data=tmp_path, checkpoints=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_levels_and_info_show_a_lattice_levels_anchor_and_its_cards_figures(lattice_folder, tmp_path, monkeypatch, capsys):
    """`vqzip levels` (--json and a pipe) gives each level's anchor and the Kodak figures of its
    card's row of that number and anchor; `vqzip info` the anchor a file was coded at."""
    import shutil

    from vqzip.training import set_ladder, write_card

    root = tmp_path / "checkpoints"
    shutil.copytree(lattice_folder.parent, root)
    set_ladder(root, {"1": {"model": "lat", "scale": "1", "anchor": "1"}, "2": {"model": "lat", "scale": "1", "anchor": "9/2"}}, 2)
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    entry = json.loads((root / "manifest.json").read_text())["models"]["lat"]
    rd = {"results": {"setting": ["1", "2"], "bpp": [0.25, 1.5], "psnr-rgb": [30.0, 36.5], "ms-ssim-rgb-db": [12.0, 18.0],
                      "encoding_time": [1.0, 2.0], "decoding_time": [0.5, 0.75]}}
    write_card(root / "lat", entry, None, rd)
    assert main(["levels", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["anchor"], r["kodak_bpp"], r["kodak_psnr"]) for r in rows] == [("1", 0.25, 30.0), ("9/2", 1.5, 36.5)]
    assert main(["levels"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[6:9] == ["9/2", "1.5000", "36.50"]
    card = root / "lat" / "MODEL_CARD.md"
    card.write_text(card.read_text().replace("| 0 | 9/2 |", "| 0 | 4 |"))  # the card's level 2 was at another anchor
    assert main(["levels", "--json"]) == 0
    assert [r["kodak_bpp"] for r in json.loads(capsys.readouterr().out)] == [0.25, None]

    photo(48, 40).save(tmp_path / "img.png")
    assert main(["compress", "-q", str(tmp_path / "img.png"), "--quality", "2"]) == 0
    assert main(["info", "--json", str(tmp_path / "img.vqz")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["anchor"] == "9/2"
    assert main(["info", str(tmp_path / "img.vqz")]) == 0
    assert "quality 2, nearest codes, lattice at rate anchor 9/2" in capsys.readouterr().out

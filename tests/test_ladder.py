"""The quality ladder: levels chosen from measured operating points."""
import math
from fractions import Fraction

import pytest

from vqzip import ladder
from vqzip.operating_point import OperatingPoint


def point(bpp, psnr, scale=Fraction(1), decode_s=1.0, model="m", maps=None, lam=0.0, skip=0.0):
    return ladder.Measured(OperatingPoint(model, maps, scale, lam, skip), bpp, psnr, decode_s)


def test_front_keeps_only_points_no_other_beats():
    pts = [point(0.1, 25), point(0.2, 24), point(0.2, 27), point(0.4, 30), point(0.5, 29)]
    assert [(p.bpp, p.psnr) for p in ladder.front(pts)] == [(0.1, 25), (0.2, 27), (0.4, 30)]


def test_targets_are_evenly_spaced_in_log_rate():
    t = ladder.targets(5, 0.05, 1.6)
    assert t[0] == pytest.approx(0.05) and t[-1] == pytest.approx(1.6)
    assert len({round(b / a, 9) for a, b in zip(t, t[1:])}) == 1
    with pytest.raises(ValueError):
        ladder.targets(1, 0.1, 1)


def test_choose_picks_the_nearest_distinct_front_points_in_order():
    """A dense front: each target gets the point nearest it; a cluster of points near one
    target does not take two levels; upsampling and slow points are never chosen."""
    rates = [0.05 * 1.25**i for i in range(17)]  # 0.05 .. 1.77
    pts = [point(b, 20 + 10 * math.log2(b / 0.05)) for b in rates]
    pts += [point(0.3, 100, scale=Fraction(5, 4)), point(0.31, 100, decode_s=9)]
    chosen = ladder.choose(pts, 5, 0.05, 1.6, max_decode_s=3)
    assert [p.bpp for p in chosen] == sorted({p.bpp for p in chosen})
    for p, t in zip(chosen, ladder.targets(5, 0.05, 1.6)):
        assert abs(math.log(p.bpp / t)) <= math.log(1.25) / 2 + 1e-9
    assert all(p.point.scale <= 1 and p.decode_s <= 3 for p in chosen)


def test_choose_refuses_too_few_points():
    with pytest.raises(ValueError, match="only 2 operating points"):
        ladder.choose([point(0.1, 25), point(0.4, 30), point(0.5, 20)], 3, 0.1, 1)


def test_manifest_entries_name_the_shipped_model():
    chosen = [point(0.1, 25, Fraction(1, 2), maps=2, lam=0.02, model="runs/x"), point(0.4, 30),
              point(0.7, 32, maps=3, lam=0.02, skip=300.0)]
    assert ladder.manifest_levels(chosen, {"runs/x": "vqz-new"}) == {
        "1": {"model": "vqz-new", "scale": "1/2", "maps": 2, "lam": 0.02}, "2": {"model": "m", "scale": "1"},
        "3": {"model": "m", "scale": "1", "maps": 3, "lam": 0.02, "skip": 300.0}}


def test_a_point_label_round_trips_and_counts_maps_from_the_first():
    """validate_rd's labels count the maps after the first latent's (STAGES), as every recorded
    measurement does; an operating point counts them all."""
    for text, maps in (("1/2:0.02:1", 2), ("1:0.0:None", None), ("1:0.02:2:300", 3)):
        p = ladder.parse_point("m", text)
        assert p.maps == maps and ladder.label(p) == text
    assert ladder.parse_point("m", "3/4") == OperatingPoint("m", None, Fraction(3, 4))
    with pytest.raises(ValueError):
        ladder.parse_point("m", "1:0:1:0:3:9")


def test_choose_levels_reads_a_validate_rd_json_with_baselines(tmp_path):
    """bench/choose_levels.py takes the JSON of `bench/validate_rd.py --baselines webp --per-image`:
    the model's points become levels, the classical codec's and the per-image curves do not."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "bench" / "choose_levels.py"
    spec = importlib.util.spec_from_file_location("choose_levels", path)
    choose_levels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(choose_levels)
    row = {"bpp": 0.2, "psnr": 27.0, "decode_s": 0.5}
    (tmp_path / "m.json").write_text(json.dumps({"results": {
        "runs/m=1/2:0.02:1,1:0:None,1:0.02:2:300": [{"point": "1/2:0.02:1", **row}, {"point": "1:0.0:None", **row, "bpp": 0.5},
                                                    {"point": "1:0.02:2:300", **row, "bpp": 0.7}],
        "runs/m=1/2:0.02:1,1:0:None (per image)": [{"point": "mu 1", **row}],
        "webp": [{"point": "quality 5", **row}]}}))
    pts = choose_levels.points_of(tmp_path / "m.json")
    assert [(p.point, p.bpp) for p in pts] == [
        (OperatingPoint("runs/m", 2, Fraction(1, 2), 0.02), 0.2), (OperatingPoint("runs/m", None, Fraction(1), 0.0), 0.5),
        (OperatingPoint("runs/m", 3, Fraction(1), 0.02, 300.0), 0.7)]

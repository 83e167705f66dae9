"""MODEL_CARD.md (`vqzip.training.card`): the shipped vqz-l3's card made again from its recipe is
the same file; a lattice model's card (conftest's lattice_folder) says what froze, how the lattice
trained, its calibration and its figures per anchor; the levels table carries anchors and the
metrics an rd-curve result measured; `vqzip train card` writes a card again."""
import json
import shutil
from fractions import Fraction
from pathlib import Path

import pytest

from vqzip.cli import main
from vqzip.training import recipe, write_card
from vqzip.training.card import portable

ROOT = Path(__file__).resolve().parent.parent
L3_PACKED_BY = ("vqzip train export --run runs/fine-cut --name vqz-l3 --keep-priors runs/exp33/vqz-l3-old --levels "
                "results/vqz-l3-ladder/levels.json --default-level 5 --data ../shared/data/train --tile 32x0 --rd results/kodak/vqzip.json")
L3_RD_COMMAND = ("vqzip rd-curve ../shared/data/kodak --codecs none --metrics psnr,ms-ssim --jobs 2 --threads 1 "
                 "--out results/kodak-levels")


def _shipped_copy(tmp_path: Path, name: str) -> Path:
    """A copy of checkpoints/ with model `name`'s config and manifest (its weights linked, not copied)."""
    (tmp_path / name).mkdir(parents=True)
    shutil.copy(ROOT / "checkpoints" / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(ROOT / "checkpoints" / name / "config.json", tmp_path / name / "config.json")
    (tmp_path / name / "model.safetensors").symlink_to(ROOT / "checkpoints" / name / "model.safetensors")
    return tmp_path / name


def test_vqz_l3s_card_made_again_from_its_recipe_is_the_shipped_file(tmp_path):
    folder = _shipped_copy(tmp_path, "vqz-l3")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    card = write_card(folder, manifest["models"]["vqz-l3"], None,
                      json.loads((ROOT / "results" / "kodak-levels" / "vqzip.json").read_text()),
                      recipe=recipe.load(ROOT / "recipes" / "vqz-l3.toml"), packed_by=L3_PACKED_BY, rd_command=L3_RD_COMMAND)
    assert card.read_bytes() == (ROOT / "checkpoints" / "vqz-l3" / "MODEL_CARD.md").read_bytes()


@pytest.fixture()
def lattice_copy(lattice_folder, tmp_path) -> Path:
    """The exported lattice model 'lat' in a checkpoints folder of its own (its card may be written again)."""
    shutil.copytree(lattice_folder.parent, tmp_path / "checkpoints")
    return tmp_path / "checkpoints" / "lat"


def test_a_lattice_models_card_says_what_froze_how_it_trained_and_its_figures_per_anchor(lattice_folder):
    card = (lattice_folder / "MODEL_CARD.md").read_text()  # written by the export
    config = json.loads((lattice_folder / "config.json").read_text())
    kept = config["training"]["kept_priors"]
    assert "fine (1/2, a lattice of 4 channels of 11 symbols)" in card
    assert "each of its 4 channels a symbol in -5..5" in card and "(0: 0.004, 1: 0.008, 2: 0.016, 3: 0.032, 4: 0.064, 5: 0.128, 6: 0.256)" in card
    assert "the fine map's prior: a discretized Gaussian over 4 channels" in card
    assert f"are those of init (sha256 `{kept['sha256'][:16]}…`), frozen" in card
    assert "init's own training is not recorded in its config." in card
    assert "| lattice (fine map; top and bottom frozen) | 2 | 2 | 32 px | " in card
    assert "the rate term ramped in from zero over the first 25% of the steps; validated every 10 steps on 1 validation images" in card
    assert "calibrated on the coarser maps' codes of 3 training images of `images`" in card
    assert ("integer form (`vqzip.priors`: each kind's exact arithmetic): the top and bottom maps' as init ships them"
            " (kept at export), the fine map's\n  calibrated at export on the coarser maps' codes of 3 training images;") in card
    assert "code maps of training images" not in card  # a VQ model's calibration
    rows = [line for line in card.splitlines() if line.startswith(("| 0 |", "| 3 |", "| 6 |"))]
    val = json.loads((lattice_folder.parent / "manifest.json").read_text())["models"]["lat"]["validation"]["anchors"]
    assert rows == [f"| {a} | {lam} | {val[a]['psnr']:.2f} dB | {val[a]['estimated_bpp']:.4f} bpp |"
                    for a, lam in (("0", "0.004"), ("3", "0.032"), ("6", "0.256"))]
    assert "Packed by `" in card and str(lattice_folder.parent.parent) not in card  # no machine paths


def test_a_lattice_card_shows_the_frozen_models_own_training_as_its_card_does(lattice_copy):
    """The frozen model's training rows and notes are those its own card has (`_vq_training`),
    each after its name: here vqz-l3's record stands in for the init's."""
    config = json.loads((lattice_copy / "config.json").read_text())
    l3 = json.loads((ROOT / "checkpoints" / "vqz-l3" / "config.json").read_text())["training"]
    config["training"]["kept_priors"]["training"] = l3  # "training" is not digested: the model still loads
    config["training"]["lattice"]["ranks"] = 2  # as a torchrun run records it
    (lattice_copy / "config.json").write_text(json.dumps(config))
    manifest = json.loads((lattice_copy.parent / "manifest.json").read_text())
    card = write_card(lattice_copy, manifest["models"]["lat"], None).read_text().splitlines()
    theirs = (ROOT / "checkpoints" / "vqz-l3" / "MODEL_CARD.md").read_text().splitlines()
    table = [line for line in theirs if line.startswith(("| vqvae |", "| vqvae,", "| prior |", "| prior,"))]
    assert len(table) == 9 and [line for line in card if line.startswith("| init: ")] == [
        line.replace("| ", "| init: ", 1) for line in table]
    assert "- init: The priors of the top, bottom map(s) are those of vqz-l3 as it was" in "\n".join(card)
    lattice = card[card.index(next(line for line in card if line.startswith("| init: prior, fine-tuned (fine only)"))) + 1]
    assert lattice.startswith("| lattice (") and " threads, 2 ranks | " in lattice


def test_the_levels_table_carries_anchors_and_the_metrics_rd_curve_measured(lattice_copy):
    from vqzip.training import set_ladder

    set_ladder(lattice_copy.parent, {"1": {"model": "lat", "scale": "1", "anchor": "1"},
                                     "2": {"model": "lat", "scale": "1", "anchor": "9/2"}}, 2)
    entry = json.loads((lattice_copy.parent / "manifest.json").read_text())["models"]["lat"]
    psnr_only = {"results": {"setting": ["1", "2"], "bpp": [0.5, 1.25], "psnr-rgb": [31.0, 35.5],
                             "encoding_time": [1.0, 2.0], "decoding_time": [0.5, 0.75]}}
    card = write_card(lattice_copy, entry, None, psnr_only, rd_command="vqzip rd-curve K --metrics psnr").read_text()
    assert "| level | scale | maps | lambda | skip | anchor | Kodak bpp | Kodak PSNR-RGB | Kodak MS-SSIM | compress s | decompress s |" in card
    assert "| 1 | 1 | all | 0 | 0 | 1 | 0.5000 | 31.00 dB |  | 1.00 | 0.50 |" in card  # MS-SSIM not measured: blank
    assert "| 2 | 1 | all | 0 | 0 | 9/2 | 1.2500 | 35.50 dB |  | 2.00 | 0.75 |" in card
    every = {"results": {**psnr_only["results"], "ms-ssim-rgb-db": [14.0, 17.25], "ssimulacra2": [50.0, 71.25]}}
    card = write_card(lattice_copy, entry, None, every).read_text()
    assert "| Kodak MS-SSIM | Kodak SSIMULACRA 2 | compress s |" in card and "| 9/2 | 1.2500 | 35.50 dB | 17.25 dB | 71.2 | 2.00 |" in card


def test_train_card_writes_a_card_again_with_figures_measured_since(lattice_copy, tmp_path, capsys):
    from vqzip.training import set_ladder

    set_ladder(lattice_copy.parent, {"1": {"model": "lat", "scale": "1", "anchor": "2"}}, 1)
    rd = {"results": {"setting": ["1"], "bpp": [0.75], "psnr-rgb": [33.0], "ms-ssim-rgb-db": [15.0],
                      "encoding_time": [1.5], "decoding_time": [0.5]}}
    (tmp_path / "vqzip.json").write_text(json.dumps(rd))
    packed = json.loads((lattice_copy / "config.json").read_text())["training"]["packed_by"]
    assert main(["train", "card", str(lattice_copy), "--rd", str(tmp_path / "vqzip.json"), "--rd-command", "vqzip rd-curve K"]) == 0
    card = (lattice_copy / "MODEL_CARD.md").read_text()
    assert "| 1 | 1 | all | 0 | 0 | 2 | 0.7500 | 33.00 dB | 15.00 dB | 1.50 | 0.50 |" in card
    assert "Kodak figures: `vqzip rd-curve K`" in card and f"Packed by `{portable(packed)}`" in card  # the export's command
    l3 = _shipped_copy(tmp_path / "shipped", "vqz-l3")
    capsys.readouterr()
    assert main(["train", "card", str(l3)]) == 2  # a VQ export records no packing command
    assert "--packed-by" in capsys.readouterr().err
    assert main(["train", "card", str(l3), "--packed-by", L3_PACKED_BY, "--recipe", str(ROOT / "recipes" / "vqz-l3.toml"),
                 "--rd", str(ROOT / "results" / "kodak-levels" / "vqzip.json"), "--rd-command", L3_RD_COMMAND]) == 0
    assert (l3 / "MODEL_CARD.md").read_bytes() == (ROOT / "checkpoints" / "vqz-l3" / "MODEL_CARD.md").read_bytes()
    (tmp_path / "run.json").write_text("{}")
    assert main(["train", "card", str(lattice_copy), "--rd", str(tmp_path / "run.json")]) == 1
    assert 'run.json: not a `vqzip rd-curve` vqzip.json (no "results" object)' in capsys.readouterr().err
    assert main(["train", "card", str(tmp_path / "nothing")]) == 1
    err = capsys.readouterr().err
    assert "not an exported model" in err and "Traceback" not in err


def test_train_card_refuses_a_malformed_result_in_one_line_and_leaves_the_card(lattice_copy, tmp_path, capsys, monkeypatch):
    """Every field the card reads of --rd and --kodak is checked before the card is written: a
    malformed result is one line naming the file and the field, and the card stays as it was."""
    mean = {"bpp": 0.5, "estimated_bpp": 0.48, "psnr": 30.0, "encode_s": 1.0, "decode_s": 0.5, "preview_s": 0.01, "preview_psnr": 25.0}
    kodak = {"mean": mean, "images": "/work/shared/data/kodak", "json": "/tmp/k.json", "threads": 2}
    rd = {"results": {"setting": ["1"], "bpp": [0.75], "encoding_time": [1.5], "decoding_time": [0.5]}}
    bad = [("--kodak", {"mean": {"bpp": 0.5}}, "mean.estimated_bpp is not a number"),
           ("--kodak", {**kodak, "threads": "2"}, "threads is not a number"),
           ("--kodak", {**kodak, "backend": "gpu"}, "backend 'gpu' is not one of onnx, torch"),
           ("--rd", {"results": {"bpp": [0.5]}}, "results.setting is not a list"),
           ("--rd", {"results": {**rd["results"], "bpp": []}}, "results.bpp is not 1 numbers, one per setting"),
           ("--rd", {"results": {**rd["results"], "psnr-rgb": ["33"]}}, "results.psnr-rgb is not 1 numbers"),
           ("--rd", [], "no \"results\" object")]
    before = (lattice_copy / "MODEL_CARD.md").read_bytes()
    capsys.readouterr()
    for option, result, problem in bad:
        (tmp_path / "result.json").write_text(json.dumps(result))
        assert main(["train", "card", str(lattice_copy), option, str(tmp_path / "result.json")]) == 1
        err = capsys.readouterr().err.strip()
        assert "result.json: not a" in err and problem in err and len(err.splitlines()) == 1, err
        assert (lattice_copy / "MODEL_CARD.md").read_bytes() == before
    assert main(["train", "card", str(lattice_copy), "--rd-command", "vqzip rd-curve K"]) == 2  # names no --rd
    assert "--rd-command" in capsys.readouterr().err
    (tmp_path / "kodak.json").write_text(json.dumps(kodak))
    (tmp_path / "rd.json").write_text(json.dumps(rd))
    monkeypatch.chdir(lattice_copy)  # "." is the model's folder
    assert main(["train", "card", ".", "--kodak", str(tmp_path / "kodak.json"), "--rd", str(tmp_path / "rd.json")]) == 0
    assert "| 0.5000 | 0.4800 | 30.00 dB |" in (lattice_copy / "MODEL_CARD.md").read_text()


def test_shipping_a_lattice_model_beside_a_vq_one_is_a_matter_of_commands(lattice_folder, tmp_path, monkeypatch, capsys):
    """The steps issue 35's long run ends with, on the tiny models: the lattice run exported with a
    ladder that mixes it with the VQ model it froze (`vqzip train export --levels`), its Kodak
    figures measured (here given), its card written again (`vqzip train card`); `vqzip levels`
    then shows each level's anchor and the lattice levels' figures from the card."""
    work = lattice_folder.parent.parent  # conftest's: images/, init/, run/, checkpoints/lat
    root = tmp_path / "checkpoints"
    shutil.copytree(work / "init", root / "init")
    from vqzip.training import register

    register(root, "init", [])
    export = ["train", "export", "--run", str(work / "run"), "--name", "lat", "--data", str(work / "images"),
              "--keep-priors", "init", "--checkpoints", str(root), "--levels", str(tmp_path / "ladder.json"), "--default-level", "2"]
    (tmp_path / "ladder.json").write_text(json.dumps({"levels": {
        "1": {"model": "init", "scale": "1/2"}, "2": {"model": "lat", "scale": "1", "anchor": "99"}}}))
    before = (root / "manifest.json").read_text()
    capsys.readouterr()
    assert main(export) == 1  # the anchor is checked against the model once exported, before it is registered
    err = capsys.readouterr().err.strip()
    assert "levels.2: model 'lat': rate anchor 99 is outside 0..6" in err and len(err.splitlines()) == 1
    assert (root / "manifest.json").read_text() == before
    (tmp_path / "ladder.json").write_text(json.dumps({"levels": {
        "1": {"model": "init", "scale": "1/2"}, "2": {"model": "lat", "scale": "1", "anchor": "3"},
        "3": {"model": "lat", "scale": "1", "anchor": "11/2"}}}))
    assert main(export) == 0
    (tmp_path / "vqzip.json").write_text(json.dumps({"results": {
        "setting": ["1", "2", "3"], "bpp": [0.1, 0.8, 1.6], "psnr-rgb": [25.0, 33.0, 37.0], "ms-ssim-rgb-db": [9.0, 15.0, 19.0],
        "encoding_time": [0.5, 1.0, 1.5], "decoding_time": [0.25, 0.5, 0.75]}}))
    assert main(["train", "card", str(root / "lat"), "--rd", str(tmp_path / "vqzip.json"),
                 "--rd-command", "vqzip rd-curve ../shared/data/kodak --codecs none --out results/kodak-levels"]) == 0
    card = (root / "lat" / "MODEL_CARD.md").read_text()
    assert "| 3 | 1 | all | 0 | 0 | 11/2 | 1.6000 | 37.00 dB | 19.00 dB | 1.50 | 0.75 |" in card
    packed = json.loads((root / "lat" / "config.json").read_text())["training"]["packed_by"]  # the export's command
    assert f"Packed by `{portable(packed)}`" in card
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    capsys.readouterr()
    assert main(["levels", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["anchor"], r["kodak_psnr"], r["default"]) for r in rows] == [
        ("init", None, None, False), ("lat", "3", 33.0, True), ("lat", "11/2", 37.0, False)]


def test_train_ladder_sets_a_mixed_ladder_on_exported_models_or_leaves_the_old_one(lattice_folder, tmp_path, capsys):
    work = lattice_folder.parent.parent
    root = tmp_path / "checkpoints"
    shutil.copytree(lattice_folder.parent, root)
    shutil.copytree(work / "init", root / "init")
    from vqzip.training import register

    register(root, "init", [Fraction(1)])
    before = (root / "manifest.json").read_text()
    ladder = {"levels": {"1": {"model": "init", "scale": "1/2"}, "2": {"model": "lat", "scale": "1", "anchor": "5/2"}}}
    (tmp_path / "ladder.json").write_text(json.dumps(ladder))
    (tmp_path / "bad.json").write_text(json.dumps({"levels": {"1": {"model": "nobody", "scale": "1"}}}))
    assert main(["train", "ladder", str(tmp_path / "bad.json"), "--default-level", "1", "--checkpoints", str(root)]) == 1
    err = capsys.readouterr().err
    assert "nobody" in err and "Traceback" not in err and (root / "manifest.json").read_text() == before
    refused = {"rate anchor 99 is outside 0..6": {"model": "lat", "scale": "1", "anchor": "99"},
               "1/256 steps": {"model": "lat", "scale": "1", "anchor": "1/3"},
               "the operating point gives none": {"model": "lat", "scale": "1"},  # a lattice level with no anchor
               "lam > 0": {"model": "lat", "scale": "1", "anchor": "2", "lam": 0.5},
               "'init' has no lattice map": {"model": "init", "scale": "1", "anchor": "2"}}
    for problem, level in refused.items():
        (tmp_path / "bad.json").write_text(json.dumps({"levels": {"1": {"model": "init", "scale": "1"}, "2": level}}))
        assert main(["train", "ladder", str(tmp_path / "bad.json"), "--default-level", "1", "--checkpoints", str(root)]) == 1
        err = capsys.readouterr().err.strip()
        assert f"{root / 'manifest.json'}: levels.2: " in err and problem in err and len(err.splitlines()) == 1, err
        assert (root / "manifest.json").read_text() == before
    assert main(["train", "ladder", str(tmp_path / "ladder.json"), "--default-level", "2", "--checkpoints", str(root)]) == 0
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["levels"] == ladder["levels"] and manifest["default"] == 2
    assert main(["train", "ladder", str(tmp_path / "ladder.json"), "--default-level", "2", "--checkpoints", str(tmp_path / "none")]) == 1
    assert "no manifest.json" in capsys.readouterr().err

"""Training recipes (`vqzip.training.recipe`, `vqzip train run`): the shipped models' recipes read
and name their data; a tiny recipe of every phase kind runs end to end from the repository's own
files, interrupted and resumed, and its model codes an image."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import photo
from vqzip import codec, zoo
from vqzip.cli import app, register
from vqzip.errors import VqzError
from vqzip.training import recipe

ROOT = Path(__file__).parent.parent
TINY = Path(__file__).parent / "assets" / "tiny-recipe.toml"
TRAIN = Path(__file__).parent / "assets" / "train"


@pytest.mark.parametrize("name", ["vqz-l3", "vqz-base"])
def test_the_shipped_models_recipes_read_and_match_their_models(name):
    """Each shipped model has a recipe: its data list (618 images), its phases, and the network and
    prior configs of its model (the shipped config.json's)."""
    r = recipe.load(ROOT / "recipes" / f"{name}.toml")
    assert r.name == name and len(r.data) == 618
    shipped = json.loads((ROOT / "checkpoints" / name / "config.json").read_text())
    last_net = [p for p in r.phases if p.kind == "vqvae"][-1].options["net"]
    assert last_net == shipped["net"]
    last_export = [p for p in r.phases if p.kind == "export"][-1]
    assert last_export.options["model"] == name
    manifest = json.loads((ROOT / "checkpoints" / "manifest.json").read_text())
    ours = {q: lv for q, lv in manifest["levels"].items() if lv["model"] == name}
    assert not ours or r.ladder == {"default": manifest["default"], "levels": ours}  # vqz-base's ladder was replaced


def test_a_recipe_names_its_bad_field_in_one_line(tmp_path):
    text = TINY.read_text()
    cases = [(text.replace('kind = "rdo-codes"', 'kind = "rdo"'), "phase 'rdo-codes'.kind: 'rdo' is not one of"),
             (text.replace('run = "bottom-cut"', 'run = "export-rdo"'), "phase 'export'.run: 'export-rdo' is a export phase, not prior"),
             (text.replace('network = "rdo-codes"', 'network = "later"'), "phase 'priors-rdo'.network: 'later' is no phase before it"),
             (text.replace("steps = 3\n", "steps = 3\nsteps_per = 1\n"), "phase 'priors'.steps_per: not an option of a prior phase"),
             (text.replace('scale = "1/2"', 'scale = "0"'), "ladder: levels.1.scale: \"0\" is not a positive fraction"),
             (text.replace("steps = 3\n", "steps = 2.5\n"), "phase 'priors'.steps: 2.5 is not a whole number"),
             (text.replace('[data.sha256]', '[other]'), "other: not a field of a recipe"),
             (text.replace('[data.sha256]', '[data.files]'), "data.sha256: missing")]
    for bad, message in cases:
        (tmp_path / "r.toml").write_text(bad)
        with pytest.raises(VqzError, match=message.replace("(", r"\(")):
            recipe.load(tmp_path / "r.toml")


def test_the_data_is_checked_against_the_list_first(tmp_path):
    r = recipe.load(TINY)
    data = tmp_path / "data"
    shutil.copytree(TRAIN, data)
    recipe.check_data(r, data)
    (data / "im1.png").write_bytes((data / "im1.png").read_bytes() + b"\0")
    with pytest.raises(VqzError, match=r"im1.png: sha256 [0-9a-f]{16}… is not the recipe's e6c90531e41ad1ca…"):
        recipe.run(r, data, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing ran
    (data / "im1.png").unlink()
    with pytest.raises(VqzError, match=r"im1.png: missing \(recipe .*tiny-recipe.toml lists it\)"):
        recipe.check_data(r, data)
    shutil.copy(TRAIN / "im1.png", data / "im1.png")
    shutil.copy(TRAIN / "im1.png", data / "im3.png")
    with pytest.raises(VqzError, match="im3.png: not in recipe .* data list"):
        recipe.check_data(r, data)


def test_train_run_interrupted_resumed_exported_and_used(tmp_path, monkeypatch):
    """`vqzip train run` from the repository's files alone: stopped after 4 steps inside phase I,
    run again to the end (phase I going on from its saved state), every phase done, a model
    exported with the ladder and its card, which codes an image; a third run skips every phase."""
    run = tmp_path / "run"
    cli = CliRunner()
    args = ["train", "run", str(TINY), "--data", str(TRAIN), "--out", str(run)]
    register(args)  # the command's module, as `main` imports it (alone, this file imported none)
    first = cli.invoke(app, args + ["--max-steps", "4"])
    assert first.exit_code == 0, first.output
    assert "stopped" in first.output and not (run / "network" / recipe.DONE).exists()
    assert torch.load(run / "network" / "vqvae-state.pt", weights_only=True)["step"] == 4

    second = cli.invoke(app, args)
    assert second.exit_code == 0, second.output
    steps = [json.loads(line)["step"] for line in (run / "network" / "vqvae-log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # resumed at 4, not started again
    assert all((run / p.name / recipe.DONE).exists() for p in recipe.load(TINY).phases)

    root = run / "checkpoints"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["default"] == 2 and [lv["model"] for lv in manifest["levels"].values()] == ["tiny", "tiny"]
    assert manifest["models"]["tiny"]["validation"]["images"] == 1
    config = json.loads((root / "tiny" / "config.json").read_text())
    assert config["training"]["kept_priors"]["maps"] == ["top"]
    assert config["priors"][1]["channels"] == 8 and config["priors"][1]["blocks"] == 1
    card = (root / "tiny" / "MODEL_CARD.md").read_text()
    assert "three crops of tests/assets/photo.png. 3 images, each listed with its sha256" in card and "| bottom-cut | prior | network: priors, init: priors | 2 |" in card
    assert "which trained every map's prior, then the 1 marked kept; the last of them on the code maps RDO chose" in card
    assert str(tmp_path) not in card

    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    model = zoo.load("tiny")
    for quality in (1, 2):
        level = zoo.level(quality)
        data = codec.compress(photo(40, 24, seed=9), model, level.point)
        assert codec.decompress(data, model).image.size == (40, 24)

    third = cli.invoke(app, args)
    assert third.exit_code == 0 and third.output.count(": done") == 7, third.output

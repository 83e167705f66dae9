"""The model manifest: every malformed field is a one-line ModelError naming the manifest and
the field (vqzip/zoo.py)."""
import json
import shutil

import pytest

from conftest import photo
from vqzip import zoo
from vqzip.cli import main
from vqzip.errors import ModelError


def _set(path: str, value):
    """A change to the manifest: set the field at a dotted path (None deletes it)."""
    def change(m):
        *parents, last = path.split(".")
        for key in parents:
            m = m[key]
        if value is None:
            del m[last]
        else:
            m[last] = value
    return change


BROKEN = [  # (change, field named, words of the problem)
    (_set("levels.1.scale", "1/0"), "levels.1.scale", '"1/0" is not a positive fraction'),
    (_set("levels.1.scale", "half"), "levels.1.scale", "is not a positive fraction"),
    (_set("levels.1.scale", "-1/2"), "levels.1.scale", "is not a positive fraction"),
    (_set("levels.1.scale", True), "levels.1.scale", "true is not a scale"),
    (_set("levels.1.scale", None), "levels.1.scale", "missing"),
    (_set("models.tiny.sha256", "abc123"), "models.tiny.sha256", "is not a sha256"),
    (_set("models.tiny.sha256", 5), "models.tiny.sha256", "5 is not a sha256"),
    (_set("models.tiny.sha256", None), "models.tiny.sha256", "missing"),
    (_set("models.tiny.folder", None), "models.tiny.folder", "missing"),
    (_set("models.tiny.folder", ["tiny"]), "models.tiny.folder", "is not a folder name"),
    (_set("models.tiny", "tiny"), "models.tiny", "is not an object"),
    (_set("levels.2.model", "vqz-huge"), "levels.2.model", "'vqz-huge' is not one of models (tiny)"),
    (_set("levels.2.model", None), "levels.2.model", "missing"),
    (_set("levels.2.stages", 0), "levels.2.stages", "0 is not at least 1"),
    (_set("levels.2.stages", "2"), "levels.2.stages", '"2" is not a number of stages'),
    (_set("levels.2.lam", -0.5), "levels.2.lam", "-0.5 is not a finite number at least 0"),
    (_set("levels.2.lam", "big"), "levels.2.lam", '"big" is not a number'),
    (_set("levels.2.skip", -1), "levels.2.skip", "-1 is not a finite number at least 0"),
    (_set("levels.2.skip", float("inf")), "levels.2.skip", "Infinity is not a finite number at least 0"),
    (_set("levels.x", {"model": "tiny", "scale": "1"}), "levels.x", "not a quality level number"),
    (_set("levels", [{"model": "tiny", "scale": "1"}]), "levels", "is not an object of quality levels"),
    (_set("levels", {}), "levels", "no quality levels"),
    (_set("levels", None), "levels", "missing"),
    (_set("models", None), "models", "missing"),
    (_set("default", 9), "default", "9 is not one of levels (1, 2)"),
    (_set("default", "2"), "default", '"2" is not a quality level'),
    (_set("default", None), "default", "missing"),
]


@pytest.fixture()
def checkpoints(tiny_checkpoints, tmp_path, monkeypatch):
    """A copy of the tiny checkpoints to break, in use."""
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints, root)
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    return root


def _break(root, change):
    m = json.loads((root / "manifest.json").read_text())
    change(m)
    (root / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("change,field,problem", BROKEN, ids=[f"{c[1]}:{c[2][:20]}" for c in BROKEN])
def test_a_malformed_field_is_named(checkpoints, capsys, change, field, problem):
    _break(checkpoints, change)
    with pytest.raises(ModelError) as e:
        zoo.levels()
    message = str(e.value)
    assert message.startswith(f"model manifest {checkpoints / 'manifest.json'}: {field}: ") and problem in message
    assert "\n" not in message
    assert main(["levels"]) == 1
    err = capsys.readouterr().err
    assert err == f"vqzip: error: {message}\n"


@pytest.mark.parametrize("text,problem", [("{", "is not valid JSON"), ("[]", "not a JSON object"),
                                          ("\xff", "cannot read model manifest")])
def test_an_unreadable_manifest_is_one_line(checkpoints, capsys, text, problem):
    (checkpoints / "manifest.json").write_bytes(text.encode("latin-1"))
    assert main(["levels"]) == 1
    err = capsys.readouterr().err
    assert problem in err and str(checkpoints / "manifest.json") in err and err.count("\n") == 1


def test_a_missing_model_folder_is_named(checkpoints, capsys):
    shutil.rmtree(checkpoints / "tiny")
    photo(16, 16).save(checkpoints.parent / "x.png")
    assert main(["levels"]) == 0  # the manifest itself is fine
    capsys.readouterr()
    assert main(["compress", str(checkpoints.parent / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vqzip: error: model manifest {checkpoints / 'manifest.json'}: models.tiny.folder: "
                          f"no folder {checkpoints / 'tiny'}") and err.count("\n") == 1


def test_the_shipped_manifest_passes(monkeypatch):
    monkeypatch.delenv("VQZIP_CHECKPOINTS", raising=False)
    levels = zoo.levels()
    assert [lv.quality for lv in levels] == list(range(1, len(levels) + 1)) and len(levels) >= 8
    assert all(lv.scale <= 1 for lv in levels)  # a family's levels code more maps, never a bigger image
    assert 1 <= zoo.level(None).quality <= len(levels)

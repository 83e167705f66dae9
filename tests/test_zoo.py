"""The model manifest: every malformed field is a one-line ModelError naming the manifest and
the field (vqzip/zoo.py)."""
import json
import shutil
from pathlib import Path

import pytest

from conftest import photo
from vqzip import container, manifest, zoo
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
    (_set("models.tiny.config_sha256", None), "models.tiny.config_sha256", "missing"),
    (_set("models.tiny.config_sha256", "abc"), "models.tiny.config_sha256", "is not an object of sha256"),
    (_set("models.tiny.config_sha256.net", "abc"), "models.tiny.config_sha256.net", '"abc" is not a sha256'),
    (_set("levels.2.maps", 1), "levels.2.maps", "1 is not at least 2"),
    (_set("levels.2.maps", "2"), "levels.2.maps", '"2" is not a number of maps'),
    (_set("levels.2.stages", 1), "levels.2.stages", "renamed: give maps"),
    (_set("levels.2.lam", -0.5), "levels.2.lam", "-0.5 is not a finite number at least 0"),
    (_set("levels.2.lam", "big"), "levels.2.lam", '"big" is not a number'),
    (_set("levels.2.skip", -1), "levels.2.skip", "-1 is not a finite number at least 0"),
    (_set("levels.2.skip", float("inf")), "levels.2.skip", "Infinity is not a finite number at least 0"),
    (_set("levels.x", {"model": "tiny", "scale": "1"}), "levels.x", "not a quality level number"),
    (_set("levels", [{"model": "tiny", "scale": "1"}]), "levels", "is not an object of quality levels"),
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
    assert all(lv.point.scale <= 1 for lv in levels)  # a family's levels code more maps, never a bigger image
    assert 1 <= zoo.level(None).quality <= len(levels)


@pytest.mark.parametrize("tamper,field", [(lambda c: c["net"].update(padding="replicate"), "net"),
                                          (lambda c: c["priors"][0].update(first_kernel=c["priors"][0]["first_kernel"] + 2), "priors"),
                                          (lambda c: c.update(arch="vqvae3"), "arch")])
def test_a_tampered_config_is_refused_in_one_line(checkpoints, capsys, tamper, field):
    """The weights' sha256 (a file's model hash) does not cover config.json: its decoding fields
    are checked against the manifest's digests, so a changed padding or prior kernel, which would
    silently change what every file decodes to, is refused, naming the model and the field."""
    path = checkpoints / "tiny" / "config.json"
    cfg = json.loads(path.read_text())
    tamper(cfg)
    path.write_text(json.dumps(cfg, indent=2))
    zoo._load_cached.cache_clear()
    with pytest.raises(ModelError) as e:
        zoo.load("tiny")
    assert str(e.value).startswith(f"model 'tiny': config.json's {field} differs") and "\n" not in str(e.value)
    photo(16, 16).save(checkpoints.parent / "x.png")
    assert main(["compress", str(checkpoints.parent / "x.png")]) == 1
    assert capsys.readouterr().err.startswith("vqzip: error: model 'tiny': config.json's")


def test_the_training_record_and_name_are_not_digested(checkpoints):
    path = checkpoints / "tiny" / "config.json"
    cfg = json.loads(path.read_text())
    cfg["training"] = {"note": "edited"}
    cfg["name"] = "renamed"
    path.write_text(json.dumps(cfg))
    zoo._load_cached.cache_clear()
    assert zoo.load("tiny").name == "tiny"


def test_the_shipped_models_load_with_their_configs_checked(monkeypatch):
    monkeypatch.delenv("VQZIP_CHECKPOINTS", raising=False)
    for name, entry in zoo.manifest()["models"].items():
        cfg = json.loads((zoo.checkpoints_dir() / entry["folder"] / "config.json").read_text())
        assert entry["config_sha256"] == zoo.config_digests(cfg) and set(entry["config_sha256"]) == {"arch", "net", "priors"}
        assert zoo.load(name).name == name


def test_the_manifest_is_read_once_until_it_changes(checkpoints, monkeypatch):
    """Read and checked once per version of the file, not per call; a rewrite is seen."""
    zoo.manifest()
    checks = []
    check = zoo.check_manifest
    monkeypatch.setattr(manifest, "check_manifest", lambda m, p, **kw: checks.append(p) or check(m, p, **kw))
    for _ in range(3):
        zoo.levels(), zoo.level(None), zoo.name_for_hash(b"\0" * 8)
    assert checks == []
    m = zoo.manifest()
    m["default"] = 1  # a copy: the cached manifest is not changed by its callers
    assert zoo.level(None).quality == 2
    (checkpoints / "manifest.json").write_text(json.dumps(m, indent=1))
    assert zoo.level(None).quality == 1 and len(checks) == 1


def test_model_folders_add_to_the_shipped_models(tiny_checkpoints, monkeypatch, capsys):
    """VQZIP_CHECKPOINTS used to hide the shipped models: a file made with one then named a
    model "not installed". Now its folder adds its models, and its levels are the ladder."""
    import json

    from vqzip import codec
    from vqzip.cli import main

    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(tiny_checkpoints))
    assert {"tiny", "vqz-l3", "vqz-base"} <= set(zoo.manifest()["models"])
    assert [lv.point.model for lv in zoo.levels()] == ["tiny", "tiny"]
    golden = Path(__file__).parent / "golden" / "v4-l3-tiger-crop-top.vqz"
    assert codec.model_for(container.unpack(golden.read_bytes())[0]).name == "vqz-l3"
    assert main(["models", "--json"]) == 0
    where = {m["name"]: m["where"] for m in json.loads(capsys.readouterr().out)}
    assert where["tiny"] == "given" and where["vqz-l3"] == "shipped"
    monkeypatch.delenv("VQZIP_CHECKPOINTS")
    assert "tiny" not in zoo.manifest()["models"]
    assert main(["levels", "--json", "--models", str(tiny_checkpoints)]) == 0  # --models: the same, for one command
    assert [lv["model"] for lv in json.loads(capsys.readouterr().out)] == ["tiny", "tiny"]
    assert "tiny" not in zoo.manifest()["models"]


def test_the_user_folder_adds_models_but_never_changes_the_levels(tiny_checkpoints, tmp_path, monkeypatch):
    user = tmp_path / "xdg" / "vqzip" / "models"
    shutil.copytree(tiny_checkpoints, user)
    monkeypatch.delenv("VQZIP_CHECKPOINTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert zoo.user_dir() == user
    assert zoo.load("tiny").name == "tiny" and zoo.manifest()["models"]["tiny"]["folder"] == str(user / "tiny")
    assert {lv.point.model for lv in zoo.levels()} == {"vqz-l3"}
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert zoo.user_dir() == tmp_path / ".local" / "share" / "vqzip" / "models"


def test_a_folder_without_levels_adds_its_models_and_the_levels_stay_the_shipped(tiny_checkpoints, tmp_path, monkeypatch):
    """A folder of models used by name (`train export --scales none`) has no levels: it used to stop
    every command, shipped files included ("levels: no quality levels")."""
    from vqzip import codec

    folder = tmp_path / "by-name"
    shutil.copytree(tiny_checkpoints, folder)
    m = json.loads((folder / "manifest.json").read_text())
    m["levels"] = {}
    (folder / "manifest.json").write_text(json.dumps(m))
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(folder))
    assert zoo.load("tiny").name == "tiny"
    assert {lv.point.model for lv in zoo.levels()} == {"vqz-l3"}
    golden = Path(__file__).parent / "golden" / "v4-l3-tiger-crop-top.vqz"
    assert codec.decompress(golden.read_bytes()).image.size == (160, 96)


def test_a_model_named_like_a_shipped_one_hides_neither_its_files_nor_its_levels(tiny_checkpoints, tmp_path, monkeypatch):
    """A file names its model by hash, and the shipped ladder codes with the shipped models: a
    model of yours named vqz-l3 changes neither (it made vqz-l3's files "not installed", and
    coded every level with it)."""
    from vqzip import codec

    user = tmp_path / "xdg" / "vqzip" / "models"
    shutil.copytree(tiny_checkpoints, user)
    m = json.loads((user / "manifest.json").read_text())
    m["models"]["vqz-l3"] = m["models"].pop("tiny")
    m["levels"] = {q: dict(lv, model="vqz-l3") for q, lv in m["levels"].items()}
    (user / "manifest.json").write_text(json.dumps(m))
    monkeypatch.delenv("VQZIP_CHECKPOINTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    golden = Path(__file__).parent / "golden" / "v4-l3-tiger-crop-top.vqz"
    header = container.unpack(golden.read_bytes())[0]
    model = codec.model_for(header)
    assert model.hash8 == header.model_hash and zoo.load("vqz-l3").hash8 == header.model_hash

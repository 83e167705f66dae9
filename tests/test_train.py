import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from conftest import TINY, TINY_NET, photo
from vqzip.priors.pixelcnn import PixelCNNConfig
from vqzip import codec, training, zoo
from vqzip.errors import VqzError
from vqzip.training.card import _stages
from vqzip.operating_point import OperatingPoint


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    for k in range(4):  # index 0 is held out for validation
        photo(64, 48, seed=k).save(folder / f"im{k}.png")
    return folder


@pytest.mark.slow  # trains
def test_train_resume_export_and_use(images, tmp_path, monkeypatch):
    run = tmp_path / "run"
    small = dict(batch=2, crop=32, save_every=2, log_every=1, warmup=1)
    training.train_vqvae(images, run, "vqvae2", TINY_NET, training.TrainConfig(steps=3, **small))
    meta = training.train_vqvae(images, run, "vqvae2", TINY_NET, training.TrainConfig(steps=5, **small))  # resumes at 3
    assert meta["steps_done"] == 5
    steps = [json.loads(line)["step"] for line in (run / "vqvae-log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]

    cfgs = [PixelCNNConfig(**c) for c in TINY["priors"]]
    meta = training.train_prior(images, run, cfgs, training.TrainConfig(steps=3, **small))
    assert meta["steps_done"] == 3 and (run / "prior.safetensors").exists()

    root = tmp_path / "ckpt"
    folder = training.export(run, root / "m")
    assert (folder / "model.safetensors").stat().st_mode == (folder / "config.json").stat().st_mode  # the umask's, not 0600
    val = training.validate(folder, images)
    assert val["images"] == 1 and val["psnr"] > 0 and val["estimated_bpp"] > 0 and val["preview_psnr"] > 0
    entry = training.register(root, "m", [Fraction(1)], Fraction(1), validation=val)
    card = training.write_card(folder, entry, None).read_text()
    assert entry["sha256"] in card and "vqvae" in card
    kodak = {"images": "kodak", "json": "k.json", "threads": 2, "mean": dict.fromkeys(
        ("bpp", "estimated_bpp", "psnr", "encode_s", "decode_s", "preview_s", "preview_psnr"), 1.0)}
    for backend, says in ((None, "2 threads, the networks in torch."), ("onnx", "2 threads, the networks in ONNX Runtime.")):
        result = kodak if backend is None else {**kodak, "backend": backend}  # none: measured before issue 37, on torch
        assert says in training.write_card(folder, entry, result).read_text()

    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    model = zoo.load("m")
    assert codec.decompress(codec.compress(photo(30, 20), model)).image.size == (30, 20)

    training.export(run, root / "m2")  # a second model without quality levels: used by name only
    training.register(root, "m2", [])
    assert [lv.point.model for lv in zoo.levels()] == ["m"] and zoo.load("m2").name == "m2"


@pytest.mark.slow  # trains
def test_prior_crops_match_the_codec_condition():
    """Training's cropped condition equals the codec's whole-map condition, cropped."""
    import torch

    from vqzip.priors.pixelcnn import PixelCNN

    torch.manual_seed(0)
    # a coarser map (x2) and an earlier stage of the same level (x1), as a second bottom stage sees them
    prior = PixelCNN(PixelCNNConfig(num_codes=32, channels=16, first_kernel=3, blocks=2, conds=((16, 2), (32, 1)),
                                    cond_channels=8)).eval()
    conds = [torch.randint(0, 16, (7, 9)), torch.randint(0, 32, (14, 18))]
    full = prior.cond_canvas(prior.condition([c[None] for c in conds]))
    r, s = prior.cfg.reach, 4
    with torch.no_grad():
        for y in range(0, 14 - s + 1, 2):
            for x in range(0, 18 - s + 1, 2):
                crops = prior.cond_canvas_crop(conds, y, x, s)
                assert len(crops) == 2
                for crop, f in zip(crops, full):
                    assert torch.allclose(crop, f[0, :, y : y + s + r, x : x + s + 2 * r], atol=1e-6)


@pytest.mark.slow  # trains
def test_fine_tuning_starts_from_the_init_run_and_keeps_its_record(images, tmp_path):
    small = dict(batch=2, crop=32, log_every=1, warmup=1)
    base = tmp_path / "base"
    training.train_vqvae(images, base, "vqvae2", TINY_NET, training.TrainConfig(steps=2, **small))
    tuned = tmp_path / "tuned"
    meta = training.train_vqvae(images, tuned, "vqvae2", TINY_NET, training.TrainConfig(steps=1, lr=0.0, min_lr=0.0, **small),
                                init=base)
    assert meta["init"]["steps_done"] == 2
    assert [m["steps_done"] for m in _stages(meta)] == [2, 1]
    a, b = training.load_net(base).state_dict(), training.load_net(tuned).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if "vq_" not in k)  # lr 0: only the EMA codebooks move
    other = {**TINY_NET, "channels": 8}
    with pytest.raises(VqzError, match="does not fit"):
        training.train_vqvae(images, tmp_path / "bad", "vqvae2", other, training.TrainConfig(steps=1, **small), init=base)


@pytest.mark.slow  # trains
def test_a_run_continued_from_landed_weights_goes_on_with_its_schedule(images, tmp_path):
    """--start-step N with --init: the run logs steps N+1.. and follows the first run's learning
    rate once its new warm-up is over."""
    small = dict(batch=2, crop=32, log_every=1, warmup=2)
    first = tmp_path / "first"
    training.train_vqvae(images, first, "vqvae2", TINY_NET, training.TrainConfig(steps=3, **small))
    later = tmp_path / "later"
    meta = training.train_vqvae(images, later, "vqvae2", TINY_NET, training.TrainConfig(steps=8, start=3, seed=1, **small),
                                init=first)
    assert meta["steps_done"] == 8 and meta["init"]["steps_done"] == 3
    assert [json.loads(line)["step"] for line in (later / "vqvae-log.jsonl").read_text().splitlines()] == [4, 5, 6, 7, 8]
    whole, cont = training.TrainConfig(steps=8, **small), training.TrainConfig(steps=8, start=3, **small)
    assert training.lr_at(3, cont) == pytest.approx(training.lr_at(3, whole) / 2)  # warming up again
    assert all(training.lr_at(s, cont) == training.lr_at(s, whole) for s in range(4, 8))
    longer = training.TrainConfig(steps=8, start=3, **{**small, "warmup": 4})
    assert training.lr_at(4, longer) < training.lr_at(4, whole) and training.lr_at(7, longer) == training.lr_at(7, whole)
    with pytest.raises(VqzError, match="start step 8"):
        training.train_vqvae(images, tmp_path / "none", "vqvae2", TINY_NET, training.TrainConfig(steps=8, start=8, **small))


@pytest.mark.slow  # trains
def test_fine_tuning_may_add_residual_stages(images, tmp_path):
    """A run with more residual stages than its init run starts the new stages fresh and keeps
    every other weight; a run with fewer does not fit."""
    small = dict(batch=2, crop=32, log_every=1, warmup=1)
    base = tmp_path / "base"
    one = {**TINY_NET, "fine_stages": 1}
    training.train_vqvae(images, base, "vqvae2", one, training.TrainConfig(steps=1, **small))
    grown = tmp_path / "grown"
    training.train_vqvae(images, grown, "vqvae2", {**one, "fine_stages": 2, "bottom_stages": 1},
                         training.TrainConfig(steps=1, lr=0.0, min_lr=0.0, **small), init=base)
    a, b = training.load_net(base).state_dict(), training.load_net(grown).state_dict()
    assert any(k.startswith("vq_f.stages.1.") for k in b) and not any(k.startswith("vq_f.stages.1.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a if "vq_" not in k)
    with pytest.raises(VqzError, match="does not fit"):
        training.train_vqvae(images, tmp_path / "shrunk", "vqvae2", TINY_NET, training.TrainConfig(steps=1, **small),
                             init=grown)


def test_auto_precision_is_bf16_only_where_it_is_native(monkeypatch):
    from vqzip.training import loop

    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(loop, "native_bf16", lambda device: native)
        assert training.TrainConfig().precision == expected
        assert training.TrainConfig(precision="bf16").precision == "bf16"  # asked for, it is kept
    with pytest.raises(VqzError, match="fp16"):
        training.TrainConfig(precision="fp16")


def test_colour_crops_paint_flat_colours():
    from vqzip import data

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 50, 3), dtype=np.uint8) for _ in range(3)]
    plain = data.CropSampler(images, 16, seed=1).batch(200)
    painted = data.CropSampler(images, 16, seed=1, colour=0.5).batch(200)
    flat = [(c == c[:, :1, :1]).all() for c in painted]
    assert not any((c == c[:, :1, :1]).all() for c in plain)
    assert 20 < sum(flat) < 80  # about a quarter: half the painted crops
    assert (painted == 255).mean() > (plain == 255).mean() + 0.02 and (painted == 0).mean() > (plain == 0).mean() + 0.02


@pytest.mark.slow  # trains
def test_torchrun_two_ranks_train_as_one_process_with_the_same_global_batch(images, tmp_path):
    """Data parallel under torchrun (gloo): 2 ranks of 2 crops each give the weights one process
    of 4 crops gives; rank 0 alone writes; a rerun resumes."""
    import subprocess
    import sys

    from safetensors.torch import load_file

    args = ["train", "vqvae", "--data", str(images), "--batch", "4", "--crop", "32", "--channels", "16",
            "--codes", "32", "--code-dim", "8", "--precision", "fp32", "--lr", "3e-3"]
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    runs = {}
    for name, launch in (("one", [sys.executable, "-m", "vqzip"]),
                         ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                                  "-m", "vqzip"])):
        runs[name] = tmp_path / name
        for steps in ("1", "2"):  # the second command resumes from the first's state
            done = subprocess.run(launch + args + ["--out", str(runs[name]), "--steps", steps], env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            assert done.stderr.count("done: ") == 1  # rank 0 alone reports
    logs = {n: [json.loads(line) for line in (r / "vqvae-log.jsonl").read_text().splitlines()] for n, r in runs.items()}
    assert [e["step"] for e in logs["two"]] == [1, 2]  # one log line per logged step: rank 0 alone writes
    for a, b in zip(logs["one"], logs["two"]):
        assert a["mse"] == pytest.approx(b["mse"], rel=1e-3)
    meta = json.loads((runs["two"] / "vqvae.json").read_text())
    assert meta["ranks"] == 2 and meta["steps_done"] == 2
    one, two = load_file(str(runs["one"] / "vqvae.safetensors")), load_file(str(runs["two"] / "vqvae.safetensors"))
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-4, rtol=1e-3), k  # codebooks too: EMA statistics all-reduced


@pytest.mark.slow  # trains
def test_a_snapshot_of_a_run_under_way_trains_priors_and_exports(images, tmp_path):
    """`train snapshot` takes a phase's weights as of its last saved state, while the run is cut
    short (here by an error at step 3 of 6; saved at step 2), as a run folder of their own; a
    network with a fine level trains, and its snapshot gets priors and exports."""
    run = tmp_path / "long"
    net_cfg = {**TINY_NET, "fine_stages": 1, "fine_codes": 24}

    def cut(step, total, stats):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train_vqvae(images, run, "vqvae2", net_cfg, training.TrainConfig(steps=6, batch=2, crop=32, save_every=2, warmup=1), cut)
    snap = tmp_path / "at-2"
    meta = training.snapshot(run, "vqvae", snap)
    assert meta["steps_done"] == 2 and "step 2 of a 6-step run" in meta["snapshot"]
    state = torch.load(run / "vqvae-state.pt", weights_only=True)["model"]
    net = training.load_net(snap)
    assert [m.name for m in net.maps] == ["top", "bottom", "fine"]
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    cfgs = [PixelCNNConfig(num_codes=m.num_codes, channels=8, first_kernel=3, blocks=1, cond_channels=4,
                           conds=[(net.maps[j].num_codes, net.maps[j].stride // m.stride) for j in m.conds]) for m in net.maps]
    training.train_prior(images, snap, cfgs, training.TrainConfig(steps=1, batch=2, crop=32, warmup=1))
    folder = training.export(snap, tmp_path / "ckpt" / "snap")
    assert "step 2 of a 6-step run" in json.loads((folder / "config.json").read_text())["training"]["vqvae"]["snapshot"]
    priors_snap = tmp_path / "priors-at-1"  # a prior snapshot brings the network it belongs to
    assert training.snapshot(snap, "prior", priors_snap)["steps_done"] == 1
    training.export(priors_snap, tmp_path / "ckpt" / "snap2")
    with pytest.raises(VqzError, match="folder of its own"):
        training.snapshot(snap, "prior", snap)


@pytest.mark.slow  # trains
def test_export_sets_a_familys_ladder_from_choose_levels(images, tmp_path, capsys, monkeypatch):
    """`train export --levels FILE --default-level Q` replaces the manifest's levels with the
    ladder bench/choose_levels.py prints (stages and lambda kept); a bad ladder is refused in one
    line before anything is exported."""
    from vqzip.cli import main

    run, root = tmp_path / "run", tmp_path / "ckpt"
    small = dict(batch=2, crop=32, warmup=1)
    training.train_vqvae(images, run, "vqvae2", {**TINY_NET, "bottom_stages": 2}, training.TrainConfig(steps=1, **small))
    net = training.load_net(run)
    cfgs = [PixelCNNConfig(num_codes=m.num_codes, channels=8, first_kernel=3, blocks=1, cond_channels=4,
                           conds=[(net.maps[j].num_codes, net.maps[j].stride // m.stride) for j in m.conds]) for m in net.maps]
    training.train_prior(images, run, cfgs, training.TrainConfig(steps=1, **small))
    ladder = {"1": {"model": "fam", "scale": "1/2", "maps": 2}, "2": {"model": "fam", "scale": "1", "maps": 2, "lam": 0.02},
              "3": {"model": "fam", "scale": "1"}}
    (tmp_path / "levels.json").write_text(json.dumps({"levels": ladder}))
    export = ["train", "export", "--run", str(run), "--name", "fam", "--checkpoints", str(root)]
    assert main(export + ["--levels", str(tmp_path / "levels.json"), "--default-level", "2"]) == 0
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["levels"] == ladder and manifest["default"] == 2
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    assert [(lv.point.scale, lv.point.maps, lv.point.lam) for lv in zoo.levels()] == [(Fraction(1, 2), 2, 0.0), (Fraction(1), 2, 0.02),
                                                                     (Fraction(1), None, 0.0)]
    card = (root / "fam" / "MODEL_CARD.md").read_text()
    assert "| 1 | 1/2 | 2 | 0 |" in card and "| 2 | 1 | 2 | 0.02 |" in card and "| 3 | 1 | all | 0 |" in card

    (tmp_path / "bad.json").write_text(json.dumps({"levels": {"1": {"model": "other", "scale": "1"}}}))
    capsys.readouterr()
    assert main([*export[:5], "fam2", *export[6:], "--levels", str(tmp_path / "bad.json"), "--default-level", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert "levels.1.model" in err and "'other'" in err and len(err.splitlines()) == 1
    assert not (root / "fam2").exists() and json.loads((root / "manifest.json").read_text()) == manifest
    assert main(export + ["--levels", str(tmp_path / "levels.json")]) == 2  # --default-level missing
    assert main(export + ["--levels", str(tmp_path / "levels.json"), "--default-level", "2", "--scales", "1"]) == 2


@pytest.mark.slow  # trains
def test_context_free_residual_stages_train_export_and_round_trip(images, tmp_path, monkeypatch):
    """`train prior --context-free-stages`: the second bottom stage's prior sees no codes (a 1x1
    first kernel), the first stages' keep their context, and files of the model decode exactly."""
    from vqzip.cli import main

    run, root = tmp_path / "run", tmp_path / "ckpt"
    training.train_vqvae(images, run, "vqvae2", {**TINY_NET, "bottom_stages": 2}, training.TrainConfig(steps=1, batch=2, crop=32, warmup=1))
    assert main(["train", "prior", "--data", str(images), "--out", str(run), "--steps", "2", "--batch", "2", "--crop", "32",
                 "--channels", "8", "--blocks", "1", "--context-free-stages"]) == 0
    assert [c["first_kernel"] for c in json.loads((run / "prior.json").read_text())["config"]["priors"]] == [5, 5, 1]
    training.export(run, root / "free")
    training.register(root, "free", [Fraction(1)], Fraction(1))
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    model = zoo.load("free")
    assert [p.context_free for p in model.priors] == [False, False, True]
    im = photo(40, 24, seed=7)
    out = codec.decompress(codec.compress(im, model), model)
    assert out.image.size == (40, 24) and len(out.codes) == 3
    assert np.array_equal(out.codes[2], codec.encode_codes(model.net, np.asarray(im))[2])
    chosen = codec.compress(im, model, OperatingPoint(model.name, lam=0.05))  # RDO's choices in the bands' order decode as well
    assert codec.decompress(chosen, model).image.size == (40, 24)


@pytest.mark.slow  # trains
def test_export_tile_walks_maps_in_tiles_under_a_new_hash(images, tmp_path, monkeypatch):
    """`train export --tile ROWSxCOLS`: the same run exported whole and in tiles of 2x3 codes
    gives two models (the tiles are in the weights, so the hashes differ); files of the tiled
    model decode to the codes chosen, nearest and under RDO, and differ from the whole walk's."""
    from vqzip.cli import main

    run, root = tmp_path / "run", tmp_path / "ckpt"
    training.train_vqvae(images, run, "vqvae2", {**TINY_NET, "fine_stages": 1, "fine_codes": 24},
                         training.TrainConfig(steps=1, batch=2, crop=32, warmup=1))
    assert main(["train", "prior", "--data", str(images), "--out", str(run), "--steps", "2", "--batch", "2", "--crop", "32",
                 "--channels", "8", "--blocks", "1"]) == 0
    export = ["train", "export", "--run", str(run), "--checkpoints", str(root)]
    assert main(export + ["--name", "whole"]) == 0 and main(export + ["--name", "banded", "--tile", "2x3", "--scales", "none"]) == 0
    assert all(main(export + ["--name", "bad", "--tile", bad]) == 2 for bad in ("2", "-1x2", "2x3x4", "ax2"))
    assert "independent tiles of 2x3 codes" in (root / "banded" / "MODEL_CARD.md").read_text()
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    whole, banded = zoo.load("whole"), zoo.load("banded")
    assert [p.tile for p in whole.priors] == [(0, 0)] * 3 and [p.tile for p in banded.priors] == [(2, 3)] * 3
    assert whole.sha256 != banded.sha256
    im = photo(40, 56, seed=5)
    nearest = codec.encode_codes(banded.net, np.asarray(im))
    data = codec.compress(im, banded)
    out = codec.decompress(data, banded)
    assert all(np.array_equal(a, b) for a, b in zip(out.codes, nearest))
    assert data != codec.compress(im, whole)
    assert codec.decompress(codec.compress(im, banded, OperatingPoint(banded.name, lam=0.05)), banded).image.size == (40, 56)


@pytest.mark.slow  # trains
def test_rdo_codes_give_the_priors_the_encoders_choices_to_fine_tune_on(images, tmp_path):
    """`train rdo-codes` (phase III): every training image's maps once per multiplier, chosen by
    RDO under the run's own priors; λ 0 gives phase II's nearest codes, a large λ maps the priors
    find cheaper; worker processes write the same codes, a cut run resumes, and the priors then
    fine-tune on them and export."""
    from vqzip.training.priors import extract_codes, load_codes
    from vqzip.training.rdo_codes import rdo_codes

    run = tmp_path / "run"
    small = dict(batch=2, crop=32, warmup=1)
    training.train_vqvae(images, run, "vqvae2", TINY_NET, training.TrainConfig(steps=2, **small))
    cfgs = [PixelCNNConfig(**c) for c in TINY["priors"]]
    training.train_prior(images, run, cfgs, training.TrainConfig(steps=2, **small))

    out = tmp_path / "rdo"
    record = rdo_codes(run, out, images, [0, 10.0])
    assert record["images"] == 3 and record["maps_per_image"] == 2
    maps = load_codes(out)
    nearest = extract_codes(training.load_net(run), sorted(images.glob("im[123].png")))
    assert len(maps) == 6
    for i, ms in enumerate(nearest):
        assert all(np.array_equal(a, b) for a, b in zip(maps[2 * i], ms))
    chooser = zoo.load_folder(out / "chooser")

    def bits(ms):
        ms = [torch.from_numpy(m.astype(np.int64)) for m in ms]
        return sum(codec.ideal_bits(p, ms[k], [ms[j] for j in m.conds]) for k, (m, p) in enumerate(zip(chooser.maps, chooser.priors)))

    assert sum(bits(maps[2 * i + 1]) for i in range(3)) < sum(bits(maps[2 * i]) for i in range(3))
    assert any(not np.array_equal(a, b) for i in range(3) for a, b in zip(maps[2 * i], maps[2 * i + 1]))

    again = tmp_path / "rdo2"
    from vqzip.cli import main
    assert main(["train", "rdo-codes", "--run", str(run), "--out", str(again), "--data", str(images), "--lambdas", "0,10",
                 "--jobs", "2"]) == 0
    (again / "rdo-parts" / "1.npz").unlink()  # as if cut before the second image was written
    rdo_codes(run, again, images, [0, 10.0])
    assert all(np.array_equal(a, b) for x, y in zip(load_codes(again), maps) for a, b in zip(x, y))

    meta = training.train_prior(images, out, cfgs, training.TrainConfig(steps=1, **small), init=run)
    assert meta["steps_done"] == 1
    folder = training.export(out, tmp_path / "ckpt" / "tuned")
    assert json.loads((folder / "config.json").read_text())["training"]["codes"]["lambdas"] == [0, 10.0]
    entry = training.register(folder.parent, "tuned", [])
    assert "rdo-codes --lambdas 0,10`: 3 training images" in training.write_card(folder, entry, None).read_text()
    with pytest.raises(ValueError, match="of their own"):
        rdo_codes(run, run, images, [0.01])


@pytest.mark.slow  # trains
def test_a_cut_prior_trains_alone_and_exports_beside_the_priors_it_keeps(images, tmp_path):
    """`train prior --init RUN --maps bottom` with a smaller bottom prior: the bottom's starts cut
    from RUN's and trains, the top's stays RUN's; `export --keep-priors MODEL` ships the top's
    integer tensors of MODEL as they are, and says so on the card."""
    import shutil

    from safetensors.torch import load_file

    small = dict(batch=2, crop=32, log_every=1, warmup=1)
    base = tmp_path / "base"
    training.train_vqvae(images, base, "vqvae2", TINY_NET, training.TrainConfig(steps=2, **small))
    cfgs = [PixelCNNConfig(**c) for c in TINY["priors"]]
    training.train_prior(images, base, cfgs, training.TrainConfig(steps=2, **small))
    (base / "rdo-codes.json").write_text(json.dumps({"lambdas": [0, 0.01], "images": 3, "chooser_sha256": "ab" * 32}))
    root = tmp_path / "ckpt"
    training.export(base, root / "m")
    own = training.write_card(root / "m", training.register(root, "m", []), None).read_text()
    assert "The last prior row trained on the code maps RDO chose (`vqzip train rdo-codes --lambdas 0,0.01`" in own

    run = tmp_path / "cut"
    run.mkdir()
    for f in ("vqvae.safetensors", "vqvae.json"):
        shutil.copy(base / f, run / f)
    smaller = [cfgs[0], PixelCNNConfig(**{**cfgs[1].to_dict(), "channels": 8, "blocks": 1})]
    with pytest.raises(VqzError, match="needs --init"):
        training.train_prior(images, run, smaller, training.TrainConfig(steps=1, **small), maps_trained=["bottom"])
    with pytest.raises(VqzError, match="no map 'fine'"):
        training.train_prior(images, run, smaller, training.TrainConfig(steps=1, **small), init=base, maps_trained=["fine"])
    wider = [cfgs[0], PixelCNNConfig(**{**cfgs[1].to_dict(), "channels": 32})]
    with pytest.raises(VqzError, match="does not fit"):
        training.train_prior(images, run, wider, training.TrainConfig(steps=1, **small), init=base, maps_trained=["bottom"])
    with pytest.raises(VqzError, match="names no map"):
        training.train_prior(images, run, smaller, training.TrainConfig(steps=1, **small), init=base, maps_trained=[])
    top_cut = [PixelCNNConfig(**{**cfgs[0].to_dict(), "channels": 8}), smaller[1]]
    with pytest.raises(VqzError, match="a map not trained keeps its config"):
        training.train_prior(images, run, top_cut, training.TrainConfig(steps=1, **small), init=base, maps_trained=["bottom"])

    # at learning rate 0 the bottom prior is the cut of base's, ranked on the first training maps
    still = tmp_path / "still"
    still.mkdir()
    for f in ("vqvae.safetensors", "vqvae.json"):
        shutil.copy(base / f, still / f)
    training.train_prior(images, still, smaller, training.TrainConfig(steps=1, lr=0.0, min_lr=0.0, **small), init=base,
                         maps_trained=["bottom"])
    from vqzip.training.priors import RANK_MAPS, load_codes
    from vqzip.priors.cut import cut

    ranking = [(torch.from_numpy(m[1].astype(np.int64)), [torch.from_numpy(m[0].astype(np.int64))]) for m in load_codes(still)[:RANK_MAPS]]
    expected = cut(training.load_priors(base)[1], smaller[1], ranking).state_dict()
    got = training.load_priors(still)[1].state_dict()
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in got)

    meta = training.train_prior(images, run, smaller, training.TrainConfig(steps=2, **small), init=base, maps_trained=["bottom"])
    assert meta["init"]["steps_done"] == 2
    before, after = training.load_priors(base), training.load_priors(run)
    assert all(torch.equal(a, b) for a, b in zip(before[0].state_dict().values(), after[0].state_dict().values()))
    assert after[1].cfg.channels == 8 and after[1].cfg.blocks == 1
    assert not all(torch.equal(expected[k], v) for k, v in after[1].state_dict().items())  # it trained

    with pytest.raises(VqzError, match="--keep-priors"):
        training.export(run, root / "m2")
    other = tmp_path / "other"
    training.train_vqvae(images, other, "vqvae2", TINY_NET, training.TrainConfig(steps=1, seed=5, **small))
    training.train_prior(images, other, cfgs, training.TrainConfig(steps=1, **small))
    training.export(other, root / "o")
    with pytest.raises(VqzError, match="not a model of"):
        training.export(run, root / "m2", keep=root / "o")
    with pytest.raises(VqzError, match="trained every map's prior"):
        training.export(base, root / "m3", keep=root / "m")
    with pytest.raises(VqzError, match="kept priors walk other tiles"):
        training.export(run, root / "m2", (4, 0), keep=root / "m")
    folder = training.export(run, root / "m2", keep=root / "m")
    old, new = load_file(str(root / "m" / "model.safetensors")), load_file(str(folder / "model.safetensors"))
    top = [k for k in old if k.startswith("prior.0.")]
    assert top and all(torch.equal(old[k], new[k]) for k in top)
    assert new["prior.1.blocks.0.conv.w"].shape[0] == 16  # 2 x 8 gate channels, calibrated anew
    assert not any(k.startswith("prior.1.blocks.1.") for k in new)
    entry = training.register(root, "m2", [Fraction(1)])
    card = training.write_card(folder, entry, None).read_text()
    assert "(bottom only)" in card and "priors of the top map(s) are those of m" in card
    assert "their training is the first 1 prior row(s), which trained every map's prior; the last of them on the code maps RDO" \
           " chose (`vqzip train rdo-codes --lambdas 0,0.01`" in card
    assert card.count("| prior |") == 1  # the training m and this run share is one row
    assert "The last prior row" not in card  # the run's own rows trained on the nearest codes
    model = zoo.load_folder(folder)
    assert codec.decompress(codec.compress(photo(30, 20), model), model).image.size == (30, 20)
    again = training.export(run, root / "m4", keep=folder)  # m2 kept m's top prior: its record is m's
    assert json.loads((again / "config.json").read_text())["training"]["kept_priors"]["model"] == "m"


@pytest.mark.slow  # trains
def test_export_without_checkpoints_writes_to_the_user_folder_and_leaves_the_package_untouched(images, tmp_path,
                                                                                              monkeypatch, capsys):
    import hashlib

    from vqzip.cli import main

    def package():
        root = zoo.checkpoints_dir()
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
                if p.is_file() and p.suffix != ".safetensors"} | {"weights": sorted(p.name for p in root.rglob("*.safetensors"))}

    before = package()
    run = tmp_path / "run"
    small = dict(batch=2, crop=32, warmup=1)
    training.train_vqvae(images, run, "vqvae2", TINY_NET, training.TrainConfig(steps=1, **small))
    net = training.load_net(run)
    cfgs = [PixelCNNConfig(num_codes=m.num_codes, channels=8, first_kernel=3, blocks=1, cond_channels=4,
                           conds=[(net.maps[j].num_codes, net.maps[j].stride // m.stride) for j in m.conds]) for m in net.maps]
    training.train_prior(images, run, cfgs, training.TrainConfig(steps=1, **small))
    monkeypatch.delenv("VQZIP_CHECKPOINTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert main(["train", "export", "--run", str(run), "--name", "toy"]) == 0
    user = tmp_path / "xdg" / "vqzip" / "models"
    assert (user / "toy" / "model.safetensors").is_file() and "toy" in json.loads((user / "manifest.json").read_text())["models"]
    assert package() == before
    assert zoo.load("toy").name == "toy" and {lv.point.model for lv in zoo.levels()} == {"vqz-l3"}  # shipped ladder kept
    capsys.readouterr()
    assert main(["models"]) == 0
    assert f"toy\tuser\t{user / 'toy'}" in capsys.readouterr().out
    # a name that is installed already (yours, or a shipped one) is not exported over without --force:
    # the files coded with that model would no longer decode
    weights = (user / "toy" / "model.safetensors").read_bytes()
    for name in ("toy", "vqz-l3"):
        assert main(["train", "export", "--run", str(run), "--name", name]) == 1
        assert f"a model named {name!r} is installed already" in capsys.readouterr().err
    assert (user / "toy" / "model.safetensors").read_bytes() == weights and not (user / "vqz-l3").exists()
    assert main(["train", "export", "--run", str(run), "--name", "toy", "--force"]) == 0

"""The networks as the codec runs them (`vqzip.inference`): graphs exported without weights and
fed from the model file, the same functions on the ONNX and torch backends, the codebooks in
numpy, graphs checked at load, and the codec in a process without torch."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx as onnx_proto
import pytest
import torch
from PIL import Image

from blocked import run_without
from conftest import TINY, photo
from vqzip import api, codec, container, inference, models, zoo
from vqzip.errors import ModelError, VqzError
from vqzip.inference.codebooks import Codebook, LatentCodebooks, ProductCodebook, least
from vqzip.inference.onnx_graphs import OnnxGraphs, initializer_names
from vqzip.inference.torch_graphs import TorchGraphs
from vqzip.training import onnx_export

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "tiger.png"


@pytest.mark.parametrize("net_cfg", [
    {**TINY["net"], "fine_stages": 1, "fine_codes": 24, "padding": "replicate"},
    {**TINY["net"], "bottom_stages": 2, "quantizer": {"kind": "product"}},
], ids=["fine-replicate", "residual-product"])
def test_exported_graphs_run_as_the_torch_functions_do(net_cfg, tmp_path):
    """Every graph, exported without weights and fed from the module's state, gives the torch
    function's output within 1e-4 on another size than it was traced at; its initializers are
    the network's tensors by their model-file names, with no data in the graph file."""
    torch.manual_seed(0)
    net = models.build("vqvae2", net_cfg).eval()
    digests = onnx_export.write_graphs(net, tmp_path)
    assert digests.keys() == net.cfg.graphs().keys()
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    onnx = OnnxGraphs({g: tmp_path / "graphs" / f"{g}.onnx" for g in digests}, state, tmp_path / "model.safetensors")
    ref = TorchGraphs(net)
    env = {k: v.numpy() for k, v in onnx_export.examples(net, size=48).items()}
    for g, (inputs, _) in net.cfg.graphs().items():
        data = (tmp_path / "graphs" / f"{g}.onnx").read_bytes()
        names = initializer_names(data)
        assert names and all(n.startswith("net.") and n[4:] in state for n in names)
        stored = onnx_proto.load_from_string(data).graph.initializer
        assert all(t.data_location == onnx_proto.TensorProto.EXTERNAL and not t.raw_data for t in stored)  # no copy of the weights
        for a, b in zip(onnx(g, *(env[i] for i in inputs)), ref(g, *(env[i] for i in inputs)), strict=True):
            assert a.shape == b.shape and np.abs(a - b).max() < 1e-4, g


def test_an_exported_tensor_that_is_not_one_of_the_weights_fails_the_export(tmp_path, monkeypatch):
    """The runtime feeds each initializer from the model file by name: one the file does not hold
    (renamed, or folded by the exporter into a new tensor) is refused at export, not at load."""
    net = models.build("vqvae2", TINY["net"]).eval()
    state = net.state_dict
    def without_pre_b(*args, **kwargs):  # the weights' names as the export checks them; torch's own calls as they were
        return state(*args, **kwargs) if args or kwargs else {k: v for k, v in state().items() if k != "pre_b.weight"}

    monkeypatch.setattr(net, "state_dict", without_pre_b)
    with pytest.raises(VqzError, match="^graph latent_bottom: the exporter made tensor 'net.pre_b.weight', which is not one"):
        onnx_export.write_graphs(net, tmp_path)


def test_the_numpy_codebooks_search_as_the_torch_quantizers_do():
    """lookup, residual_indices and nearest of the numpy codebooks against the torch kinds'
    lookup and indices, and a brute-force search over every code of a product stage."""
    from vqzip.models import quantizers
    from vqzip.models.configs import ProductConfig, VQConfig

    torch.manual_seed(0)
    z = torch.randn(2, 6, 5, 7)
    for cfg in (VQConfig(), ProductConfig()):
        q = quantizers.build(cfg, 2, 32, 6).eval()
        state = {k: v.numpy() for k, v in q.state_dict().items()}
        stage = (lambda p: Codebook(state[f"{p}embed"])) if isinstance(cfg, VQConfig) else \
            (lambda p: ProductCodebook(state[f"{p}halves.0.embed"], state[f"{p}halves.1.embed"]))
        books = LatentCodebooks([stage(f"stages.{s}.") for s in range(2)])
        codes = books.residual_indices(z.numpy())
        assert all(np.array_equal(a, b.numpy()) for a, b in zip(codes, q.residual_indices(z)))
        assert np.allclose(books.lookup(codes), q.lookup([torch.from_numpy(c) for c in codes]).numpy(), atol=1e-6)
        every = books.lookup([np.arange(32).reshape(1, 1, 32)])[0, :, 0].T  # (32, 6): each first-stage code's vector
        brute = ((z.numpy().transpose(0, 2, 3, 1).reshape(-1, 1, 6) - every[None]) ** 2).sum(-1)
        dist, idx = books.nearest(z.numpy(), [], 32)
        assert np.allclose(dist, np.sort(brute, 1), atol=1e-5) and np.array_equal(idx[:, 0], brute.argmin(1))


def test_least_orders_equal_distances_by_code():
    d = np.array([[3, 1, 1, 0, 1, 2], [1, 1, 1, 1, 1, 1]], np.float32)
    for k, first in [(1, [[3], [0]]), (3, [[3, 1, 2], [0, 1, 2]]), (6, [[3, 1, 2, 4, 5, 0], [0, 1, 2, 3, 4, 5]])]:
        values, codes = least(d, k)
        assert codes.tolist() == first and np.array_equal(values, np.take_along_axis(d, codes, 1))


def tiny_copy(tiny_checkpoints: Path, tmp_path: Path) -> Path:
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoints, root)
    return root


def test_a_changed_graph_is_refused_naming_the_model(tiny_checkpoints, tmp_path, monkeypatch):
    root = tiny_copy(tiny_checkpoints, tmp_path)
    with open(root / "tiny" / "graphs" / "coarse.onnx", "ab") as f:
        f.write(b"\0")
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    with pytest.raises(ModelError, match=r"^model 'tiny': graph .*coarse.onnx is damaged: its sha256 does not match the manifest$"):
        zoo.load("tiny", "onnx")


def test_a_model_without_graphs_runs_on_torch_or_says_how_to_add_them(tiny_checkpoints, tmp_path, monkeypatch):
    """Graphs missing (or not in the manifest): the torch backend where torch is installed, else
    one line naming the command that adds them and the extra it needs."""
    root = tiny_copy(tiny_checkpoints, tmp_path)
    shutil.rmtree(root / "tiny" / "graphs")
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    assert zoo.load("tiny").backend == "torch"
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails, as where it is not installed
    with pytest.raises(ModelError) as e:
        zoo.load_folder(root / "tiny")
    assert "\n" not in str(e.value) and "has no ONNX graphs" in str(e.value)
    assert f"vqzip train graphs {root / 'tiny'}" in str(e.value) and "vqzip[train]" in str(e.value)


def test_adding_graphs_to_an_older_folder_records_them_in_its_manifest(tiny_checkpoints, tmp_path, monkeypatch):
    root = tiny_copy(tiny_checkpoints, tmp_path)
    shutil.rmtree(root / "tiny" / "graphs")
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["models"]["tiny"]["graphs_sha256"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(root))
    assert zoo.load("tiny").backend == "torch"  # graphs the manifest does not record are not used
    onnx_export.add_graphs(root / "tiny")
    assert json.loads((root / "manifest.json").read_text())["models"]["tiny"]["graphs_sha256"] == \
        json.loads((tiny_checkpoints / "manifest.json").read_text())["models"]["tiny"]["graphs_sha256"]
    assert zoo.load("tiny").backend == "onnx"


def test_a_truncated_graph_loaded_without_a_manifest_names_the_files(tiny_checkpoints, tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoints / "tiny", folder)
    graph = folder / "graphs" / "features.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
    model = zoo.load_folder(folder)
    with pytest.raises(ModelError) as e:
        codec.encode_codes(model.net, np.asarray(photo(64, 48)))
    assert str(e.value).startswith(f"graph {graph} does not fit {folder / 'model.safetensors'}: ") and "\n" not in str(e.value)


@pytest.mark.parametrize("other", [{"channels": 24}, {"decoder_res_blocks": 2}])
def test_another_models_graphs_loaded_without_a_manifest_name_the_files(other, tiny_checkpoints, tmp_path):
    from conftest import tiny_model

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoints / "tiny", folder)
    shutil.rmtree(folder / "graphs")
    shutil.copytree(tiny_model({**TINY, "net": {**TINY["net"], **other}}, tmp_path, "other") / "graphs", folder / "graphs")
    model = zoo.load_folder(folder)
    codes = [np.zeros(s, np.int64) for s in codec.code_shapes(model.net, 64, 48)]
    with pytest.raises(ModelError) as e:
        codec.decode_pixels(model.net, codes, 64, 48)
    assert str(e.value).startswith(f"graph {folder / 'graphs'}") and f"does not fit {folder / 'model.safetensors'}: " in str(e.value)
    assert "\n" not in str(e.value)


def test_registering_records_only_the_graphs_the_architecture_runs(tiny_checkpoints, tmp_path):
    from fractions import Fraction

    from vqzip import training

    root = tiny_copy(tiny_checkpoints, tmp_path)
    shutil.copy(root / "tiny" / "graphs" / "coarse.onnx", root / "tiny" / "graphs" / "stale.onnx")  # an earlier export's
    entry = training.register(root, "tiny", [Fraction(1)])
    assert entry["graphs_sha256"] == json.loads((tiny_checkpoints / "manifest.json").read_text())["models"]["tiny"]["graphs_sha256"]
    assert entry["graphs_sha256"].keys() == zoo.configs(TINY)[1].graphs().keys()


def test_train_graphs_records_the_graphs_and_says_so(tiny_checkpoints, tmp_path, capsys):
    from vqzip.cli import main

    root = tiny_copy(tiny_checkpoints, tmp_path)
    shutil.rmtree(root / "tiny" / "graphs")
    shipped = json.loads((tiny_checkpoints / "manifest.json").read_text())["models"]["tiny"]["graphs_sha256"]
    assert main(["train", "graphs", str(root / "tiny")]) == 0
    assert capsys.readouterr().err.strip() == f"{root / 'tiny'}: {len(shipped)} graphs added, recorded in {root / 'manifest.json'}"
    assert json.loads((root / "manifest.json").read_text())["models"]["tiny"]["graphs_sha256"] == shipped


def test_train_graphs_says_plainly_when_no_manifest_lists_the_model(tiny_checkpoints, tmp_path, capsys):
    from vqzip.cli import main

    folder = tmp_path / "loose"
    shutil.copytree(tiny_checkpoints / "tiny", folder)
    shutil.rmtree(folder / "graphs")
    assert main(["train", "graphs", str(folder)]) == 0
    said = capsys.readouterr().err.strip()
    assert said.startswith(f"{folder}: {len(list((tiny_checkpoints / 'tiny' / 'graphs').iterdir()))} graphs written but not recorded: no manifest.json") and "\n" not in said
    assert not (tmp_path / "manifest.json").exists()


def test_train_graphs_names_a_damaged_model_file(tiny_checkpoints, tmp_path, capsys):
    from vqzip.cli import main

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoints / "tiny", folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert main(["train", "graphs", str(folder)]) == 1
    said = capsys.readouterr().err.strip()
    assert said.startswith(f"vqzip: error: {weights} is damaged: ") and "\n" not in said


def test_the_backend_is_the_argument_else_the_environment_else_onnx(tiny_checkpoints, monkeypatch):
    monkeypatch.delenv("VQZIP_BACKEND", raising=False)
    assert inference.backend() == "onnx" and inference.backend("torch") == "torch"
    monkeypatch.setenv("VQZIP_BACKEND", "torch")
    assert inference.backend() == "torch" and inference.backend("onnx") == "onnx"
    monkeypatch.setenv("VQZIP_BACKEND", "tensorflow")
    with pytest.raises(VqzError, match=r"^VQZIP_BACKEND='tensorflow' is not a backend: onnx or torch$"):
        inference.backend()
    with pytest.raises(VqzError, match=r"^backend='tf' is not a backend: onnx or torch$"):
        zoo.load_folder(tiny_checkpoints / "tiny", backend="tf")


@pytest.mark.slow  # processes of their own
@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_a_bad_backend_is_refused_in_one_line_before_numpy(command, tmp_path):
    env = {**os.environ, "VQZIP_BACKEND": "bogus"}
    done = run_without(["numpy", "torch"], ["-m", "vqzip", command, "photo.x"], cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "vqzip: error: VQZIP_BACKEND='bogus' is not a backend: onnx or torch\n")


@pytest.mark.slow  # processes of their own
@pytest.mark.parametrize("command", ["compress", "decompress"])
def test_the_torch_backend_without_torch_names_the_train_extra(command, tmp_path):
    env = {**os.environ, "VQZIP_BACKEND": "torch"}
    done = run_without(["torch"], ["-m", "vqzip", command, "photo.x"], cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("vqzip: error: the torch backend (VQZIP_BACKEND=torch) needs torch, from vqzip's train extra: "
                           "pip install 'vqzip[train]'\n")


@pytest.mark.slow  # every level of vqz-l3 on two images, decoded by both backends
def test_onnx_and_torch_decode_within_one_level_at_every_level():
    """The network's pixels (at the coded size) of the two backends differ by at most one level,
    on few pixels: 43 of 2,397,024 values here (the 9 levels, two images). A level coded at a
    smaller scale is resized to the image's size after (Lanczos), which can make one level two:
    the image then differs by at most two; the previews likewise."""
    images = [photo(256, 192, seed=1), Image.open(SAMPLE).convert("RGB").crop((0, 0, 320, 240))]
    differ = total = 0
    for lv in zoo.levels():
        on, ref = zoo.load(lv.point.model, "onnx"), zoo.load(lv.point.model, "torch")
        for im in images:
            data = codec.compress(im, on, lv.point)
            header, _, codes, _ = codec.decode_codes(data, on)
            a, b = (codec.decode_pixels(m.net, codes, *header.coded_size, anchor=container.anchor_of(header)).astype(int)
                    for m in (on, ref))
            assert np.abs(a - b).max() <= 1, lv.quality
            differ, total = differ + int((a != b).sum()), total + a.size
            a, b = (np.asarray(codec.decompress(data, m).image).astype(int) for m in (on, ref))
            assert np.abs(a - b).max() <= (1 if lv.point.scale == 1 else 2), lv.quality
            a, b = (np.asarray(codec.preview(data, m).image).astype(int) for m in (on, ref))
            assert np.abs(a - b).max() <= (1 if lv.point.scale == 1 else 2), lv.quality
    print(f"FOUND {differ} of {total}")
    assert differ < total / 1000, (differ, total)


BLOCK_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, NoTorch())
from vqzip.cli import run
sys.argv = ["vqzip"] + sys.argv[1:]
run()
"""


@pytest.mark.slow  # processes of their own
def test_compress_and_decompress_without_torch(tmp_path, monkeypatch):
    """A process where `import torch` fails compresses and decompresses with the shipped model:
    the very file the torch backend writes, decoded within one level of the torch decoder."""
    Image.open(SAMPLE).convert("RGB").crop((0, 0, 160, 120)).save(tmp_path / "a.png")
    for args in (["compress", "-q", "a.png"], ["decompress", "-q", "a.vqz", "-o", "b.png"]):
        subprocess.run([sys.executable, "-c", BLOCK_TORCH, *args], cwd=tmp_path, check=True)
    monkeypatch.setenv("VQZIP_BACKEND", "torch")
    assert (tmp_path / "a.vqz").read_bytes() == api.compress(tmp_path / "a.png")
    ref = api.decompress(tmp_path / "a.vqz")
    assert np.abs(np.asarray(Image.open(tmp_path / "b.png")).astype(int) - np.asarray(ref).astype(int)).max() <= 1


@pytest.mark.slow  # three levels of vqz-l3 on two images, coded by both backends
def test_onnx_and_torch_encode_the_same_files():
    """The encoder's choices (codes, RDO, skips) do not depend on the backend: files of the two
    backends are byte-identical here (at every level as measured; a code whose two nearest
    vectors tie within the backends' float differences could still flip). Decoding codes never
    runs the network, so this, not a decode, is where the backends could part."""
    images = [photo(128, 96, seed=1), Image.open(SAMPLE).convert("RGB").crop((0, 0, 160, 120))]
    for lv in [lv for lv in zoo.levels() if lv.quality in (1, 6, 9)]:
        on, ref = zoo.load(lv.point.model, "onnx"), zoo.load(lv.point.model, "torch")
        for im in images:
            assert codec.compress(im, on, lv.point) == codec.compress(im, ref, lv.point), lv.quality


def test_the_configs_codebooks_and_onnx_runner_import_no_torch():
    code = ("import sys, vqzip.models, vqzip.models.configs, vqzip.inference\n"
            "vqzip.models.arch_config('vqvae2', {}).maps()\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_arena_shrinks_after_large_runs_of_large_images_only(monkeypatch):
    """ONNX Runtime's arena is shrunk at the end of a run whose inputs hold SHRINK_FROM bytes or
    more, of an image over KEEP_ARENA_UP_TO pixels (or of no image said): a Kodak-sized image keeps
    the arena as it is through a whole compress and decompress at three maps, though its fine
    latent's run is over SHRINK_FROM (its speed), and every full tile of a large image shrinks it
    at least once (its memory), each tile on a thread of its own seeing the image it belongs to."""
    from vqzip import runtime
    from vqzip.inference import onnx_graphs

    big = onnx_graphs.SHRINK_FROM
    assert not onnx_graphs.shrinks(big - 1) and onnx_graphs.shrinks(big)
    with runtime.coding(onnx_graphs.KEEP_ARENA_UP_TO):
        assert not onnx_graphs.shrinks(big)
    with runtime.coding(onnx_graphs.KEEP_ARENA_UP_TO + 1):
        assert onnx_graphs.shrinks(big) and not onnx_graphs.shrinks(big - 1)
    monkeypatch.setattr(runtime, "_threads", 2)  # tiles on two threads of a pool
    decided, sizes, shrinks = [], [], onnx_graphs.shrinks
    monkeypatch.setattr(onnx_graphs, "shrinks", lambda n: sizes.append(n) or decided.append(shrinks(n)) or decided[-1])
    lv = next(lv for lv in zoo.levels() if lv.point.maps is None or lv.point.maps >= 3)
    model = zoo.load(lv.point.model, "onnx")
    image = Image.open(SAMPLE).convert("RGB").resize((512, 768))  # two encoder tiles (`vqzip.tiles.TILE`), on two threads
    codec.decompress(codec.compress(image, model, lv.point), model)
    assert max(sizes) >= big and not any(decided)
    decided.clear()
    maps = model.net.maps[:2]
    rng = np.random.default_rng(0)
    codes = [rng.integers(0, m.num_codes, (768 // m.stride, 2048 // m.stride)) for m in maps]
    with runtime.coding(2048 * 768):
        codec.decode_pixels(model.net, codes, 2048, 768)  # 6 tiles of 256x1024 pixels
    assert sum(decided) >= 6

"""The wheel is what users install: one top-level package, the models inside it, the licence."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(folder)],
        check=True, capture_output=True,
    )
    (built,) = folder.glob("vqzip-*.whl")
    return built


def test_wheel_holds_models_priors_and_licence_under_one_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"vqzip"}
    assert {"vqzip/priors/decode.py", "vqzip/priors/fixedpoint.py", "vqzip/checkpoints/manifest.json"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    manifest = json.loads((ROOT / "checkpoints" / "manifest.json").read_text())
    for name, entry in manifest["models"].items():
        for f in ("model.safetensors", "config.json", "MODEL_CARD.md"):
            assert f"vqzip/checkpoints/{entry['folder']}/{f}" in names
        assert entry["graphs_sha256"], name  # the runtime without torch runs only recorded graphs
        for g in entry["graphs_sha256"]:
            assert f"vqzip/checkpoints/{entry['folder']}/graphs/{g}.onnx" in names


def test_the_runtime_requires_no_torch_and_each_extra_says_what_it_adds(wheel):
    """`pip install vqzip` is the light runtime; torch and onnx come with `vqzip[train]`,
    matplotlib and ssimulacra2 with `vqzip[eval]`, and `vqzip[test]` brings both."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = [Requirement(line.split(":", 1)[1]) for line in metadata.splitlines() if line.startswith("Requires-Dist:")]

    def of(extra: str | None) -> list[Requirement]:
        return [r for r in requires if (r.marker is None if extra is None else r.marker and r.marker.evaluate({"extra": extra}))]

    assert {r.name for r in of(None)} == {"numpy", "pillow", "constriction", "typer", "rich", "onnxruntime", "safetensors",
                                          "threadpoolctl"}
    assert {r.name for r in of("train")} == {"torch", "onnx"}
    assert {r.name for r in of("eval")} == {"matplotlib", "ssimulacra2"}
    assert any(r.name == "vqzip" and r.extras == {"train", "eval"} for r in of("test"))

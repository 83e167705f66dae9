"""The wheel is what users install: one top-level package, the models inside it, the licence."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_holds_models_priors_and_licence_under_one_package(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("vqzip-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"vqzip"}
    assert {"vqzip/priors/decode.py", "vqzip/priors/fixedpoint.py", "vqzip/checkpoints/manifest.json"} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    manifest = json.loads((ROOT / "checkpoints" / "manifest.json").read_text())
    for name in manifest["models"]:
        for f in ("model.safetensors", "config.json", "MODEL_CARD.md"):
            assert f"vqzip/checkpoints/{name}/{f}" in names

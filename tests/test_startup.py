"""What a fresh process imports: `import vqzip` and the command line's import load no numpy,
torch, ONNX Runtime or plotting; `--version` and a refused output neither, nor rich nor pydantic
(typer 0.29 parses every option through it: +0.1 s); a decompress loads no plotting and only
Pillow's common format plugins (bench/startup.py measures the seconds)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "torch", "onnxruntime", "matplotlib", "pytorch_msssim", "pydantic")
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "tiger.png"


def loaded_after(code: str, cwd: Path | None = None) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    out = subprocess.run([sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, cwd=cwd)
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("module", ["vqzip", "vqzip.cli"])
def test_importing_loads_nothing_heavy(module):
    loaded = loaded_after(f"import {module}")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert not {m for m in loaded if m.startswith("vqzip.") and not m.startswith("vqzip.cli") and m not in
                {"vqzip.pillow_plugin", "vqzip.container", "vqzip.errors", "vqzip.extras", "vqzip.fileio", "vqzip.runtime"}}


def test_the_version_loads_nothing_heavy_nor_rich_nor_any_command():
    loaded = loaded_after("from vqzip.cli import main\nassert main(['--version']) == 0")
    assert not loaded & {*HEAVY, "rich"}, sorted(loaded & {*HEAVY, "rich"})
    assert not {m for m in loaded if m.startswith("vqzip.cli.") and m != "vqzip.cli.app"}


@pytest.mark.slow  # a process of its own
def test_a_decompress_loads_no_plotting_and_few_image_plugins(tiny_checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(tiny_checkpoints))
    from PIL import Image

    from vqzip import codec, zoo

    with Image.open(SAMPLE) as im:
        (tmp_path / "a.vqz").write_bytes(codec.compress(im.crop((0, 0, 64, 48)), zoo.load("tiny")))
    loaded = loaded_after("from vqzip.cli import main\nassert main(['decompress', '-q', 'a.vqz']) == 0", cwd=tmp_path)
    assert (tmp_path / "a.png").exists()
    assert not loaded & {"matplotlib", "pytorch_msssim", "vqzip.eval", "vqzip.training"}
    plugins = {m for m in loaded if m.startswith("PIL.") and m.endswith("ImagePlugin")}
    assert "PIL.PngImagePlugin" in plugins and len(plugins) <= 6, sorted(plugins)


@pytest.mark.slow  # processes of their own
@pytest.mark.parametrize("command", [["decompress", "a.vqz", "-o", "a.png"], ["compress", "a.png", "-o", "a.vqz"]])
def test_refusing_an_existing_output_imports_nothing_heavy(tiny_checkpoints, tmp_path, monkeypatch, command):
    """The checks that need no model (options, inputs, existing outputs, formats) come before the
    codec's imports: refusing an output that exists imports no torch (it waited for it), numpy,
    ONNX Runtime, rich or pydantic, nor another command's module."""
    monkeypatch.setenv("VQZIP_CHECKPOINTS", str(tiny_checkpoints))
    from PIL import Image

    from vqzip import codec, zoo

    with Image.open(SAMPLE) as im:
        im.crop((0, 0, 64, 48)).save(tmp_path / "a.png")
        (tmp_path / "a.vqz").write_bytes(codec.compress(im.crop((0, 0, 64, 48)), zoo.load("tiny")))
    loaded = loaded_after(f"from vqzip.cli import main\nassert main({command!r}) == 1", cwd=tmp_path)
    assert not loaded & {*HEAVY, "rich"}, sorted(loaded & {*HEAVY, "rich"})
    assert {m for m in loaded if m.startswith("vqzip.cli.")} == {"vqzip.cli.app", "vqzip.cli.batch", f"vqzip.cli.{command[0]}"}


@pytest.mark.slow  # processes of their own
@pytest.mark.parametrize("command", [["levels", "--json"], ["models", "--json"]])
def test_listing_levels_and_models_needs_no_engine_nor_numpy(command, capsys):
    """`levels` and `models` read the manifests alone: the same output where torch, ONNX Runtime
    and numpy cannot be imported."""
    from blocked import run_without
    from vqzip.cli import main

    done = run_without(["torch", "onnxruntime", "numpy"], ["-m", "vqzip", *command])
    assert done.returncode == 0, done.stderr
    assert main(command) == 0
    assert done.stdout == capsys.readouterr().out

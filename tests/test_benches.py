"""The parts of the benches that decide what they measure and judge: bench/startup.py's
environments and targets, bench/install_size.py's isolated pip, requirements and sizes."""
import argparse
import importlib.util
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench(name: str):
    """bench/NAME.py as a module (registered first: its dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


def test_an_environment_is_a_name_a_python_and_variables(tmp_path, monkeypatch):
    startup = bench("startup")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    env = startup.Env.parse("torch=venv/bin/python:VQZIP_BACKEND=torch:A=b=c")
    assert env.name == "torch" and env.variables == {"VQZIP_BACKEND": "torch", "A": "b=c"}
    assert env.python == str(tmp_path / "venv" / "bin" / "python")  # absolute, the venv's link kept
    assert startup.Env.parse("light=/opt/light/bin/python").variables == {}
    for bad in ("python", "=python", "light=", "light=python:VQZIP_BACKEND"):
        with pytest.raises(argparse.ArgumentTypeError):
            startup.Env.parse(bad)


def test_an_environment_sets_only_its_own_backend(monkeypatch):
    startup = bench("startup")
    monkeypatch.setenv("VQZIP_BACKEND", "torch")
    assert "VQZIP_BACKEND" not in startup.Env("light", "python").environ()
    assert startup.Env("t", "python", {"VQZIP_BACKEND": "torch"}).environ()["VQZIP_BACKEND"] == "torch"


def test_targets_are_issue_37s():
    startup = bench("startup")
    run = {startup.DECODE_IN: 1.0, startup.COMPRESS_IN: 2.0, startup.VERSION: 0.1}
    limits = startup.targets({"light": [run, run], "torch": [{**run, startup.DECODE_IN: 1.5}]}, "torch")
    assert limits["light"] == {startup.VERSION: 0.15, startup.REFUSAL: 0.3, startup.DECOMPRESS: 1.4,
                               startup.COMPRESS: 2.4, startup.DECODE_IN: 1.5, startup.COMPRESS_IN: 2.0}
    assert startup.DECODE_IN not in limits["torch"]  # the reference is not judged against itself
    assert startup.DECODE_IN not in startup.targets({"light": [run]}, None)["light"]


def test_pip_reads_no_configuration_unless_asked(tmp_path, monkeypatch):
    install_size = bench("install_size")
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
    env = install_size.pip_env(tmp_path, machine_config=False)
    assert "PIP_FIND_LINKS" not in env and env["PIP_CONFIG_FILE"] == os.devnull and env["HOME"] == str(tmp_path)
    assert env["PIP_CERT"] == "/etc/ssl/certs/ca-certificates.crt"  # how to reach the index, not where to look
    assert install_size.pip_env(tmp_path, machine_config=True)["PIP_FIND_LINKS"] == "/opt/wheels"


def test_requirements_of_a_wheel_with_its_extras(tmp_path):
    install_size = bench("install_size")
    wheel = tmp_path / "vqzip-0.3.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("vqzip-0.3.0.dist-info/METADATA", "Metadata-Version: 2.4\nName: vqzip\n"
                   "Requires-Dist: numpy>=1.26\nRequires-Dist: onnxruntime>=1.20\n"
                   "Requires-Dist: torch<2.14,>=2.13; extra == \"train\"\n"
                   "Requires-Dist: matplotlib>=3.8; extra == 'eval'\n\nA codec.\n")
    assert install_size.requirements(wheel, set()) == ["numpy", "onnxruntime"]
    assert install_size.requirements(wheel, {"train"}) == ["numpy", "onnxruntime", "torch"]


def test_distribution_sizes_count_the_files_of_each_record(tmp_path):
    install_size = bench("install_size")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_bytes(b"x" * 100)
    (tmp_path / "pkg-1.0.dist-info").mkdir()
    (tmp_path / "pkg-1.0.dist-info" / "RECORD").write_text("pkg/a.py,sha256=x,100\npkg/gone.py,,\n"
                                                         "pkg-1.0.dist-info/RECORD,,\n")
    size = install_size.distribution_sizes(tmp_path)["pkg 1.0"]
    assert size == 100 + (tmp_path / "pkg-1.0.dist-info" / "RECORD").stat().st_size


def test_the_walk_bench_times_this_tree_without_torch(tmp_path):
    """bench/walk_speed.py's worker walks this tree's priors (numpy) in a process where torch
    cannot be imported: only a baseline whose model loads torch gets its maps as tensors."""
    from blocked import run_without

    rng = np.random.default_rng(0)
    codes = tmp_path / "codes.npz"
    np.savez(codes, top=rng.integers(0, 512, (2, 3)), bottom=rng.integers(0, 512, (4, 6)), fine=rng.integers(0, 512, (8, 12)))
    done = run_without(["torch"], ["-c", "import sys; sys.path.insert(0, sys.argv[1]); import walk_speed; "
                                         "print(sorted(walk_speed.worker(sys.argv[2], 1)))", str(BENCH), str(codes)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == str(sorted(f"{w} {m}" for w in ("walk", "teacher-forced") for m in ("top", "bottom", "fine")))

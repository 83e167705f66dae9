"""A command that needs an extra not installed says which, in one line, with the pip command
(`vqzip.extras`), and exits 2; help still works without it. The extras are blocked in a process
of their own (`blocked.run_without`)."""
import pytest

from blocked import run_without
from vqzip.extras import MissingExtra, require


def test_require_names_the_extra_and_the_pip_command():
    assert require("json", "train", "training").__name__ == "json"
    with pytest.raises(MissingExtra, match=r"^training needs no_such_module_37, from vqzip's train extra: "
                                           r"pip install 'vqzip\[train\]'$") as caught:
        require("no_such_module_37", "train", "training")
    assert isinstance(caught.value, ModuleNotFoundError) and caught.value.name == "no_such_module_37"


def one_line(done) -> str:
    """The one line a refused command printed (and nothing on stdout, no traceback)."""
    assert done.returncode == 2 and done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr.strip()


@pytest.mark.slow  # processes of their own
@pytest.mark.parametrize("command", [["train", "vqvae", "--data", "d", "--out", "r"], ["train", "prior", "--data", "d", "--out", "r"],
                                     ["train", "rdo-codes", "--run", "a", "--out", "b", "--data", "d"],
                                     ["train", "snapshot", "--run", "a", "--out", "b"], ["train", "export", "--run", "a", "--name", "n"], ["train", "graphs", "x"],
                                     ["train", "run", "recipe.toml", "--data", "d", "--out", "r"]])
def test_training_without_torch_names_the_train_extra(command, tmp_path):
    done = run_without(["torch"], ["-m", "vqzip", *command], cwd=tmp_path)
    assert one_line(done) == "vqzip: error: training needs torch, from vqzip's train extra: pip install 'vqzip[train]'"
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow  # a process of its own
def test_export_without_onnx_names_the_train_extra(tmp_path):
    done = run_without(["onnx"], ["-m", "vqzip", "train", "export", "--run", "a", "--name", "n"], cwd=tmp_path)
    assert one_line(done) == "vqzip: error: exporting a model needs onnx, from vqzip's train extra: pip install 'vqzip[train]'"


@pytest.mark.slow  # a process of its own
def test_rd_curve_plots_without_matplotlib_name_the_eval_extra(tmp_path):
    done = run_without(["matplotlib"], ["-m", "vqzip", "rd-curve", "photo.png", "--out", "rd"], cwd=tmp_path)
    assert one_line(done) == "vqzip: error: rd-curve's plots (--out) needs matplotlib, from vqzip's eval extra: pip install 'vqzip[eval]'"


@pytest.mark.slow  # a process of its own
def test_training_help_needs_no_torch():
    done = run_without(["torch"], ["-m", "vqzip", "train", "vqvae", "--help"])
    assert done.returncode == 0 and "Phase I" in done.stdout, done.stderr

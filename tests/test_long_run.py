"""training-runs/long.sh, the long run's commands, run with a stand-in vqzip that records each
command and writes the files the phase would: what it trains on a new machine, on one with a
saved state, after each phase, and from landed weights that are further along."""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "training-runs" / "long.sh"
LANDED = SCRIPT.parent / "L3"
PRIORS = SCRIPT.parent / "L3-priors"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sha256sum") is None,
                                reason="needs bash and sha256sum")

FAKE = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
out=; prev=; for a in "$@"; do [ "$prev" = --out ] && out=$a; prev=$a; done
case "$2" in
  vqvae) echo '{"steps_done": 62000}' > "$out/vqvae.json"; echo net > "$out/vqvae.safetensors";;
  prior) echo '{"steps_done": 12000}' > "$out/prior.json"; echo priors > "$out/prior.safetensors"; touch "$out/codes.npz";;
  rdo-codes) mkdir -p "$out"; touch "$out/codes.npz";;
esac
"""
PYTHON = """#!/usr/bin/env bash
echo "python cached_codes $3" >> "$CALLS"; touch "$3/codes.npz"
"""


def run_script(tmp_path: Path, run: Path, script: Path = SCRIPT) -> list[list[str]]:
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    for name, text in (("vqzip", FAKE), ("python3", PYTHON)):
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.unlink(missing_ok=True)
    env = {**os.environ, "VQZIP": str(bin_ / "vqzip"), "RUN": str(run), "DATA": "/data", "CALLS": str(calls)}
    subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True, text=True)
    return [line.split() for line in calls.read_text().splitlines()] if calls.exists() else []


def arg(cmd: list[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1]


def test_saved_state_resumes_without_init(tmp_path):
    run = tmp_path / "L3"
    run.mkdir()
    (run / "vqvae-state.pt").write_bytes(b"")
    phase1 = run_script(tmp_path, run)[0]
    assert "--init" not in phase1 and "--start-step" not in phase1
    assert not (run / "init").exists()


def test_finished_phases_are_skipped(tmp_path):
    run = tmp_path / "L3"
    run.mkdir()
    (run / "vqvae.safetensors").write_bytes(b"")
    (run / "vqvae.json").write_text("{}")
    assert [c[:2] for c in run_script(tmp_path, run)] == [["train", "prior"], ["train", "rdo-codes"], ["train", "prior"],
                                                          ["train", "prior"]]


@pytest.fixture()
def tree(tmp_path):
    """A copy of training-runs/ with landed weights of its own."""
    here = tmp_path / "training-runs"
    (here / "L3").mkdir(parents=True)
    (here / "L3-priors").mkdir()
    shutil.copy(SCRIPT, here)
    return here


def land(here: Path, network_steps: int, prior_steps: int | None = None, same_network: bool = True):
    (here / "L3" / "vqvae.safetensors").write_text("final\n")
    (here / "L3" / "vqvae.json").write_text(json.dumps({"steps_done": network_steps}))
    if prior_steps is not None:
        (here / "L3-priors" / "prior.safetensors").write_text("landed priors\n")
        (here / "L3-priors" / "prior.json").write_text(json.dumps({"steps_done": prior_steps}))
        digest = subprocess.run(["sha256sum"], input="final\n" if same_network else "other\n", capture_output=True,
                                text=True).stdout[:64]
        (here / "L3-priors" / "network.sha256").write_text(digest + "\n")


def test_new_machine_continues_from_landed_weights_through_every_phase(tmp_path, tree):
    land(tree, 25000, 2000, same_network=False)
    run = tmp_path / "L3"
    phase1, phase2, codes, phase3, control = run_script(tmp_path, run, tree / "long.sh")
    assert phase1[:2] == ["train", "vqvae"]
    assert arg(phase1, "--init") == str(run / "init")
    assert arg(phase1, "--start-step") == "25000" and arg(phase1, "--seed") == "25000"
    assert int(arg(phase1, "--warmup")) > 100  # Adam's moments were not landed
    assert (run / "init" / "vqvae.safetensors").read_text() == "final\n"
    assert phase2[:2] == ["train", "prior"] and arg(phase2, "--out") == str(run)
    assert arg(phase2, "--init") == str(tree / "L3-priors") and "--start-step" not in phase2
    assert codes[:2] == ["train", "rdo-codes"] and arg(codes, "--run") == str(run) and arg(codes, "--out") == f"{run}-rdo"
    assert phase3[:2] == ["train", "prior"] and arg(phase3, "--out") == f"{run}-rdo" and arg(phase3, "--init") == str(run)
    assert control[:2] == ["train", "prior"] and arg(control, "--out") == f"{run}-control"
    assert phase3[phase3.index("--steps"):] == control[control.index("--steps"):]  # the same fine-tuning
    assert (Path(f"{run}-control") / "codes.npz").exists()  # phase II's nearest codes
    assert run_script(tmp_path, run, tree / "long.sh") == []  # all done: nothing more


def test_on_a_new_machine_the_landed_network_is_the_run_s_own(tmp_path):
    """The tree's own landed files: phases I and II are finished and the priors were trained on
    exactly the landed network, so a new machine takes both as they are, computes the code maps
    phase III reads, and starts phase III."""
    run = tmp_path / "L3"
    calls = run_script(tmp_path, run)
    assert json.loads((LANDED / "vqvae.json").read_text())["steps_done"] == 62000
    assert json.loads((PRIORS / "prior.json").read_text())["steps_done"] == 12000
    network = hashlib.sha256((LANDED / "vqvae.safetensors").read_bytes()).hexdigest()
    assert (PRIORS / "network.sha256").read_text().strip() == network
    assert (run / "vqvae.safetensors").read_bytes() == (LANDED / "vqvae.safetensors").read_bytes()
    assert (run / "prior.safetensors").read_bytes() == (PRIORS / "prior.safetensors").read_bytes()
    assert calls[0][:2] == ["python", "cached_codes"] and calls[1][:2] == ["train", "rdo-codes"]
    assert arg(calls[1], "--run") == str(run)


def test_a_landed_finished_network_is_taken_as_it_is(tmp_path, tree):
    land(tree, 62000)
    run = tmp_path / "L3"
    calls = run_script(tmp_path, run, tree / "long.sh")
    assert calls[0][:2] == ["train", "prior"] and "--start-step" not in calls[0]
    assert (run / "vqvae.safetensors").read_text() == "final\n"


def test_landed_priors_of_this_network_go_on_from_their_step(tmp_path, tree):
    land(tree, 62000, 9000)
    run = tmp_path / "L3"
    phase2 = run_script(tmp_path, run, tree / "long.sh")[0]
    assert arg(phase2, "--start-step") == "9000" and arg(phase2, "--init") == str(tree / "L3-priors")


def test_landed_priors_of_another_network_start_phase_two_afresh(tmp_path, tree):
    land(tree, 62000, 9000, same_network=False)
    phase2 = run_script(tmp_path, tmp_path / "L3", tree / "long.sh")[0]
    assert "--start-step" not in phase2 and arg(phase2, "--init") == str(tree / "L3-priors")


def test_finished_landed_priors_are_taken_with_their_code_maps(tmp_path, tree):
    land(tree, 62000, 12000)
    run = tmp_path / "L3"
    calls = run_script(tmp_path, run, tree / "long.sh")
    assert calls[0] == ["python", "cached_codes", str(run)]
    assert [c[:2] for c in calls[1:]] == [["train", "rdo-codes"], ["train", "prior"], ["train", "prior"]]
    assert (run / "prior.safetensors").read_text() == "landed priors\n"

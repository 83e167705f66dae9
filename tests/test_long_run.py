"""training-runs/long.sh, the long run's commands, run dry (VQZIP=echo): what it would train on a
new machine, on one with a saved state, and after phase I."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "training-runs" / "long.sh"
LANDED = SCRIPT.parent / "L3"
PRIORS = SCRIPT.parent / "L3-priors"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def dry(run: Path) -> list[list[str]]:
    env = {**os.environ, "VQZIP": "echo", "RUN": str(run), "DATA": "/data"}
    out = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=True).stdout
    return [line.split() for line in out.splitlines()]


def test_new_machine_continues_from_landed_weights(tmp_path):
    run = tmp_path / "L3"
    phase1, phase2 = dry(run)
    step = str(json.loads((LANDED / "vqvae.json").read_text())["steps_done"])
    assert phase1[:2] == ["train", "vqvae"]
    assert phase1[phase1.index("--init") + 1] == str(run / "init")
    assert phase1[phase1.index("--start-step") + 1] == step and phase1[phase1.index("--seed") + 1] == step
    assert int(phase1[phase1.index("--warmup") + 1]) > 100  # Adam's moments were not landed
    assert (run / "init" / "vqvae.safetensors").read_bytes() == (LANDED / "vqvae.safetensors").read_bytes()
    assert phase2[:2] == ["train", "prior"]
    assert phase2[phase2.index("--init") + 1] == str(PRIORS)


def test_saved_state_resumes_without_init(tmp_path):
    run = tmp_path / "L3"
    run.mkdir()
    (run / "vqvae-state.pt").write_bytes(b"")
    phase1, _ = dry(run)
    assert "--init" not in phase1 and "--start-step" not in phase1
    assert not (run / "init").exists()


def test_finished_phases_are_skipped(tmp_path):
    run = tmp_path / "L3"
    run.mkdir()
    (run / "vqvae.safetensors").write_bytes(b"")
    assert [c[:2] for c in dry(run)] == [["train", "prior"]]
    (run / "prior.safetensors").write_bytes(b"")
    assert dry(run) == []

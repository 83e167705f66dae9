"""Issue 35 design run: more synthesis capacity at the fine level. L3's dec_f gets BLOCKS residual
blocks instead of 1 (the new ones zero-initialised at their last convolution, so training starts
from L3's function exactly), then the whole network trains as the control run does.

    python bench/design35/synth.py RUN BLOCKS [DATA]   # resumable; RUN's parent holds init/ (L3's network)
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from vqzip import models
from vqzip.training.autoencoder import train_vqvae
from vqzip.training.loop import TrainConfig

run, blocks = Path(sys.argv[1]), int(sys.argv[2])
data_dir = sys.argv[3] if len(sys.argv) > 3 else str(Path(__file__).resolve().parents[3] / "shared/data/train")
init = run.parent / f"{run.name}-init"
meta = json.loads((run.parent / "init/vqvae.json").read_text())
cfg = dict(meta["config"], fine_res_blocks=blocks)
if not (init / "vqvae.safetensors").exists():
    old = load_file(str(run.parent / "init/vqvae.safetensors"))
    net = models.build("vqvae2", cfg)
    state = net.state_dict()
    n_old = meta["config"]["fine_res_blocks"]
    for k, v in old.items():
        if k.startswith("dec_f."):
            i, rest = k[6:].split(".", 1)
            i = int(i)
            if i > n_old:  # the ReLU and the transposed convolution after the blocks
                i += blocks - n_old
            k = f"dec_f.{i}.{rest}"
        state[k] = v
    for b in range(n_old + 1, blocks + 1):  # the new blocks add nothing at first
        state[f"dec_f.{b}.body.3.weight"].zero_()
        state[f"dec_f.{b}.body.3.bias"].zero_()
    net.load_state_dict(state)
    init.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(init / "vqvae.safetensors"))
    (init / "vqvae.json").write_text(json.dumps(dict(meta, config=cfg)))
torch.set_num_threads(1)
train_vqvae(data_dir, run, "vqvae2", cfg,
            TrainConfig(steps=3000, lr=3e-4, warmup=200, seed=35, precision="bf16"), init=init)
print("done")

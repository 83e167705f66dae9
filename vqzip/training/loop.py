"""The training loop both phases share: schedule, precision, clipping, logging, resumable state."""
from __future__ import annotations

import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

from vqzip.errors import VqzError
from vqzip.training import distributed

SAVE_SECONDS = 600  # the state is saved at least this often in wall time, whatever save_every says


@dataclass
class TrainConfig:
    steps: int = 4000
    batch: int = 16
    crop: int = 128  # image pixels; phase II crops the code maps over the same pixels
    lr: float = 1e-3
    min_lr: float = 5e-5
    warmup: int = 100
    seed: int = 0
    save_every: int = 250
    log_every: int = 50
    precision: str = "auto"  # "bf16": autocast (quantizers and losses in float32); "fp32"; "auto": bf16 where native
    colour: float = 0.0  # phase I: fraction of crops painted with flat colours (`data.CropSampler`)
    start: int = 0  # the schedule's first step: a run continued (--init) from weights landed at that step

    def __post_init__(self):
        if self.precision == "auto":  # resolved here, so the run's record says which it was
            self.precision = "bf16" if native_bf16(pick_device()) else "fp32"
        if self.precision not in ("bf16", "fp32"):
            raise VqzError(f"precision must be bf16, fp32 or auto, not {self.precision!r}")


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 has native kernels here: a GPU with bf16, or a CPU with AVX-512 BF16 or AMX
    (oneDNN's). Elsewhere autocast emulates it: a phase I step of L3's shapes took 87 s instead of
    fp32's 3.3 s on an AVX2-only EPYC (`bench/train_speed.py`)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def autocast(cfg: TrainConfig, device: torch.device):
    """The training step's autocast context: bf16 runs both phases 2-2.5x faster on a CPU with
    AVX-512 BF16 (bench/train_speed.py)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")


def hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def command_line() -> str:
    """The command that is running, as a user would type it."""
    prog = Path(sys.argv[0]).name
    return shlex.join(["vqzip" if prog == "vqzip" else f"python {sys.argv[0]}"] + sys.argv[1:])


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Cosine decay from lr at step 0 to min_lr at cfg.steps, times a linear warm-up over the
    first cfg.warmup steps from cfg.start (a continued run's optimizer starts without moments):
    the cosine does not depend on the warm-up, so a run continued with a longer one rejoins the
    same schedule."""
    t = step / max(1, cfg.steps)
    lr = cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))
    return lr * min(1.0, (step - cfg.start + 1) / cfg.warmup)


def save_weights(module: torch.nn.Module, path: Path, config: dict, meta: dict) -> None:
    """safetensors weights plus a JSON config beside them, both written atomically."""
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp))
    tmp.replace(path)
    cfg_tmp = path.with_suffix(".json.tmp")
    cfg_tmp.write_text(json.dumps({"config": config, **meta}, indent=2))
    cfg_tmp.replace(path.with_suffix(".json"))


def load_init(module: torch.nn.Module, run: Path, name: str, new: Callable[[str], bool] | None = None) -> dict:
    """Load run/NAME.safetensors into module for fine-tuning; only parameters for which `new`
    is true may be missing (they start fresh). Returns the run's training record for the card."""
    try:
        missing, unexpected = module.load_state_dict(load_file(str(run / f"{name}.safetensors")), strict=False)
    except RuntimeError:  # shapes differ
        missing, unexpected = ["(shapes differ)"], []
    if unexpected or any(new is None or not new(k) for k in missing):
        raise VqzError(f"{run} does not fit this {name} config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return json.loads((run / f"{name}.json").read_text())


def run_loop(
    name: str,
    out: Path,
    model: torch.nn.Module,
    cfg: TrainConfig,
    sampler,
    step_fn: Callable[[object], tuple[torch.Tensor, dict]],
    config: dict,
    progress: Callable[[int, int, dict], None] | None,
    extra: dict | None = None,
    stop_after: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict:
    """Train `model` for cfg.steps on sampler.batch(cfg.batch) through step_fn (loss, stats),
    resuming from out/NAME-state.pt; write out/NAME.safetensors and NAME.json at the end. Under
    torchrun, each rank trains on its slice of the batch (`distributed`); rank 0 writes.
    The state is saved every cfg.save_every steps, at least every SAVE_SECONDS, and at the end.
    With `stop_after`, train at most that many steps in this call: stopped short of cfg.steps,
    the state is saved (a later call resumes from it), no weights are written, and the record
    returned has "stopped": True. `on_step(steps done)` is called once the state is resumed and
    after each step, before its state is saved: a schedule of the run's own (the lattice's rate
    ramp) and its validation."""
    main = distributed.is_main()
    out.mkdir(parents=True, exist_ok=True)
    state_path, log_path = out / f"{name}-state.pt", out / f"{name}-log.jsonl"
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if not 0 <= cfg.start < cfg.steps:
        raise VqzError(f"the start step {cfg.start} is not below the run's {cfg.steps} steps")
    step, elapsed = cfg.start, 0.0
    if state_path.exists():
        state = torch.load(state_path, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        sampler.rng.bit_generator.state = json.loads(state["rng"])
    distributed.sync_from_main(model)

    def record() -> dict:
        return {"train": asdict(cfg), "steps_done": step, "wall_seconds": round(elapsed, 1),
                "device": str(next(model.parameters()).device), "hardware": hardware(),
                "torch_threads": torch.get_num_threads(), "ranks": distributed.world(), "command": command_line(),
                **(extra or {})}

    def save_state():
        tmp = state_path.with_suffix(".tmp")
        rng = json.dumps(sampler.rng.bit_generator.state)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "elapsed": elapsed, "rng": rng, "meta": json.dumps({"config": config, **record()})}, tmp)
        tmp.replace(state_path)

    model.train()
    if on_step:
        on_step(step)
    t0, stats = time.time() - elapsed, {}
    saved = time.time()
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    while step < end:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss, stats = step_fn(distributed.shard(sampler.batch(cfg.batch), cfg.batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(model.parameters())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        elapsed = time.time() - t0
        if step % cfg.log_every == 0 or step == cfg.steps:
            stats = distributed.average_stats(stats)
            if main:
                with log_path.open("a") as f:
                    f.write(json.dumps({"step": step, "seconds": round(elapsed, 1), **stats}) + "\n")
        if progress and main:
            progress(step, cfg.steps, stats)
        if on_step:
            on_step(step)
        if main and (step % cfg.save_every == 0 or step == end or time.time() - saved >= SAVE_SECONDS):
            save_state()
            saved = time.time()
    meta = record()
    if step < cfg.steps:
        return {**meta, "stopped": True}
    if main:
        save_weights(model, out / f"{name}.safetensors", config, meta)
    distributed.barrier()  # no rank returns before the weights are written
    return meta


def snapshot(run: Path, name: str, dest: Path) -> dict:
    """The weights of a run's phase `name` as of its last saved state (every `save_every` steps),
    written to dest/NAME.safetensors and NAME.json as a finished phase would write them (with the
    run's network and code maps beside a prior snapshot), so a long run's progress can be given priors,
    exported and measured while it goes on."""
    if Path(dest).resolve() == Path(run).resolve():
        raise VqzError(f"{dest}: a snapshot needs a folder of its own, not the run's")
    state = torch.load(run / f"{name}-state.pt", weights_only=True, map_location="cpu")
    if "meta" not in state:
        raise VqzError(f"{run / f'{name}-state.pt'} was saved by an older vqzip, without its config")
    meta = json.loads(state["meta"])
    config = meta.pop("config")
    meta["snapshot"] = f"step {meta['steps_done']} of a {meta['train']['steps']}-step run ({run})"
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f"{name}.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in state["model"].items()}, str(tmp))
    tmp.replace(dest / f"{name}.safetensors")
    (dest / f"{name}.json").write_text(json.dumps({"config": config, **meta}, indent=2))
    if name == "prior":  # the priors belong to the run's network and its code maps (export calibrates on them)
        for part in ("vqvae.safetensors", "vqvae.json", "codes.npz"):
            shutil.copyfile(run / part, dest / part)
    return meta

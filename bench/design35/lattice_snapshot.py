"""A lattice run's saved state, while it trains: its weights as a finished run folder (which
`vqzip train export` takes) and its validation front at every anchor.

    python bench/design35/lattice_snapshot.py ~/vqzip-runs/lattice8 --out /tmp/snap --images 8

STATE is a run folder (its lattice-state.pt) or a state file. The front: the fine map's bpp (the
run's float prior on the rounded symbols; the frozen top and bottom maps add a constant) and the
PSNR at anchors 0 to 6, the first --images validation images of --data, as `vqzip train lattice`
validates (`vqzip.training.lattice.validate`), printed and appended to --json if given.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from vqzip.training.lattice import NAME, load_lattice, validate, validation_images


def snapshot(state_path: Path, out: Path) -> int:
    """Write out/lattice.safetensors and lattice.json from a saved state; returns its step."""
    state = torch.load(state_path if state_path.is_file() else state_path / f"{NAME}-state.pt", weights_only=True)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state["model"].items()}, str(out / f"{NAME}.safetensors"))
    record = json.loads(state["meta"])
    record["snapshot_of_step"] = int(state["step"])
    (out / f"{NAME}.json").write_text(json.dumps(record, indent=1))
    return int(state["step"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("state", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="the run folder to write")
    ap.add_argument("--data", default="../shared/data/train")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    step = snapshot(args.state, args.out)
    model = load_lattice(args.out)
    anchors = tuple(range(len(model.net.cfg.fine_quantizer.anchors)))
    rows = validate(model, validation_images(args.data, args.images), anchors)
    print(f"step {step}: " + ", ".join(f"a{r['anchor']} {r['bpp']:.4f} bpp {r['psnr']:.3f} dB" for r in rows))
    if args.json:
        with args.json.open("a") as f:
            f.write(json.dumps({"step": step, "images": args.images, "front": rows}) + "\n")


if __name__ == "__main__":
    main()
